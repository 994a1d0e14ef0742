"""The audit log (extension): who changed what, when, with what outcome. Lifecycle transitions are written by the
transition itself, in its transaction (`persistence/instances.py`); state-changing calls by `api/audit.py` once
answered; a signup with the organization it creates. Entries are never changed or deleted by the API."""

from __future__ import annotations

from typing import Any

from chowder.core.actors import current_actor
from chowder.core.clock import utcnow
from chowder.core.ids import new_id
from chowder.core.pagination import Cursor, Page, PageRequest
from chowder.domain.ports.audit import AuditEntry, AuditFilter
from chowder.domain.ports.storage import Transactions


def audit_entry(
    org_id: str,
    action: str,
    *,
    instance_id: str | None = None,
    target_id: str | None = None,
    outcome: str = "ok",
    status_code: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry by the current actor (`core/actors.py`), now."""
    actor = current_actor()
    return AuditEntry(
        id=new_id(),
        organization_id=org_id,
        created_at=utcnow(),
        action=action,
        outcome=outcome,
        actor_key_id=actor.key_id,
        actor_key_prefix=actor.key_prefix,
        request_id=actor.request_id,
        instance_id=instance_id,
        target_id=target_id,
        status_code=status_code,
        detail=detail,
    )


def outcome_of(status_code: int) -> str:
    return "ok" if status_code < 400 else "refused" if status_code < 500 else "failed"


class AuditLog:
    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

    async def record(self, entry: AuditEntry) -> None:
        await self._tx(lambda uow: uow.audit.add(entry))

    async def of_org(self, org_id: str, where: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        entries = await self._tx(lambda uow: uow.audit.of_org(org_id, where, page))
        return Page.of(entries, page, Cursor.after)
