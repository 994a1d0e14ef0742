"""Backup archives as files under the data dir (`<data_dir>/backups/<key>`): the default store. Files are 0600 and
the directory 0700 (archives hold an agent's whole state); a put writes a temporary file beside its target and
renames it into place only once complete, so a failed put leaves nothing and a reader never sees half an archive."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from chowder.core.errors import NotFound
from chowder.sandbox.base import FileStream

_CHUNK = 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class LocalBackupStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key) or key.startswith("."):
            raise ValueError(f"Invalid backup key {key!r}.")
        return self._dir / key

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        target = self._path(key)
        await asyncio.to_thread(self._dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_name(f".{key}.part")
        fd = await asyncio.to_thread(os.open, temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    await asyncio.to_thread(file.write, chunk)
                    size += len(chunk)
                await asyncio.to_thread(_sync, file.fileno())
            await asyncio.to_thread(os.replace, temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return size

    async def open(self, key: str) -> FileStream:
        try:
            file = await asyncio.to_thread(open, self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound("Backup archive not found.") from None
        size = os.fstat(file.fileno()).st_size
        return FileStream(size, _chunks(file))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._path(key))

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self._path(key))).st_size
        except FileNotFoundError:
            return None


def _sync(fd: int) -> None:
    os.fsync(fd)


async def _chunks(file: BinaryIO) -> AsyncGenerator[bytes, None]:
    """The file to its end, each chunk read in a thread; closed however the reader stops. Archives are written
    once and never changed, so the size it was opened with holds."""
    with file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk
