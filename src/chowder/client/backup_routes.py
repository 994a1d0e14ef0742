"""Backups in the SDK (extension), as `Call`s. Each call that names a backup goes through its instance's routes
when given `instance_id` (a scoped key with `configure` can use those), and through the organization's otherwise
(an org key; they still reach the backups of a deleted instance)."""

from __future__ import annotations

import httpx

from chowder.client.calls import LONG_TIMEOUT_S, Call, call, many, nothing, one, raw
from chowder.client.routes import instance_path, segment
from chowder.schemas.backups import Backup


def _backup(backup_id: str, instance_id: str | None, tail: str = "") -> str:
    base = "/v1/backups" if instance_id is None else instance_path(instance_id, "/backups")
    return f"{base}/{segment(backup_id)}{tail}"


def create_backup(instance_id: str, *, idempotency_key: str | None = None) -> Call[Backup]:
    """A backup of the running or stopped instance, answered once completed (seconds); a failed one raises with
    the reason (502) and stays listed as `failed`."""
    path = instance_path(instance_id, "/backups")
    return call("POST", path, one(Backup), idempotency_key=idempotency_key, timeout=LONG_TIMEOUT_S)


def list_backups(instance_id: str | None = None) -> Call[list[Backup]]:
    """Newest first: the instance's, or (None) every backup of the organization, deleted instances' included."""
    if instance_id is None:
        return call("GET", "/v1/backups", many(Backup))
    return call("GET", instance_path(instance_id, "/backups"), many(Backup))


def get_backup(backup_id: str, *, instance_id: str | None = None) -> Call[Backup]:
    return call("GET", _backup(backup_id, instance_id), one(Backup))


def download_backup(backup_id: str, *, instance_id: str | None = None) -> Call[httpx.Response]:
    """OpenClaw's own archive (tar.gz); its SHA-256 is the backup's `sha256`."""
    return call("GET", _backup(backup_id, instance_id, "/download"), raw, timeout=LONG_TIMEOUT_S)


def delete_backup(backup_id: str, *, instance_id: str | None = None) -> Call[None]:
    """Org key only."""
    return call("DELETE", _backup(backup_id, instance_id), nothing)
