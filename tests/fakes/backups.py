"""Backups held in memory, as restore and clone read them (`domain.restores.BackupSource`): records by org, archives
as bytes, and a `take` that stores a new completed backup (or fails, when scripted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from chowder.core.clock import utcnow
from chowder.core.errors import GatewayUnavailable, InvalidState, NotFound
from chowder.core.ids import new_id
from chowder.domain.ports.backups import BackupRecord, BackupStatus, BackupTrigger


@dataclass(frozen=True, slots=True)
class HeldArchive:
    size: int
    chunks: AsyncIterator[bytes]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 3):
        yield data[start : start + 3]


class FakeBackups:
    def __init__(self) -> None:
        self.records: dict[str, BackupRecord] = {}
        self.archives: dict[str, bytes] = {}
        self.taken: list[tuple[str, BackupTrigger]] = []

    def add(
        self, org_id: str, instance_id: str, archive: bytes, status: BackupStatus = BackupStatus.COMPLETED
    ) -> BackupRecord:
        now = utcnow()
        record = BackupRecord(
            id=new_id(),
            organization_id=org_id,
            instance_id=instance_id,
            status=status,
            trigger=BackupTrigger.MANUAL,
            size_bytes=len(archive),
            sha256=None,
            openclaw_version="v1",
            openclaw_release="2026.1.1",
            created_at=now,
            completed_at=now if status == BackupStatus.COMPLETED else None,
            error=None,
        )
        self.records[record.id] = record
        self.archives[record.id] = archive
        return record

    def forget(self, backup_id: str) -> None:
        del self.records[backup_id]

    async def get(self, org_id: str, backup_id: str) -> BackupRecord:
        record = self.records.get(backup_id)
        if record is None or record.organization_id != org_id:
            raise NotFound("Backup not found.")
        return record

    async def archive(self, org_id: str, backup_id: str) -> HeldArchive:
        record = await self.get(org_id, backup_id)
        if record.status != BackupStatus.COMPLETED:
            raise InvalidState(f"Backup is {record.status}; it must be completed.")
        data = self.archives[backup_id]
        return HeldArchive(len(data), _chunks(data))

    async def take(self, org_id: str, instance_id: str, trigger: BackupTrigger) -> BackupRecord:
        if not self.archives.get("take"):
            raise GatewayUnavailable("backup failed: scripted")
        record = replace(self.add(org_id, instance_id, self.archives["take"]), trigger=trigger)
        self.records[record.id] = record
        self.taken.append((instance_id, trigger))
        return record
