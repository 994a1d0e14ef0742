"""Backups (extension): of an instance through its routes (`configure`), and of the whole organization (org key),
which keeps them reachable once their instance is deleted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import StreamingResponse

from chowder.api.deps import OrgPrincipal, State, require
from chowder.domain.backups import BackupArchive
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.backups import BackupRecord
from chowder.schemas.backups import Backup

router = APIRouter(tags=["backups"])

CanConfigure = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


def _public(backup: BackupRecord) -> Backup:
    return Backup.model_validate(backup, from_attributes=True)


def _download(backup_id: str, archive: BackupArchive) -> StreamingResponse:
    """OpenClaw's own archive (tar.gz), streamed from the store with its size and digest."""
    headers = {
        "Content-Disposition": f'attachment; filename="{backup_id}.tar.gz"',
        "Content-Length": str(archive.size),
        "X-Backup-Sha256": archive.sha256,
    }
    return StreamingResponse(archive.chunks, media_type="application/gzip", headers=headers)


@router.post("/v1/instances/{instance_id}/backups", status_code=status.HTTP_201_CREATED)
async def create_backup(instance_id: str, principal: CanConfigure, state: State) -> Backup:
    """Of a running or stopped instance; answers once the backup is completed (seconds), or 502 with the reason
    when it failed (the failed backup stays listed)."""
    return _public(await state.backups.take(principal.organization_id, instance_id))


@router.get("/v1/instances/{instance_id}/backups")
async def list_instance_backups(instance_id: str, principal: CanConfigure, state: State) -> list[Backup]:
    """Newest first."""
    return [_public(b) for b in await state.backups.of_instance(principal.organization_id, instance_id)]


@router.get("/v1/instances/{instance_id}/backups/{backup_id}")
async def get_instance_backup(instance_id: str, backup_id: str, principal: CanConfigure, state: State) -> Backup:
    return _public(await state.backups.get(principal.organization_id, backup_id, instance_id))


@router.get("/v1/instances/{instance_id}/backups/{backup_id}/download")
async def download_instance_backup(
    instance_id: str, backup_id: str, principal: CanConfigure, state: State
) -> StreamingResponse:
    return _download(backup_id, await state.backups.archive(principal.organization_id, backup_id, instance_id))


@router.delete("/v1/instances/{instance_id}/backups/{backup_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_instance_backup(instance_id: str, backup_id: str, principal: OrgPrincipal, state: State) -> Response:
    """Org key only, as deleting the instance: a backup may be all that is left of an agent."""
    await state.backups.delete(principal.organization_id, backup_id, instance_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/backups")
async def list_backups(principal: OrgPrincipal, state: State, instance_id: str | None = None) -> list[Backup]:
    """Every backup of the organization, newest first, its deleted instances' included; `instance_id` narrows it."""
    return [_public(b) for b in await state.backups.of_org(principal.organization_id, instance_id)]


@router.get("/v1/backups/{backup_id}")
async def get_backup(backup_id: str, principal: OrgPrincipal, state: State) -> Backup:
    return _public(await state.backups.get(principal.organization_id, backup_id))


@router.get("/v1/backups/{backup_id}/download")
async def download_backup(backup_id: str, principal: OrgPrincipal, state: State) -> StreamingResponse:
    return _download(backup_id, await state.backups.archive(principal.organization_id, backup_id))


@router.delete("/v1/backups/{backup_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_backup(backup_id: str, principal: OrgPrincipal, state: State) -> Response:
    await state.backups.delete(principal.organization_id, backup_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
