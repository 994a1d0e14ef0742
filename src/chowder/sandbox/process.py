"""The `process` provider: each sandbox is a process tree on this host, wrapped in whatever isolation it offers.

Layout under `<data_dir>/sandboxes/<id>/`: `meta.json` (root only) and `box/`, owned by the sandbox uid and
bound read-write into the sandbox at the same path: `root/` (the app's state, SandboxInfo.root), `home/`,
`logs/`, `tmp/`. Sandboxes are spawned detached and without `--die-with-parent`, so they outlive a crashed
control plane; the next one adopts them through the pid and start time kept in meta.json. cgroup limits come
from `SandboxSpec.resources` (the runtime fills them from settings), kept in meta.json too.

The control plane runs as root while the tenant controls everything under `box/`, so every path below the box
is opened one component at a time with O_NOFOLLOW from a directory fd: a symlink swapped in mid-operation
makes the operation fail instead of reaching outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from chowder.core.errors import BadRequest, ChowderError, NotFound, ProviderError
from chowder.core.settings import Settings
from chowder.sandbox.base import (
    ExecResult,
    FileEntry,
    LaunchSpec,
    Resources,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)
from chowder.sandbox.isolation import Cgroups, detect_isolation, join_cgroups

T = TypeVar("T")
Proc = tuple[int, int]  # (pid, start time): a pid alone may have been reused

NETWORK = "host loopback shared: every endpoint on it authenticates"
EXEC_TIMEOUT_EXIT = 124
_ESCAPE = "Path escapes the instance root."
_MISSING = "File not found."
_SANDBOX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_BOX_DIRS = ("root", "home", "logs", "tmp")
_DESTROY_GRACE_S = 2.0
_KILL_WAIT_S = 10.0
_POLL_S = 0.05


@dataclass(slots=True)
class _Meta:
    sandbox_id: str
    labels: dict[str, str]
    port: int
    uid: int
    resources: Resources
    read_only_paths: list[str]
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
        self.cgroups = Cgroups(enabled=settings.sandbox_isolation != "none")
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def isolation_report(self) -> dict[str, str]:
        return {
            "user": self.isolation.user,
            "namespaces": self.isolation.namespaces,
            "cgroups": self.cgroups.note,
            "network": NETWORK,
        }

    def isolation_summary(self) -> str:
        """The report on one line, for the start-up log."""
        return "; ".join(f"{mechanism}: {text}" for mechanism, text in self.isolation_report().items())

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        return await _off_loop(self._create, spec)

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await _off_loop(self._start, sandbox_id, launch)

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await _off_loop(self._stop, sandbox_id, grace_s)

    async def destroy(self, sandbox_id: str) -> None:
        await _off_loop(self._destroy, sandbox_id)

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        return await _off_loop(self._observe, sandbox_id)

    async def list(self) -> dict[str, SandboxStatus]:
        return await _off_loop(self._list)

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        """Run a short command in the sandbox's isolation and cgroup, with exactly `env`.

        On timeout its process tree is killed and the result has exit code 124 and a note at the end of stderr.
        """
        return await _off_loop(self._exec, sandbox_id, argv, env, timeout_s)

    async def read_file(self, sandbox_id: str, path: str) -> bytes:
        return await _off_loop(self._read_file, sandbox_id, path)

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Atomic (temp file + rename, which replaces a symlink rather than writing through it); makes parents."""
        await _off_loop(self._write_file, sandbox_id, path, data)

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        """Entries sorted by name; symlinks are described, not followed."""
        return await _off_loop(self._list_dir, sandbox_id, path)

    async def move(self, sandbox_id: str, source: str, destination: str) -> None:
        """rename(2): `destination` is the new path, not a directory to move into; parents are made."""
        await _off_loop(self._move, sandbox_id, source, destination)

    async def delete_path(self, sandbox_id: str, path: str) -> None:
        await _off_loop(self._delete_path, sandbox_id, path)

    async def mkdir(self, sandbox_id: str, path: str) -> None:
        """Like `mkdir -p`."""
        await _off_loop(self._mkdir, sandbox_id, path)

    # Lifecycle

    def _create(self, spec: SandboxSpec) -> SandboxInfo:
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
                )
                _make_layout(sandbox_dir, uid)
                self._write_meta(meta)
        return SandboxInfo(
            meta.sandbox_id, root=self._root(meta), home=str(self._box(meta) / "home"), app_port=meta.port
        )

    def _allocate(self) -> tuple[int, int]:
        """A port and uid no other sandbox holds; the caller holds the lock, so no other process races us."""
        metas = [self._read_meta(path.name) for path in self._dir.iterdir() if (path / "meta.json").is_file()]
        ports = {meta.port for meta in metas if meta}
        uids = {meta.uid for meta in metas if meta}
        low, high = self._settings.gateway_port_min, self._settings.gateway_port_max
        port = next((p for p in range(low, high + 1) if p not in ports and _bindable(p)), None)
        if port is None:
            raise ProviderError(f"No free gateway port between {low} and {high}.")
        uid = _free_uid(self._settings.sandbox_uid_base, uids) if self.isolation.setpriv else os.geteuid()
        return port, uid

    def _start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        with self._lock():
            meta = self._require_meta(sandbox_id)
            if self._alive(meta):
                return
            self._terminate(meta, grace_s=0.0)  # leftovers of a crashed run (e.g. setsid children) must not linger
            missing = [path for path in meta.read_only_paths if not os.path.exists(path)]
            if missing:
                raise ProviderError(f"Read-only path {missing[0]} does not exist.")
            log_fd = self._open_log(meta, launch.log_file)
            try:
                process = subprocess.Popen(
                    self._command(meta, list(launch.argv), die_with_parent=False),
                    env=dict(launch.env),
                    cwd=self._cwd(meta),
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                os.close(log_fd)
            self._children[sandbox_id] = process
            meta.pid, meta.start_time = process.pid, _start_time(process.pid)
            self._write_meta(meta)

    def _command(self, meta: _Meta, argv: list[str], *, die_with_parent: bool) -> list[str]:
        wrapped = self.isolation.wrap(
            argv,
            uid=meta.uid,
            box=str(self._box(meta)),
            root=self._root(meta),
            read_only_paths=meta.read_only_paths,
            die_with_parent=die_with_parent,
        )
        procs_files = self.cgroups.ensure(meta.sandbox_id, meta.resources) if self.cgroups.available else []
        return join_cgroups(procs_files, wrapped)

    def _cwd(self, meta: _Meta) -> str:
        """bwrap changes into the root itself (--chdir), inside its own mount view."""
        return "/" if self.isolation.bwrap else self._root(meta)

    def _open_log(self, meta: _Meta, log_file: str) -> int:
        """Append-only log fd under the root, opened without following the tenant's symlinks."""
        parts = _clean(log_file)
        if not parts:
            raise ProviderError("The log file path is empty.")
        *parents, name = [Path(self._root(meta)).name, *parts]
        with _box_fd(self._box(meta)) as box_fd:
            dir_fd = _open_dir(box_fd, parents, create_as=meta.uid)
            try:
                fd = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640, dir_fd=dir_fd
                )
            finally:
                os.close(dir_fd)
        _chown(fd, meta.uid)
        return fd

    def _stop(self, sandbox_id: str, grace_s: float) -> None:
        meta = self._read_meta(_checked(sandbox_id))
        if meta is not None:
            self._terminate(meta, grace_s)

    def _terminate(self, meta: _Meta, grace_s: float) -> None:
        """SIGTERM the whole tree, SIGKILL what remains after the grace; return once nothing is left."""
        procs = self._processes(meta, set())
        _signal(procs, signal.SIGTERM)
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
            _signal(procs, signal.SIGKILL)
            time.sleep(_POLL_S)

    def _processes(self, meta: _Meta, known: set[Proc]) -> set[Proc]:
        """Every live process of the sandbox: cgroup members, and the tree below its main and `known` processes."""
        self._reap(meta.sandbox_id)
        seeds = {proc for proc in known if _alive(proc)}
        if meta.pid is not None and meta.start_time is not None and _alive((meta.pid, meta.start_time)):
            seeds.add((meta.pid, meta.start_time))
        if self.cgroups.available:
            seeds.update(proc for proc in map(_proc, self.cgroups.members(meta.sandbox_id)) if proc and _alive(proc))
        return _with_descendants(seeds)

    def _destroy(self, sandbox_id: str) -> None:
        sandbox_dir = self._sandbox_dir(sandbox_id)
        meta = self._read_meta(sandbox_id)
        if meta is not None:
            self._terminate(meta, _DESTROY_GRACE_S)
        if self.cgroups.available:
            self.cgroups.remove(sandbox_id)
        if sandbox_dir.exists():
            shutil.rmtree(sandbox_dir)
        self._children.pop(sandbox_id, None)

    def _observe(self, sandbox_id: str) -> SandboxStatus:
        meta = self._read_meta(_checked(sandbox_id))
        if meta is None:
            return SandboxStatus(SandboxState.MISSING)
        state = SandboxState.RUNNING if self._alive(meta) else SandboxState.STOPPED
        return SandboxStatus(state, endpoint=f"http://127.0.0.1:{meta.port}", labels=dict(meta.labels))

    def _list(self) -> dict[str, SandboxStatus]:
        return {path.name: self._observe(path.name) for path in self._dir.iterdir() if (path / "meta.json").is_file()}

    def _alive(self, meta: _Meta) -> bool:
        self._reap(meta.sandbox_id)
        return meta.pid is not None and meta.start_time is not None and _alive((meta.pid, meta.start_time))

    def _reap(self, sandbox_id: str) -> None:
        """Collect the exit status of a sandbox we spawned ourselves, so it does not linger as a zombie."""
        child = self._children.get(sandbox_id)
        if child is not None and child.poll() is not None:
            self._children.pop(sandbox_id, None)

    # Exec

    def _exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        meta = self._require_meta(sandbox_id)
        process = subprocess.Popen(
            self._command(meta, argv, die_with_parent=True),
            env=dict(env),
            cwd=self._cwd(meta),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_tree(process.pid)
            out, err = process.communicate(timeout=_KILL_WAIT_S)
            note = f"\n[chowder] timed out after {timeout_s:g} s; the command's processes were killed.\n"
            return ExecResult(EXEC_TIMEOUT_EXIT, _text(out), _text(err) + note)
        code = process.returncode
        return ExecResult(128 - code if code < 0 else code, _text(out), _text(err))

    # Files

    def _read_file(self, sandbox_id: str, path: str) -> bytes:
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            *parents, name = self._resolve(meta, path, follow_last=True) or ["."]
            dir_fd = _open_dir(root_fd, parents)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
            with os.fdopen(fd, "rb") as file:
                mode = os.fstat(file.fileno()).st_mode
                if stat.S_ISDIR(mode):
                    raise BadRequest("Is a directory.")
                if not stat.S_ISREG(mode):
                    raise BadRequest("Not a regular file.")
                return file.read()

    def _write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            *parents, name = _not_root(self._resolve(meta, path, follow_last=False))
            dir_fd = _open_dir(root_fd, parents, create_as=meta.uid)
            try:
                _write_atomic(dir_fd, name, data, meta.uid)
            finally:
                os.close(dir_fd)

    def _list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        shown = "/".join(_clean(path))
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            dir_fd = _open_dir(root_fd, self._resolve(meta, path, follow_last=True))
            try:
                with os.scandir(dir_fd) as entries:
                    found = [_entry(entry, f"{shown}/{entry.name}" if shown else entry.name) for entry in entries]
            finally:
                os.close(dir_fd)
        return sorted(found, key=lambda entry: entry.name)

    def _move(self, sandbox_id: str, source: str, destination: str) -> None:
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            *source_parents, source_name = _not_root(self._resolve(meta, source, follow_last=False))
            *target_parents, target_name = _not_root(self._resolve(meta, destination, follow_last=False))
            source_fd = _open_dir(root_fd, source_parents)
            try:
                target_fd = _open_dir(root_fd, target_parents, create_as=meta.uid)
                try:
                    os.rename(source_name, target_name, src_dir_fd=source_fd, dst_dir_fd=target_fd)
                finally:
                    os.close(target_fd)
            finally:
                os.close(source_fd)

    def _delete_path(self, sandbox_id: str, path: str) -> None:
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            *parents, name = _not_root(self._resolve(meta, path, follow_last=False))
            dir_fd = _open_dir(root_fd, parents)
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)

    def _mkdir(self, sandbox_id: str, path: str) -> None:
        with self._root_fd(sandbox_id) as (root_fd, meta), _file_errors():
            os.close(_open_dir(root_fd, self._resolve(meta, path, follow_last=True), create_as=meta.uid))

    @contextlib.contextmanager
    def _root_fd(self, sandbox_id: str) -> Iterator[tuple[int, _Meta]]:
        """An fd of the root, opened without following a symlink the tenant may have put in its place."""
        meta = self._require_meta(sandbox_id)
        with _box_fd(self._box(meta)) as box_fd, _file_errors():
            root_fd = os.open("root", _DIR_FLAGS, dir_fd=box_fd)
        try:
            yield root_fd, meta
        finally:
            os.close(root_fd)

    def _resolve(self, meta: _Meta, path: str, *, follow_last: bool) -> list[str]:
        """Canonical components of `path` below the root, following symlinks that stay inside it.

        Absolute paths inside the sandbox are host paths (the box is bound at the same place), so the
        host's realpath resolves a tenant symlink exactly as the app would.
        """
        parts = _clean(path)
        root = os.path.realpath(self._root(meta))
        if follow_last or not parts:
            target = os.path.realpath(os.path.join(root, *parts))
        else:
            target = os.path.join(os.path.realpath(os.path.join(root, *parts[:-1])), parts[-1])
        if target != root and not target.startswith(root + "/"):
            raise BadRequest(_ESCAPE)
        relative = os.path.relpath(target, root)
        return [] if relative == "." else relative.split("/")

    # Meta and layout

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self._dir / _checked(sandbox_id)

    def _box(self, meta: _Meta) -> Path:
        return self._dir / meta.sandbox_id / "box"

    def _root(self, meta: _Meta) -> str:
        return str(self._box(meta) / "root")

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


