"""Backups of an instance's state: their records, the repository that keeps them, the store that holds their archives
and the runtime's side (the archive of a sandbox's state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from chowder.domain.ports.runtime import GatewayAccess, InstanceRuntimeSpec
from chowder.sandbox.base import FileStream, SandboxProvider


class BackupStatus(StrEnum):
    CREATING = "creating"
    COMPLETED = "completed"
    FAILED = "failed"


class BackupTrigger(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    UPGRADE = "upgrade"
    CLONE = "clone"


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """One backup of an instance: the org's, kept after the instance is deleted. `size_bytes` and `sha256` are the
    stored archive's, known once it is completed."""

    id: str
    organization_id: str
    instance_id: str
    status: BackupStatus
    trigger: BackupTrigger
    size_bytes: int | None
    sha256: str | None
    openclaw_version: str
    openclaw_release: str
    created_at: datetime
    completed_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class BackupSchedule:
    """Scheduled backups of an instance: one every `every_hours`, the newest `keep` scheduled ones kept."""

    every_hours: int
    keep: int


class BackupRepository(Protocol):
    """The org's backups (by org id, as every tenant read), and the two lookups across tenants the service makes
    for itself: the rows a crash left `creating`, and the instances whose scheduled backup is due."""

    def add(self, backup: BackupRecord) -> None: ...

    def get(self, org_id: str, backup_id: str) -> BackupRecord | None: ...

    def of_org(self, org_id: str, instance_id: str | None = None) -> list[BackupRecord]:
        """Newest first; with `instance_id`, that instance's only (deleted or not)."""
        ...

    def finish(self, backup: BackupRecord) -> bool:
        """Writes a `creating` backup's outcome (status, size, digest, times, error); False when it is no longer
        `creating` (failed meanwhile by the sweep)."""
        ...

    def delete(self, org_id: str, backup_id: str) -> bool: ...

    def in_use(self, backup_id: str) -> bool:
        """Whether an instance not deleted still needs it: a restore it has not put in place yet, or the upgrade
        under way that would roll back onto it."""
        ...

    def orphaned(self, now: datetime) -> list[BackupRecord]:
        """`creating` backups whose run no longer holds its instance's lease: the process running them died."""
        ...

    def scheduled_beyond(self, org_id: str, instance_id: str, keep: int, status: BackupStatus) -> list[BackupRecord]:
        """The instance's scheduled backups in `status` older than its newest `keep` such ones."""
        ...

    def due(self, now: datetime) -> list[tuple[str, str, datetime, int]]:
        """(org id, instance id, due at, every hours) of the running or stopped instances whose scheduled backup is
        due."""
        ...

    def claim_due(self, instance_id: str, due_at: datetime, next_at: datetime) -> bool:
        """Compare-and-set: moves the instance's next scheduled backup from `due_at` to `next_at`; True for the one
        caller that did (it takes that backup)."""
        ...


class BackupStore(Protocol):
    """Where archives are kept, by key (the backup's id): the data dir by default, or an S3-compatible bucket."""

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Stores the stream whole under `key` (or nothing: a failed put leaves no object); its size."""
        ...

    async def open(self, key: str) -> FileStream:
        """The stored archive, streamed; NotFound when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Idempotent: deleting what is not there is not an error."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored size, None when there is no such object."""
        ...


class StateArchiver(Protocol):
    """The agent runtime's side: a consistent archive of an instance's state, made inside its sandbox."""

    def archive(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess | None, name: str
    ) -> AbstractAsyncContextManager[FileStream]:
        """The archive, made with the running gateway quiesced (its work fenced, resumed on exit) or, with no
        `gateway`, of the stopped agent's state; removed from the sandbox on exit. ProviderError with the reason
        when it cannot be made (nothing is left behind)."""
        ...
