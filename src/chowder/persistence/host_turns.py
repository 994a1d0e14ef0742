"""Chat turns serialized across the processes of one host that share a SQLite database (`SessionTurns`): the
workers of `chowder serve --workers N`, or a `serve --no-engine` beside a `serve`.

A turn holds a Linux open-file-description lock (`F_OFD_SETLK`) on the byte of a lock file beside the database
that its session hashes to, for as long as it runs: the kernel frees it with the file, also when the process
dies. Within a process, turns first queue on an asyncio lock (arrival order), so one waits per session and
process; between processes the waiting one asks again every 20 ms, so the first to ask after a release goes
next. The holder writes its API key into `session_turns`; any process's model endpoint reads it there, and only
while the byte is really locked (a row a dead process left behind names nobody)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from chowder.domain.turns import SessionLocks
from chowder.persistence.turns import lock_key

_RETRY_S = 0.02
# Linux's struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for open-file-description locks), padded.
_FLOCK = "hhqqi4x"
_UPSERT = text(
    "INSERT INTO session_turns (instance_id, session_id, key_id) VALUES (:instance_id, :session_id, :key_id)"
    " ON CONFLICT (instance_id, session_id) DO UPDATE SET key_id = excluded.key_id"
)
_HOLDER = text("SELECT key_id FROM session_turns WHERE instance_id = :instance_id AND session_id = :session_id")


def lock_file_of(database: Path) -> Path:
    """The lock file every process of the SQLite database `database` uses: beside it, whatever their data dirs."""
    return database.with_name(f"{database.name}.turns")


class HostTurns:
    """`lock_path`: the database's lock file (`lock_file_of`); `engine` the database's."""

    def __init__(self, lock_path: Path, engine: Engine) -> None:
        self._path = lock_path
        self._engine = engine
        self._queue = SessionLocks()  # this process's turns, in arrival order, before one asks for the lock
        self._held: dict[tuple[str, str], str | None] = {}  # the sessions this process's turns hold

    @asynccontextmanager
    async def hold(self, instance_id: str, session_id: str, key_id: str | None = None) -> AsyncIterator[None]:
        session = (instance_id, session_id)
        async with self._queue.hold(instance_id, session_id):
            turn = self._open()
            try:
                while not _try_lock(turn, _offset(session)):
                    await asyncio.sleep(_RETRY_S)
                row = {"instance_id": instance_id, "session_id": session_id, "key_id": key_id}
                # Written before the lock can go: written late, the row would name this turn under the next one.
                await _to_its_end(asyncio.to_thread(self._write, row))
                self._held[session] = key_id
                try:
                    yield
                finally:
                    del self._held[session]
            finally:
                os.close(turn)  # the lock goes with its file description, whatever happened

    async def key_of(self, instance_id: str, session_id: str) -> str | None:
        """A turn of this process is known here; another's is read from the database while its byte is locked."""
        session = (instance_id, session_id)
        if session in self._held:
            return self._held[session]
        probe = self._open()  # closing it frees nothing: the locks are the holders' descriptions'
        try:
            if not _locked(probe, _offset(session)):
                return None
        finally:
            os.close(probe)
        with self._engine.connect() as connection:
            held: str | None = connection.execute(
                _HOLDER, {"instance_id": instance_id, "session_id": session_id}
            ).scalar()
            return held

    def _open(self) -> int:
        return os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _write(self, row: dict[str, str | None]) -> None:
        with self._engine.begin() as connection:
            connection.execute(_UPSERT, row)


async def _to_its_end(work: Awaitable[None]) -> None:
    """`work`, run to its end even when the caller is cancelled meanwhile (the cancellation then follows)."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _offset(session: tuple[str, str]) -> int:
    """The session's byte: its advisory lock key, made a non-negative file offset."""
    return lock_key(*session) & 0x7FFF_FFFF_FFFF_FFFF


def _request(kind: int, offset: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, offset, 1, 0)


def _try_lock(fd: int, offset: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _request(fcntl.F_WRLCK, offset))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _locked(fd: int, offset: int) -> bool:
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _request(fcntl.F_WRLCK, offset))
    kind: int = struct.unpack(_FLOCK, answer)[0]
    return kind != fcntl.F_UNLCK
