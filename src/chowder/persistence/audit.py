"""SQL repository of the audit log (the port in `domain/ports/audit.py`): inserts and filtered pages, nothing
else."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from chowder.core.pagination import PageRequest
from chowder.domain.ports.audit import AuditEntry, AuditFilter
from chowder.persistence.pages import newest_first
from chowder.persistence.records import columns_of, record_of
from chowder.persistence.tables import AuditEventRow


class SqlAuditRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, entry: AuditEntry) -> None:
        self._session.add(AuditEventRow(**columns_of(entry)))

    def of_org(self, org_id: str, where: AuditFilter, page: PageRequest) -> list[AuditEntry]:
        query = select(AuditEventRow).where(AuditEventRow.organization_id == org_id)
        if where.instance_id is not None:
            query = query.where(AuditEventRow.instance_id == where.instance_id)
        if where.action is not None:
            query = query.where(AuditEventRow.action == where.action)
        if where.since is not None:
            query = query.where(AuditEventRow.created_at >= where.since)
        if where.until is not None:
            query = query.where(AuditEventRow.created_at < where.until)
        rows = self._session.scalars(newest_first(query, AuditEventRow.created_at, AuditEventRow.id, page))
        return [record_of(AuditEntry, row) for row in rows]
