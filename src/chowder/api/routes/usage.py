"""Token usage per instance (by session and model) and per organization (by instance and key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from chowder.api.deps import DbSession, OrgPrincipal, State, require
from chowder.domain import usage
from chowder.domain.models import Permission, Principal
from chowder.schemas.usage import (
    InstanceUsage,
    InstanceUsageItem,
    KeyUsage,
    ModelUsage,
    OrganizationUsage,
    SessionUsage,
    UsageTotals,
)

router = APIRouter(tags=["usage"])

CanRead = Annotated[Principal, Depends(require(Permission.READ))]


def _fields(totals: usage.Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
    }


@router.get("/v1/instances/{instance_id}/usage")
async def instance_usage(
    instance_id: str,
    principal: CanRead,
    state: State,
    session: DbSession,
    since: datetime | None = None,
    until: datetime | None = None,
) -> InstanceUsage:
    """Tokens of the instance's model calls, per session and per model; `since` inclusive, `until` not."""
    usage.check_range(since, until)
    await state.instances.get(principal, instance_id)
    org = principal.organization_id
    return InstanceUsage(
        instance_id=instance_id,
        since=since,
        until=until,
        total=UsageTotals(**_fields(usage.totals(session, org, None, since, until, instance_id)[0])),
        sessions=[
            SessionUsage(session_id=t.group, **_fields(t))
            for t in usage.totals(session, org, "session_id", since, until, instance_id)
        ],
        models=[
            ModelUsage(model=t.group or "unknown", **_fields(t))
            for t in usage.totals(session, org, "model", since, until, instance_id)
        ],
    )


@router.get("/v1/organization/usage")
def organization_usage(
    principal: OrgPrincipal, session: DbSession, since: datetime | None = None, until: datetime | None = None
) -> OrganizationUsage:
    """Tokens of all the org's model calls (deleted instances included), per instance and per API key."""
    usage.check_range(since, until)
    org = principal.organization_id
    return OrganizationUsage(
        since=since,
        until=until,
        total=UsageTotals(**_fields(usage.totals(session, org, None, since, until)[0])),
        instances=[
            InstanceUsageItem(instance_id=t.group or "", **_fields(t))
            for t in usage.totals(session, org, "instance_id", since, until)
        ],
        keys=[KeyUsage(key_id=t.group, **_fields(t)) for t in usage.totals(session, org, "key_id", since, until)],
    )