def _checked(sandbox_id: str) -> str:
    """Ids name directories and cgroups: no separators, no dot-files."""
    if not _SANDBOX_ID.fullmatch(sandbox_id):
        raise ProviderError(f"Invalid sandbox id {sandbox_id!r}.")
    return sandbox_id


def _prepare_dirs(sandboxes: Path) -> None:
    """The data dir and `sandboxes/` must be traversable (not listable) so a sandbox uid reaches its box."""
    sandboxes.mkdir(parents=True, exist_ok=True)
    sandboxes.chmod(0o711)
    data_dir = sandboxes.parent.stat()
    if data_dir.st_uid == os.geteuid() and data_dir.st_mode & 0o011 != 0o011:
        sandboxes.parent.chmod(stat.S_IMODE(data_dir.st_mode) | 0o011)


def _make_layout(sandbox_dir: Path, uid: int) -> None:
    sandbox_dir.mkdir(mode=0o711, exist_ok=True)
    box = sandbox_dir / "box"
    box.mkdir(mode=0o700, exist_ok=True)
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
    busy = taken | _process_uids()
    return next(uid for uid in itertools.count(base) if uid not in busy and not _named_user(uid))


def _named_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _process_uids() -> set[int]:
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                uids.add(entry.stat().st_uid)
    return uids


