"""SQL repository of backups (the port in `domain/ports/backups.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.orm import Session

from chowder.domain.models import Status
from chowder.domain.ports.backups import BackupRecord, BackupStatus, BackupTrigger
from chowder.persistence.records import changed_one, columns_of, records_of
from chowder.persistence.tables import BackupRow, InstanceRow

_TABLE = BackupRow.__table__
_BACKED_UP = (Status.RUNNING.value, Status.STOPPED.value)


class SqlBackupRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, backup: BackupRecord) -> None:
        self._session.add(BackupRow(**columns_of(backup)))
        self._session.flush()

    def get(self, org_id: str, backup_id: str) -> BackupRecord | None:
        found = self._read(select(_TABLE).where(_TABLE.c.id == backup_id, _TABLE.c.organization_id == org_id))
        return found[0] if found else None

    def of_org(self, org_id: str, instance_id: str | None = None) -> list[BackupRecord]:
        statement = select(_TABLE).where(_TABLE.c.organization_id == org_id)
        if instance_id is not None:
            statement = statement.where(_TABLE.c.instance_id == instance_id)
        return self._read(statement.order_by(_TABLE.c.created_at.desc(), _TABLE.c.id.desc()))

    def finish(self, backup: BackupRecord) -> bool:
        return changed_one(
            self._session,
            update(BackupRow)
            .where(BackupRow.id == backup.id, BackupRow.status == BackupStatus.CREATING.value)
            .values(
                status=backup.status.value,
                size_bytes=backup.size_bytes,
                sha256=backup.sha256,
                completed_at=backup.completed_at,
                error=backup.error,
            ),
        )

    def delete(self, org_id: str, backup_id: str) -> bool:
        row = self._session.get(BackupRow, backup_id)
        if row is None or row.organization_id != org_id:
            return False
        self._session.delete(row)
        self._session.flush()
        return True

    def in_use(self, backup_id: str) -> bool:
        named = (InstanceRow.restore_backup_id == backup_id) | (InstanceRow.upgrade_backup_id == backup_id)
        statement = select(InstanceRow.id).where(named, InstanceRow.status != Status.TERMINATED.value).limit(1)
        return self._session.execute(statement).first() is not None

    def orphaned(self, now: datetime) -> list[BackupRecord]:
        """A run holds its instance's lease as `backup:<id>` from before its row exists until after it is
        finished, so a `creating` row without that lease in force has no run any more."""
        held = and_(
            InstanceRow.id == _TABLE.c.instance_id,
            InstanceRow.lease_owner == "backup:" + _TABLE.c.id,
            InstanceRow.lease_expires_at >= now,
        )
        statement = select(_TABLE).where(
            _TABLE.c.status == BackupStatus.CREATING.value, ~select(InstanceRow.id).where(held).exists()
        )
        return self._read(statement)

    def scheduled_beyond(self, org_id: str, instance_id: str, keep: int, status: BackupStatus) -> list[BackupRecord]:
        statement = (
            select(_TABLE)
            .where(
                _TABLE.c.organization_id == org_id,
                _TABLE.c.instance_id == instance_id,
                _TABLE.c.trigger == BackupTrigger.SCHEDULED.value,
                _TABLE.c.status == status.value,
            )
            .order_by(_TABLE.c.created_at.desc(), _TABLE.c.id.desc())
            .offset(keep)
        )
        return self._read(statement)

    def due(self, now: datetime) -> list[tuple[str, str, datetime, int]]:
        columns = (
            InstanceRow.organization_id,
            InstanceRow.id,
            InstanceRow.backup_due_at,
            InstanceRow.backup_every_hours,
        )
        rows = self._session.execute(
            select(*columns).where(InstanceRow.backup_due_at <= now, InstanceRow.status.in_(_BACKED_UP))
        )
        return [(org, instance, due, every) for org, instance, due, every in rows if due is not None and every]

    def claim_due(self, instance_id: str, due_at: datetime, next_at: datetime) -> bool:
        return changed_one(
            self._session,
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.backup_due_at == due_at)
            .values(backup_due_at=next_at),
        )

    def _read(self, statement: Select[Any]) -> list[BackupRecord]:
        return records_of(BackupRecord, self._session.execute(statement))
