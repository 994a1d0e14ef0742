"""The instance's files (its OpenClaw state dir): list, read, write, upload, download, move, delete, mkdir."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from chowder.api.deps import State, require
from chowder.domain import files
from chowder.domain.models import Permission, Principal
from chowder.sandbox.base import FileEntry as SandboxEntry
from chowder.schemas.files import DirectoryCreate, DirectoryListing, FileContent, FileEntry, FileMove

router = APIRouter(tags=["files"])

CanUseFiles = Annotated[Principal, Depends(require(Permission.FILES))]


@router.get("/v1/instances/{instance_id}/files")
async def list_directory(
    instance_id: str, principal: CanUseFiles, state: State, path: Annotated[str, Query()] = "."
) -> DirectoryListing:
    listing = await (await state.instances.workspace(principal, instance_id)).list_dir(path)
    return DirectoryListing(path=listing.path, entries=[_entry(entry) for entry in listing.entries])


@router.get("/v1/instances/{instance_id}/files/content")
async def read_file(instance_id: str, path: str, principal: CanUseFiles, state: State) -> FileContent:
    """UTF-8 text up to 10 MiB; other files answer 415, larger ones 413, and are read with /files/download."""
    content = await (await state.instances.workspace(principal, instance_id)).read_text(path)
    return FileContent(path=path, content=content)


@router.put("/v1/instances/{instance_id}/files/content", status_code=status.HTTP_204_NO_CONTENT)
async def write_file(instance_id: str, body: FileContent, principal: CanUseFiles, state: State) -> Response:
    """Creates or overwrites atomically, creating missing parent directories."""
    await (await state.instances.workspace(principal, instance_id)).write(body.path, body.content.encode())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/instances/{instance_id}/files/upload", status_code=status.HTTP_204_NO_CONTENT)
async def upload_file(
    instance_id: str,
    path: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
    principal: CanUseFiles,
    state: State,
) -> Response:
    workspace = await state.instances.workspace(principal, instance_id)
    # One byte past the limit is enough for the write to refuse the file (413).
    await workspace.write(path, await file.read(workspace.max_bytes + 1))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/instances/{instance_id}/files/download")
async def download_file(instance_id: str, path: str, principal: CanUseFiles, state: State) -> StreamingResponse:
    """Streamed from the sandbox, never held whole in memory."""
    download = await (await state.instances.workspace(principal, instance_id)).download(path)
    name = download.name
    headers = {
        "Content-Disposition": f"attachment; filename=\"{_ascii(name)}\"; filename*=UTF-8''{quote(name)}",
        "Content-Length": str(download.file.size),
    }
    return StreamingResponse(download.file.chunks, media_type=download.media_type, headers=headers)


@router.post("/v1/instances/{instance_id}/files/move", status_code=status.HTTP_204_NO_CONTENT)
async def move_file(instance_id: str, body: FileMove, principal: CanUseFiles, state: State) -> Response:
    """`mv` semantics, for files and directories."""
    await (await state.instances.workspace(principal, instance_id)).move(body.source, body.destination)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/instances/{instance_id}/files", status_code=status.HTTP_204_NO_CONTENT)
async def delete_file(instance_id: str, path: str, principal: CanUseFiles, state: State) -> Response:
    """A file, or a directory with everything in it."""
    await (await state.instances.workspace(principal, instance_id)).delete(path)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/instances/{instance_id}/files/mkdir", status_code=status.HTTP_204_NO_CONTENT)
async def make_directory(instance_id: str, body: DirectoryCreate, principal: CanUseFiles, state: State) -> Response:
    await (await state.instances.workspace(principal, instance_id)).mkdir(body.path)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _entry(entry: SandboxEntry) -> FileEntry:
    return FileEntry(
        name=entry.name,
        path=entry.path,
        is_dir=entry.is_dir,
        size=0 if entry.is_dir else entry.size,
        mod_time=files.modified_at(entry),
        permissions=files.permissions_string(entry.mode),
    )


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