def _chown(fd: int, uid: int) -> None:
    if uid != os.geteuid():
        os.fchown(fd, uid, uid)


# /proc: liveness and process trees


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) from /proc/<pid>/stat; the comm field may contain spaces and parentheses."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _start_time(pid: int) -> int | None:
    found = _stat(pid)
    return found[2] if found else None


def _proc(pid: int) -> Proc | None:
    start = _start_time(pid)
    return None if start is None else (pid, start)


def _alive(proc: Proc) -> bool:
    """Same process (start time matches) and not a zombie: PID 1 here may never reap an adopted sandbox."""
    found = _stat(proc[0])
    return found is not None and found[2] == proc[1] and found[0] not in ("Z", "X")


def _with_descendants(seeds: set[Proc]) -> set[Proc]:
    """`seeds` plus every live process below them, following ppid links (setsid does not change those)."""
    children: dict[int, list[Proc]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (found := _stat(int(entry.name))) and found[0] not in ("Z", "X"):
            children.setdefault(found[1], []).append((int(entry.name), found[2]))
    result, queue = set(seeds), [pid for pid, _ in seeds]
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in result:
                result.add(child)
                queue.append(child[0])
    return result


def _signal(procs: Iterable[Proc], sig: signal.Signals) -> None:
    for pid, start in procs:
        if _alive((pid, start)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _kill_tree(pid: int) -> None:
    """SIGKILL a command we spawned (its own session) and everything below it."""
    root = _proc(pid)
    _signal(_with_descendants({root} if root else set()), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _text(data: bytes) -> str:
    return data.decode(errors="replace")


# Files: tenant paths, opened without ever following a symlink out


def _clean(path: str) -> list[str]:
    """Components of a path relative to the root; absolute paths and `..` are refused outright."""
    if path.startswith("/") or "\0" in path:
        raise BadRequest(_ESCAPE)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadRequest(_ESCAPE)
    return parts


def _not_root(parts: list[str]) -> list[str]:
    if not parts:
        raise BadRequest("The instance root itself cannot be written, moved or deleted.")
    return parts


@contextlib.contextmanager
def _box_fd(box: Path) -> Iterator[int]:
    fd = os.open(box, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_dir(base_fd: int, parts: list[str], create_as: int | None = None) -> int:
    """An fd of base/parts, never following a symlink; with `create_as`, missing dirs are made for that uid."""
    fd = os.dup(base_fd)
    try:
        for part in parts:
            if create_as is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                    if create_as != os.geteuid():
                        os.chown(part, create_as, create_as, dir_fd=fd, follow_symlinks=False)
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise BadRequest(_ESCAPE) from None
                raise
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _write_atomic(dir_fd: int, name: str, data: bytes, uid: int) -> None:
    """Write a temp file next to `name`, then rename over it; an existing file keeps its mode."""
    try:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        mode = stat.S_IMODE(existing) if stat.S_ISREG(existing) else 0o644
    except FileNotFoundError:
        mode = 0o644
    temporary = f".chowder-{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as file:
            _chown(file.fileno(), uid)
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _entry(entry: os.DirEntry[str], path: str) -> FileEntry:
    info = entry.stat(follow_symlinks=False)
    return FileEntry(
        name=entry.name,
        path=path,
        is_dir=stat.S_ISDIR(info.st_mode),
        size=info.st_size,
        mod_time=info.st_mtime,
        mode=info.st_mode,
    )


_FILE_ERRORS: dict[int, ChowderError] = {
    errno.ENOENT: NotFound(_MISSING),
    errno.ELOOP: BadRequest(_ESCAPE),
    errno.EISDIR: BadRequest("Is a directory."),
    errno.ENOTDIR: BadRequest("Not a directory."),
    errno.ENOTEMPTY: BadRequest("Directory not empty."),
    errno.EEXIST: BadRequest("Already exists."),
    errno.EINVAL: BadRequest("Invalid move (into itself?)."),
}


@contextlib.contextmanager
def _file_errors() -> Iterator[None]:
    """OS errors of tenant paths as the 400/404 the client should see; anything else stays an OSError."""
    try:
        yield
    except OSError as exc:
        known = _FILE_ERRORS.get(exc.errno or 0)
        if known is None:
            raise
        raise type(known)(known.detail) from exc
