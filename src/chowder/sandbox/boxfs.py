"""Files below a sandbox's box (`root/`, `home/`, `logs/`, `tmp/`), which its tenant controls while the control
plane runs as root: every path is opened one component at a time with O_NOFOLLOW from a directory fd, so a
symlink swapped in mid-operation makes the operation fail instead of reaching outside. Tenant paths are relative
to `root/`; absolute paths and `..` are refused outright."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from chowder.core.errors import BadRequest, ChowderError, FileTooLarge, NotFound, ProviderError
from chowder.core.settings import MIB
from chowder.sandbox.base import FileEntry

ROOT = "root"
ESCAPE = "Path escapes the instance root."
_MISSING = "File not found."
ROOT_ITSELF = "The instance root itself cannot be written, moved or deleted."
LOOP = "Too many levels of symbolic links."
IS_DIR = "Is a directory."
NOT_REGULAR = "Not a regular file."
_MAX_HOPS = 40  # as Linux's own symlink limit
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class BoxFiles:
    """The file operations on one sandbox's box; `uid` owns what is created (the sandbox's own user). `seen_at`
    is where the app sees the box (by default at its own path, as the process provider binds it)."""

    def __init__(self, box: Path, uid: int, seen_at: PurePosixPath | None = None) -> None:
        self._box = box
        self._uid = uid
        self._seen_at = seen_at or PurePosixPath(box)

    def read(self, path: str, max_bytes: int, *, tail: bool = False) -> bytes:
        """At most `max_bytes` of a regular file: FileTooLarge beyond (also when it grew since it was sized), or
        with `tail` its last `max_bytes`."""
        file, size = self.open_regular(path)
        with file:
            if tail:
                file.seek(max(0, size - max_bytes))
            return within(file.read(max_bytes + 1), max_bytes, tail=tail)

    def open_regular(self, path: str) -> tuple[BinaryIO, int]:
        """A regular file open for reading, and its size. Opened O_NONBLOCK, so a FIFO without a writer does not
        wait, and refused unless regular before anything reads it (a FIFO or device would block or never end).
        A file object, not an fd: one its reader drops unread is still closed when collected."""
        with self._root_fd() as root_fd, _file_errors():
            *parents, name = self._resolve(path, follow_last=True) or ["."]
            dir_fd = _open_dir(root_fd, parents)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise BadRequest(IS_DIR)
            if not stat.S_ISREG(info.st_mode):
                raise BadRequest(NOT_REGULAR)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb"), info.st_size

    def write(self, path: str, data: bytes) -> None:
        with self._root_fd() as root_fd, _file_errors():
            *parents, name = _not_root(self._resolve(path, follow_last=False))
            dir_fd = _open_dir(root_fd, parents, create_as=self._uid)
            try:
                _write_atomic(dir_fd, name, data, self._uid)
            finally:
                os.close(dir_fd)

    def list_dir(self, path: str) -> list[FileEntry]:
        shown = "/".join(clean(path))
        with self._root_fd() as root_fd, _file_errors():
            dir_fd = _open_dir(root_fd, self._resolve(path, follow_last=True))
            try:
                with os.scandir(dir_fd) as entries:
                    found = [_entry(entry, f"{shown}/{entry.name}" if shown else entry.name) for entry in entries]
            finally:
                os.close(dir_fd)
        return sorted(found, key=lambda entry: entry.name)

    def move(self, source: str, destination: str) -> None:
        with self._root_fd() as root_fd, _file_errors():
            *source_parents, source_name = _not_root(self._resolve(source, follow_last=False))
            *target_parents, target_name = _not_root(self._resolve(destination, follow_last=False))
            source_fd = _open_dir(root_fd, source_parents)
            try:
                target_fd = _open_dir(root_fd, target_parents, create_as=self._uid)
                try:
                    os.rename(source_name, target_name, src_dir_fd=source_fd, dst_dir_fd=target_fd)
                finally:
                    os.close(target_fd)
            finally:
                os.close(source_fd)

    def delete(self, path: str) -> None:
        with self._root_fd() as root_fd, _file_errors():
            *parents, name = _not_root(self._resolve(path, follow_last=False))
            dir_fd = _open_dir(root_fd, parents)
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)

    def mkdir(self, path: str) -> None:
        with self._root_fd() as root_fd, _file_errors():
            os.close(_open_dir(root_fd, self._resolve(path, follow_last=True), create_as=self._uid))

    @contextlib.contextmanager
    def _root_fd(self) -> Iterator[int]:
        """An fd of the root, opened without following a symlink the tenant may have put in its place."""
        with _box_fd(self._box) as box_fd, _file_errors():
            root_fd = os.open(ROOT, _DIR_FLAGS, dir_fd=box_fd)
        try:
            yield root_fd
        finally:
            os.close(root_fd)

    def _resolve(self, path: str, *, follow_last: bool) -> list[str]:
        """Canonical components of `path` below the root, following symlinks that stay inside it."""
        parts = clean(path)
        resolved = self._walk([ROOT, *parts], follow_last=follow_last or not parts)
        if resolved is None or resolved[:1] != [ROOT]:
            raise BadRequest(ESCAPE)
        return resolved[1:]

    def _walk(self, parts: list[str], *, follow_last: bool) -> list[str] | None:
        """Components below the box, with symlinks resolved as the app sees them: an absolute target is read
        against where the box appears in the sandbox (`seen_at`). None when the path leaves the box. Only a
        lookup: what is then opened is opened component by component without following links (`_open_dir`)."""
        done: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if not done:
                    return None
                done.pop()
                continue
            candidate = self._box.joinpath(*done, name)
            if (todo or follow_last) and os.path.islink(candidate):
                hops += 1
                if hops > _MAX_HOPS:
                    raise BadRequest(LOOP)
                target = PurePosixPath(os.readlink(candidate))
                if target.is_absolute():
                    if not target.is_relative_to(self._seen_at):
                        return None
                    done, target = [], target.relative_to(self._seen_at)
                todo = [*target.parts, *todo]
                continue
            done.append(name)
        return done

    def open_log(self, log_file: str) -> int:
        """An append-only fd of a log file below the root (a process's stdout), created for the sandbox uid.

        Its caller may hold the provider-wide lock, so nothing here may wait on the tenant: opened O_NONBLOCK, a
        FIFO planted there fails at once (ENXIO without a reader) instead of blocking until one comes, and
        anything but a regular file is refused."""
        parts = clean(log_file)
        if not parts:
            raise ProviderError("The log file path is empty.")
        not_regular = ProviderError(f"The log file {log_file} is not a regular file.")
        *parents, name = [ROOT, *parts]
        with _box_fd(self._box) as box_fd:
            dir_fd = _open_dir(box_fd, parents, create_as=self._uid)
            try:
                fd = os.open(name, _LOG_FLAGS, 0o640, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    raise not_regular from exc
                raise
            finally:
                os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise not_regular
        _chown(fd, self._uid)
        return fd


def within(data: bytes, max_bytes: int, *, tail: bool) -> bytes:
    """A read of up to `max_bytes + 1` bytes, as `read` answers it: one byte too many is a file too large, or with
    `tail` the surplus dropped from the front."""
    if len(data) <= max_bytes:
        return data
    if tail:
        return data[-max_bytes:]
    raise FileTooLarge(f"The file is larger than {max_bytes / MIB:g} MiB.")


def file_error(code: int) -> ChowderError | None:
    """The API's answer to an OS error (errno `code`) on a tenant path; None for one that is not the tenant's doing."""
    known = _FILE_ERRORS.get(code)
    return None if known is None else type(known)(known.detail)


def _chown(fd: int, uid: int) -> None:
    if uid != os.geteuid():
        os.fchown(fd, uid, uid)


def clean(path: str) -> list[str]:
    """Components of a path relative to the root; absolute paths and `..` are refused outright."""
    if path.startswith("/") or "\0" in path:
        raise BadRequest(ESCAPE)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadRequest(ESCAPE)
    return parts


def _not_root(parts: list[str]) -> list[str]:
    if not parts:
        raise BadRequest(ROOT_ITSELF)
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
                    raise BadRequest(ESCAPE) from None
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
    errno.ELOOP: BadRequest(ESCAPE),
    errno.EISDIR: BadRequest(IS_DIR),
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
        known = file_error(exc.errno or 0)
        if known is None:
            raise
        raise known from exc
