"""The organization's audit log (extension): newest first, filtered, paged like the other growing lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chowder.api.deps import OrgPrincipal, State
from chowder.api.pagination import PageParams, paged
from chowder.domain.ports.audit import AuditEntry, AuditFilter
from chowder.schemas.audit import AuditActor, AuditEvent

router = APIRouter(tags=["audit"])


async def audit_filter(
    instance_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    return AuditFilter(instance_id=instance_id, action=action, since=since, until=until)


@router.get("/v1/organization/audit")
async def organization_audit(
    principal: OrgPrincipal,
    state: State,
    where: Annotated[AuditFilter, Depends(audit_filter)],
    page: PageParams,
    request: Request,
    response: Response,
) -> list[AuditEvent]:
    """Every state-changing call and lifecycle transition of the organization, newest first; `since` inclusive,
    `until` not. Pages on request (`limit`, `cursor`)."""
    entries = await state.audit.of_org(principal.organization_id, where, page)
    return [_public(entry) for entry in paged(entries, request, response)]


def _public(entry: AuditEntry) -> AuditEvent:
    kind = "key" if entry.actor_key_id else "anonymous" if entry.request_id else "engine"
    actor = AuditActor(
        type=kind,
        key_id=entry.actor_key_id,
        key_prefix=entry.actor_key_prefix,
    )
    return AuditEvent(
        id=entry.id,
        created_at=entry.created_at,
        action=entry.action,
        outcome=entry.outcome,
        status_code=entry.status_code,
        actor=actor,
        instance_id=entry.instance_id,
        target_id=entry.target_id,
        request_id=entry.request_id,
        detail=entry.detail,
    )
