"""The contract's file operations for providers whose sandboxes keep their files in a box on this host: each one
is `BoxFiles` on the sandbox's box (never following a symlink out), run off the event loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from chowder.core.offload import file_chunks
from chowder.sandbox.base import FileEntry, FileStream
from chowder.sandbox.boxfs import BoxFiles

T = TypeVar("T")


class BoxFileOperations(ABC):
    @abstractmethod
    def _box_files(self, sandbox_id: str) -> BoxFiles:
        """The sandbox's box; ProviderError when the sandbox does not exist."""

    @abstractmethod
    async def _offload(self, function: Callable[[], T]) -> T:
        """`function()` in a thread, its failures as the provider reports them."""

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        return await self._offload(lambda: self._box_files(sandbox_id).read(path, max_bytes, tail=tail))

    async def open_file(self, sandbox_id: str, path: str) -> FileStream:
        file, size = await self._offload(lambda: self._box_files(sandbox_id).open_regular(path))
        return FileStream(size, file_chunks(file, size))

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Atomic (temp file + rename, which replaces a symlink rather than writing through it); makes parents."""
        await self._offload(lambda: self._box_files(sandbox_id).write(path, data))

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        """Entries sorted by name; symlinks are described, not followed."""
        return await self._offload(lambda: self._box_files(sandbox_id).list_dir(path))

    async def move(self, sandbox_id: str, source: str, destination: str) -> None:
        """rename(2): `destination` is the new path, not a directory to move into; parents are made."""
        await self._offload(lambda: self._box_files(sandbox_id).move(source, destination))

    async def delete_path(self, sandbox_id: str, path: str) -> None:
        await self._offload(lambda: self._box_files(sandbox_id).delete(path))

    async def mkdir(self, sandbox_id: str, path: str) -> None:
        """Like `mkdir -p`."""
        await self._offload(lambda: self._box_files(sandbox_id).mkdir(path))
