"""The `process` provider: each sandbox is a process tree on this host, wrapped in whatever isolation it offers.

Layout under `<data_dir>/sandboxes/<id>/`: `meta.json` (root only) and `box/`, owned by the sandbox uid and
bound read-write into the sandbox at the same path: `root/` (the app's state, SandboxInfo.root), `home/`,
`logs/`, `tmp/`. Sandboxes are spawned detached and without `--die-with-parent`, so they outlive a crashed
control plane; the next one adopts them through the pid and start time kept in meta.json. cgroup limits come
from `SandboxSpec.resources` (the runtime fills them from settings), kept in meta.json too.

The control plane runs as root while the tenant controls everything under `box/`: files there are reached
only through `boxfs` (never following a symlink out); processes are known through `procfs` (pid + start time).

Hardening, each in its own module and refused rather than skipped when isolation is on: `box/` is the mount
of `disk.img`, the sandbox's disk quota (`diskquota`); every process runs under a seccomp filter (`seccomp`);
the sandboxes' parent cgroup caps them all together (`cgroup_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from chowder.core.errors import ChowderError, ProviderError
from chowder.core.settings import Settings
from chowder.sandbox import procfs
from chowder.sandbox.base import (
    Egress,
    ExecResult,
    FileEntry,
    FileStream,
    LaunchSpec,
    Resources,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)
from chowder.sandbox.boxfs import ROOT, BoxFiles
from chowder.sandbox.diskquota import DiskQuota
from chowder.sandbox.isolation import DISABLED, NAMESPACES, USER, Cgroups, detect_isolation
from chowder.sandbox.network import HostNetwork
from chowder.sandbox.seccomp import detect_seccomp

T = TypeVar("T")
log = logging.getLogger("chowder.sandbox")

EXEC_TIMEOUT_EXIT = 124
# The app's port inside a sandbox's own network namespace: the same for every sandbox, nothing else binds there.
APP_PORT = 18789
_SANDBOX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_BOX_DIRS = (ROOT, "home", "logs", "tmp")
_DESTROY_GRACE_S = 2.0
_KILL_WAIT_S = 10.0
_POLL_S = 0.05
_CHUNK = 256 * 1024
_EXEC_OUTPUT_CAP = 4 << 20


@dataclass(frozen=True, slots=True)
class Wrapped:
    """A sandbox command line, and the fds to pass the child (the seccomp filter's)."""

    argv: list[str]
    fds: tuple[int, ...]


@dataclass(slots=True)
class _Meta:
    sandbox_id: str
    labels: dict[str, str]
    port: int
    uid: int
    resources: Resources
    read_only_paths: list[str]
    egress: Egress = "open"
    net_index: int | None = None
    pid: int | None = None
    start_time: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Meta:
        return cls(**{**data, "resources": Resources(**data["resources"])})


class ProcessProvider:
    """Sandboxes as host process trees: own uid, bwrap namespaces and a cgroup each, where the host allows."""

    name = "process"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dir = settings.data_dir.resolve() / "sandboxes"
        _prepare_dirs(self._dir)
        self.isolation = detect_isolation(settings.sandbox_isolation, self._dir, settings.sandbox_uid_base)
        enabled = self.isolation.enabled
        self.cgroups = Cgroups(enabled, settings.host_reserved_mb)
        self.seccomp = detect_seccomp(self.isolation, settings.sandbox_isolation, self._dir, settings.sandbox_uid_base)
        self.disk = DiskQuota(settings.sandbox_disk_mb, settings.sandbox_isolation, self._dir)
        self.network = HostNetwork(settings.sandbox_subnet, settings.model_port) if enabled else None
        self.missing = list(self.isolation.missing)
        if enabled and not self.cgroups.available:
            self.missing.append(f"cgroups {self.cgroups.note}")
        if self.network is not None and self.network.problem is not None:
            self.missing.append(f"network namespaces unavailable: {self.network.problem}")
        if self.seccomp.required and self.seccomp.program is None:
            self.missing.append(f"seccomp {self.seccomp.note}")
        for name, problem in (("disk quota", self.disk.problem), ("parent cgroup", self.cgroups.parent.problem)):
            if problem is not None:
                self.missing.append(f"{name}: {problem}")
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def isolation_report(self) -> dict[str, str]:
        if not self.isolation.enabled:
            report = dict.fromkeys(("user", "namespaces", "cgroups"), "off (isolation disabled)")
        else:
            wrapper = f"NOT in force: {'; '.join(self.isolation.missing)}" if self.isolation.missing else None
            report = {
                "user": wrapper or f"in force: {USER}",
                "namespaces": wrapper or f"in force: {NAMESPACES}",
                "cgroups": ("in force: " if self.cgroups.available else "NOT in force: ") + self.cgroups.note,
            }
        report |= {
            "parent cgroup": self.cgroups.parent.note,
            "seccomp": self.seccomp.note,
            "disk quota": self.disk.note,
            "network": self.network.note if self.network else "off (isolation disabled): the host's network",
        }
        if not self.isolation.enabled:
            report["WARNING"] = DISABLED
        elif refusal := self.refusal():
            report["REFUSING"] = refusal
        return report

    def refusal(self) -> str | None:
        if not self.missing:
            return None
        return f"sandboxes cannot be isolated on this host: {'; '.join(self.missing)}"

    def sandbox_facing_address(self) -> tuple[str, int]:
        """Where the control plane listens for its sandboxes (the model endpoint): an address only they reach."""
        host = self.network.model_address if self.network else "127.0.0.1"
        return host, self._settings.model_port

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        return await _off_loop(self._create, spec)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        return await _off_loop(lambda: self._info(self._require_meta(sandbox_id)))

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await _off_loop(self._start, sandbox_id, launch)

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await _off_loop(self._stop, sandbox_id, grace_s)

    async def destroy(self, sandbox_id: str) -> None:
        await _off_loop(self._destroy, sandbox_id)

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        return await _off_loop(self._observe, sandbox_id)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return await _off_loop(self._list)

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None:
        """Applied at once to a running sandbox, kept for its next start otherwise."""
        await _off_loop(self._set_egress, sandbox_id, egress)

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        """Run a short command in the sandbox's isolation and cgroup, with exactly `env`.

        On timeout its process tree is killed and the result has exit code 124 and a note at the end of stderr.
        """
        return await _off_loop(self._exec, sandbox_id, argv, env, timeout_s)

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        return await _off_loop(lambda: self._files_of(sandbox_id).read(path, max_bytes, tail=tail))

    async def open_file(self, sandbox_id: str, path: str) -> FileStream:
        file, size = await _off_loop(lambda: self._files_of(sandbox_id).open_regular(path))
        return FileStream(size, _chunks(file, size))

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Atomic (temp file + rename, which replaces a symlink rather than writing through it); makes parents."""
        await _off_loop(lambda: self._files_of(sandbox_id).write(path, data))

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        """Entries sorted by name; symlinks are described, not followed."""
        return await _off_loop(lambda: self._files_of(sandbox_id).list_dir(path))

    async def move(self, sandbox_id: str, source: str, destination: str) -> None:
        """rename(2): `destination` is the new path, not a directory to move into; parents are made."""
        await _off_loop(lambda: self._files_of(sandbox_id).move(source, destination))

    async def delete_path(self, sandbox_id: str, path: str) -> None:
        await _off_loop(lambda: self._files_of(sandbox_id).delete(path))

    async def mkdir(self, sandbox_id: str, path: str) -> None:
        """Like `mkdir -p`."""
        await _off_loop(lambda: self._files_of(sandbox_id).mkdir(path))

    # Lifecycle

    def _create(self, spec: SandboxSpec) -> SandboxInfo:
        """Idempotent; a second create updates what may change between boots (the egress policy)."""
        self._refuse_if_weaker(spec.sandbox_id)
        sandbox_dir = self._sandbox_dir(spec.sandbox_id)
        with self._lock():
            meta = self._read_meta(spec.sandbox_id)
            if meta is None:
                port, uid = self._allocate()
                meta = _Meta(
                    spec.sandbox_id,
                    dict(spec.labels),
                    port,
                    uid,
                    spec.resources,
                    [str(p) for p in spec.read_only_paths],
                    spec.egress,
                )
                _make_layout(sandbox_dir, uid, self.disk)
                self._write_meta(meta)
            if meta.egress != spec.egress:
                meta.egress = spec.egress
                self._write_meta(meta)
            self._attach(meta)
        return self._info(meta)

    def _info(self, meta: _Meta) -> SandboxInfo:
        """The box is bound at its own path, and so is every read-only path."""
        host, port = self.sandbox_facing_address()
        return SandboxInfo(
            meta.sandbox_id,
            root=self._root(meta),
            home=str(self._box(meta) / "home"),
            app_port=meta.port,
            listen="all" if self.network is not None else "loopback",
            model_endpoint_url=f"http://{host}:{port}",
            read_only_paths={Path(path): path for path in meta.read_only_paths},
        )

    def _refuse_if_weaker(self, sandbox_id: str) -> None:
        """Fail closed: a sandbox that cannot have every protection does not run at all."""
        if refusal := self.refusal():
            raise ProviderError(
                f"Sandbox {sandbox_id} refused: {refusal}. Fix that and start the instance again "
                "(or set CHOWDER_SANDBOX_ISOLATION=none, for development only)."
            )
        if not self.isolation.enabled:
            log.warning("sandbox %s runs WITHOUT isolation: %s", sandbox_id, DISABLED)

    def _allocate(self) -> tuple[int, int]:
        """A port and uid no other sandbox holds; the caller holds the lock, so no other process races us. In
        its own network namespace every app has the same port; only unisolated ones share the host's."""
        metas = [self._read_meta(path.name) for path in self._dir.iterdir() if (path / "meta.json").is_file()]
        if not self.isolation.enabled:
            ports = {meta.port for meta in metas if meta}
            low, high = self._settings.gateway_port_min, self._settings.gateway_port_max
            port = next((p for p in range(low, high + 1) if p not in ports and _bindable(p)), None)
            if port is None:
                raise ProviderError(f"No free gateway port between {low} and {high}.")
            return port, os.geteuid()
        uids = {meta.uid for meta in metas if meta}
        return APP_PORT, _free_uid(self._settings.sandbox_uid_base, uids)

    def _attach(self, meta: _Meta) -> str | None:
        """The sandbox's network namespace (made or repaired), or None without isolation."""
        if self.network is None:
            return None
        attachment = self.network.attach(meta.sandbox_id, meta.net_index, meta.egress)
        if attachment.index != meta.net_index:
            meta.net_index = attachment.index
            self._write_meta(meta)
        return attachment.netns_path

    def _set_egress(self, sandbox_id: str, egress: Egress) -> None:
        with self._lock():
            meta = self._require_meta(sandbox_id)
            meta.egress = egress
            self._write_meta(meta)
            self._attach(meta)

    def _start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        self._refuse_if_weaker(sandbox_id)
        with self._lock():
            meta = self._require_meta(sandbox_id)
            if self._alive(meta):
                return
            self._terminate(meta, grace_s=0.0)  # leftovers of a crashed run (e.g. setsid children) must not linger
            missing = [path for path in meta.read_only_paths if not os.path.exists(path)]
            if missing:
                raise ProviderError(f"Read-only path {missing[0]} does not exist.")
            log_fd = self._files(meta).open_log(launch.log_file)
            try:
                with self._command(meta, list(launch.argv), die_with_parent=False) as command:
                    process = subprocess.Popen(
                        command.argv,
                        env=dict(launch.env),
                        cwd=self._cwd(meta),
                        stdin=subprocess.DEVNULL,
                        stdout=log_fd,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        pass_fds=command.fds,
                    )
            finally:
                os.close(log_fd)
            self._children[sandbox_id] = process
            meta.pid, meta.start_time = process.pid, procfs.start_time(process.pid)
            self._write_meta(meta)

    @contextlib.contextmanager
    def _command(self, meta: _Meta, argv: list[str], *, die_with_parent: bool) -> Iterator[Wrapped]:
        """The wrapped command in the sandbox's cgroup, network namespace (both made here if missing), its disk
        mounted, under the seccomp filter."""
        self.disk.mount(self._dir / meta.sandbox_id)
        with self.seccomp.bwrap_args() as (hardening, seccomp_fds):
            argv = self.isolation.wrap(
                argv,
                uid=meta.uid,
                box=str(self._box(meta)),
                root=self._root(meta),
                read_only_paths=meta.read_only_paths,
                die_with_parent=die_with_parent,
                netns=self._attach(meta),
                cgroup_procs=self.cgroups.ensure(meta.sandbox_id, meta.resources) if self.cgroups.available else [],
                hardening=hardening,
            )
            yield Wrapped(argv, seccomp_fds)

    def _cwd(self, meta: _Meta) -> str:
        """bwrap changes into the root itself (--chdir), inside its own mount view."""
        return "/" if self.isolation.enabled else self._root(meta)

    def _stop(self, sandbox_id: str, grace_s: float) -> None:
        meta = self._read_meta(_checked(sandbox_id))
        if meta is not None:
            self._terminate(meta, grace_s)

    def _terminate(self, meta: _Meta, grace_s: float) -> None:
        """SIGTERM the whole tree, SIGKILL what remains after the grace; return once nothing is left."""
        procs = self._processes(meta, set())
        procfs.signal_all(procs, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while procs and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            procs = self._processes(meta, procs)
        deadline = time.monotonic() + _KILL_WAIT_S
        while procs := self._processes(meta, procs):
            if time.monotonic() > deadline:
                raise ProviderError(f"Sandbox {meta.sandbox_id}: processes survived SIGKILL: {sorted(procs)}.")
            if self.cgroups.available:
                self.cgroups.kill(meta.sandbox_id)
            procfs.signal_all(procs, signal.SIGKILL)
            time.sleep(_POLL_S)

    def _processes(self, meta: _Meta, known: set[procfs.Proc]) -> set[procfs.Proc]:
        """Every live process of the sandbox: cgroup members, and the tree below its main and `known` processes."""
        self._reap(meta.sandbox_id)
        seeds = {proc for proc in known if procfs.alive(proc)}
        if meta.pid is not None and meta.start_time is not None and procfs.alive((meta.pid, meta.start_time)):
            seeds.add((meta.pid, meta.start_time))
        if self.cgroups.available:
            members = map(procfs.proc_of, self.cgroups.members(meta.sandbox_id))
            seeds.update(proc for proc in members if proc and procfs.alive(proc))
        return procfs.with_descendants(seeds)

    def _destroy(self, sandbox_id: str) -> None:
        sandbox_dir = self._sandbox_dir(sandbox_id)
        meta = self._read_meta(sandbox_id)
        if meta is not None:
            self._terminate(meta, _DESTROY_GRACE_S)
        if self.cgroups.available:
            self.cgroups.remove(sandbox_id)
        if self.network is not None:
            self.network.detach(sandbox_id, meta.net_index if meta else None)
        self.disk.release(sandbox_dir)
        if sandbox_dir.exists():
            shutil.rmtree(sandbox_dir)
        self._children.pop(sandbox_id, None)

    def _observe(self, sandbox_id: str) -> SandboxStatus:
        meta = self._read_meta(_checked(sandbox_id))
        if meta is None:
            return SandboxStatus(SandboxState.MISSING)
        state = SandboxState.RUNNING if self._alive(meta) else SandboxState.STOPPED
        return SandboxStatus(state, endpoint=self._endpoint(meta), labels=dict(meta.labels))

    def _endpoint(self, meta: _Meta) -> str | None:
        """The sandbox end of its veth (reachable from the host only), or host loopback without isolation."""
        if self.network is None:
            return f"http://127.0.0.1:{meta.port}"
        if meta.net_index is None:
            return None
        return f"http://{self.network.sandbox_ip(meta.net_index)}:{meta.port}"

    def _list(self) -> dict[str, SandboxStatus]:
        return {path.name: self._observe(path.name) for path in self._dir.iterdir() if (path / "meta.json").is_file()}

    def _alive(self, meta: _Meta) -> bool:
        self._reap(meta.sandbox_id)
        return meta.pid is not None and meta.start_time is not None and procfs.alive((meta.pid, meta.start_time))

    def _reap(self, sandbox_id: str) -> None:
        """Collect the exit status of a sandbox we spawned ourselves, so it does not linger as a zombie."""
        child = self._children.get(sandbox_id)
        if child is not None and child.poll() is not None:
            self._children.pop(sandbox_id, None)

    # Exec

    def _exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        self._refuse_if_weaker(sandbox_id)
        meta = self._require_meta(sandbox_id)
        with self._command(meta, argv, die_with_parent=True) as command:
            process = subprocess.Popen(
                command.argv,
                env=dict(env),
                cwd=self._cwd(meta),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=command.fds,
            )
        out, err = (_CappedReader(pipe) for pipe in (process.stdout, process.stderr))
        try:
            code = process.wait(timeout=timeout_s)
            code, note = (128 - code if code < 0 else code), ""
        except subprocess.TimeoutExpired:
            procfs.kill_tree(process.pid)
            process.wait(timeout=_KILL_WAIT_S)
            code = EXEC_TIMEOUT_EXIT
            note = f"\n[chowder] timed out after {timeout_s:g} s; the command's processes were killed.\n"
        return ExecResult(code, out.text(), err.text() + note)

    # Meta and layout

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self._dir / _checked(sandbox_id)

    def _box(self, meta: _Meta) -> Path:
        return self._dir / meta.sandbox_id / "box"

    def _root(self, meta: _Meta) -> str:
        return str(self._box(meta) / ROOT)

    def _files(self, meta: _Meta) -> BoxFiles:
        self.disk.mount(self._dir / meta.sandbox_id)
        return BoxFiles(self._box(meta), meta.uid)

    def _files_of(self, sandbox_id: str) -> BoxFiles:
        return self._files(self._require_meta(sandbox_id))

    def _read_meta(self, sandbox_id: str) -> _Meta | None:
        try:
            return _Meta.from_json(json.loads((self._dir / sandbox_id / "meta.json").read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise ProviderError(f"Sandbox {sandbox_id}: meta.json is unreadable ({exc}).") from exc

    def _require_meta(self, sandbox_id: str) -> _Meta:
        meta = self._read_meta(_checked(sandbox_id))
        if meta is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return meta

    def _write_meta(self, meta: _Meta) -> None:
        path = self._dir / meta.sandbox_id / "meta.json"
        temporary = path.with_name(".meta.json.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(meta), file)
        os.replace(temporary, path)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Across processes (API and worker): two never hand out one port or uid, nor start one sandbox twice."""
        fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work in a thread; OS failures become ProviderError, our own errors pass through."""
    try:
        return await asyncio.to_thread(function, *args)
    except ChowderError:
        raise
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise ProviderError(f"Process sandbox: {exc}") from exc


async def _chunks(file: BinaryIO, size: int) -> AsyncGenerator[bytes, None]:
    """Exactly `size` bytes of an open file, each chunk read in a thread, then the file closed. A file that shrank
    meanwhile is a ProviderError: its size was promised (Content-Length) and cannot be kept."""
    with file:
        left = size
        while left:
            chunk = await _off_loop(file.read, min(left, _CHUNK))
            if not chunk:
                raise ProviderError("The file shrank while it was being read.")
            left -= len(chunk)
            yield chunk


def _checked(sandbox_id: str) -> str:
    """Ids name directories and cgroups: no separators, no dot-files."""
    if not _SANDBOX_ID.fullmatch(sandbox_id):
        raise ProviderError(f"Invalid sandbox id {sandbox_id!r}.")
    return sandbox_id


def _prepare_dirs(sandboxes: Path) -> None:
    """Root's alone: a launch binds the box in a mount namespace of its own, so no sandbox uid traverses any of it."""
    sandboxes.mkdir(parents=True, exist_ok=True)
    sandboxes.chmod(0o700)


def _make_layout(sandbox_dir: Path, uid: int, disk: DiskQuota) -> None:
    sandbox_dir.mkdir(mode=0o700, exist_ok=True)
    box = sandbox_dir / "box"
    box.mkdir(mode=0o700, exist_ok=True)
    disk.provision(sandbox_dir, uid)
    os.chown(box, uid, uid, follow_symlinks=False)
    for name in _BOX_DIRS:
        (box / name).mkdir(mode=0o755, exist_ok=True)
        os.chown(box / name, uid, uid, follow_symlinks=False)


def _bindable(port: int) -> bool:
    """Free on both loopbacks (a gateway listens on 127.0.0.1 and ::1); a host without IPv6 skips ::1.

    With SO_REUSEADDR, as Node binds: a TIME_WAIT leftover doesn't count as taken, a listener does.
    """
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    return False
    return True


def _free_uid(base: int, taken: set[int]) -> int:
    """From `base` up: not another sandbox's, not a named user's, not running any process (another data dir)."""
    busy = taken | procfs.process_uids()
    return next(uid for uid in itertools.count(base) if uid not in busy and not _named_user(uid))


def _named_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


class _CappedReader(threading.Thread):
    """Drains one output pipe of a command to its end, keeping its first `_EXEC_OUTPUT_CAP` bytes: the tenant
    controls what a command prints, so it may never grow the control plane's memory past that, nor block the
    command on a full pipe."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        super().__init__(name="exec-output", daemon=True)
        assert pipe is not None
        self._pipe = pipe
        self._kept = bytearray()
        self._dropped = 0
        self.start()

    def run(self) -> None:
        with self._pipe:
            while chunk := os.read(self._pipe.fileno(), 64 * 1024):
                room = _EXEC_OUTPUT_CAP - len(self._kept)
                self._kept += chunk[:room]
                self._dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        """What was read once the pipe ended (or a moment after the command, if a leftover child keeps it open)."""
        self.join(_KILL_WAIT_S)
        text = bytes(self._kept).decode(errors="replace")
        if self._dropped:
            text += f"\n[chowder] output cut at {_EXEC_OUTPUT_CAP >> 20} MiB ({self._dropped} bytes more).\n"
        return text
