"""The instance's files: its OpenClaw state dir, reached through the sandbox provider (so a container or
pod provider serves the same routes). Path containment is the provider's; length limits are checked here."""

from __future__ import annotations

import mimetypes
import posixpath
import stat
from dataclasses import dataclass
from datetime import UTC, datetime

from chowder.core.errors import BadRequest, FileTooLarge, PayloadTooLarge, UnsupportedMediaType
from chowder.core.settings import MIB
from chowder.sandbox.base import FileEntry, FileStream, SandboxProvider

MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255
# A JSON answer holds the text several times over (bytes, str, encoded); a larger file streams through download.
MAX_INLINE_BYTES = 10 * MIB
_USE_DOWNLOAD = "use GET /v1/instances/{instance_id}/files/download instead."


@dataclass(frozen=True, slots=True)
class Listing:
    path: str
    entries: list[FileEntry]


@dataclass(frozen=True, slots=True)
class Download:
    """A file to stream, with the name for Content-Disposition and a guessed media type."""

    file: FileStream
    name: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Workspace:
    """One instance's file tree, for one request."""

    provider: SandboxProvider
    sandbox_id: str
    max_bytes: int

    async def list_dir(self, path: str) -> Listing:
        return Listing(path, await self.provider.list_dir(self.sandbox_id, checked(path)))

    async def read_text(self, path: str) -> str:
        """Up to MAX_INLINE_BYTES of UTF-8 text; 413 or 415 pointing at download otherwise."""
        try:
            data = await self.provider.read_file(self.sandbox_id, checked(path), max_bytes=MAX_INLINE_BYTES)
        except FileTooLarge:
            raise PayloadTooLarge(
                f"The file is larger than {MAX_INLINE_BYTES // MIB} MiB, the most returned inline; {_USE_DOWNLOAD}"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedMediaType(f"The file is not UTF-8 text; {_USE_DOWNLOAD}") from None

    async def download(self, path: str) -> Download:
        stream = await self.provider.open_file(self.sandbox_id, checked(path))
        name = posixpath.basename(path.rstrip("/")) or "download"
        return Download(stream, name, mimetypes.guess_type(name)[0] or "application/octet-stream")

    async def write(self, path: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"The file exceeds the {self.max_bytes // MIB} MiB limit.")
        await self.provider.write_file(self.sandbox_id, checked(path), data)

    async def move(self, source: str, destination: str) -> None:
        await self.provider.move(self.sandbox_id, checked(source), checked(destination))

    async def delete(self, path: str) -> None:
        await self.provider.delete_path(self.sandbox_id, checked(path))

    async def mkdir(self, path: str) -> None:
        await self.provider.mkdir(self.sandbox_id, checked(path))


def checked(path: str) -> str:
    """Refuse what no file system holds before it reaches the provider (which refuses escapes)."""
    if not path or len(path) > MAX_PATH_CHARS or "\0" in path:
        raise BadRequest("Invalid path: it must be 1-4096 characters with no NUL byte.")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in path.split("/")):
        raise BadRequest("Invalid path: a path component is longer than 255 bytes.")
    return path


def permissions_string(mode: int) -> str:
    return stat.filemode(mode)


def modified_at(entry: FileEntry) -> datetime:
    return datetime.fromtimestamp(entry.mod_time, UTC)
