"""Token usage per instance (by session and model) and per organization (by instance and key); the breakdowns
page on request (`limit`, `cursor`: extension, `api/pagination.py`), the total always being the whole range's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from chowder.api.deps import OrgPrincipal, State, require
from chowder.api.pagination import BreakdownParams, link_next
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.spend import Cap
from chowder.domain.ports.tenancy import UsageTotals as Totals
from chowder.domain.spend import MonthReport
from chowder.domain.usage import InstanceUsageReport, OrganizationUsageReport
from chowder.schemas.usage import (
    CapUsage,
    InstanceUsage,
    InstanceUsageItem,
    KeyCapUsage,
    KeyUsage,
    ModelUsage,
    OrganizationUsage,
    SessionUsage,
    SpendCaps,
    UsageTotals,
)

router = APIRouter(tags=["usage"])

CanRead = Annotated[Principal, Depends(require(Permission.READ))]


@router.get("/v1/instances/{instance_id}/usage")
async def instance_usage(
    instance_id: str,
    principal: CanRead,
    state: State,
    page: BreakdownParams,
    request: Request,
    response: Response,
    since: datetime | None = None,
    until: datetime | None = None,
) -> InstanceUsage:
    """Tokens of the instance's model calls, per session and per model; `since` inclusive, `until` not."""
    report = await state.usage.of_instance(principal.organization_id, instance_id, since, until, page)
    link_next(report.next, request, response)
    return _instance_usage(instance_id, since, until, report)


@router.get("/v1/organization/usage")
async def organization_usage(
    principal: OrgPrincipal,
    state: State,
    page: BreakdownParams,
    request: Request,
    response: Response,
    since: datetime | None = None,
    until: datetime | None = None,
) -> OrganizationUsage:
    """Tokens of all the org's model calls (deleted instances included), per instance and per API key."""
    report = await state.usage.of_organization(principal.organization_id, since, until, page)
    link_next(report.next, request, response)
    return _organization_usage(since, until, report)


def _instance_usage(
    instance_id: str, since: datetime | None, until: datetime | None, report: InstanceUsageReport
) -> InstanceUsage:
    return InstanceUsage(
        instance_id=instance_id,
        since=since,
        until=until,
        total=UsageTotals(**_fields(report.total)),
        sessions=[SessionUsage(session_id=t.group, **_fields(t)) for t in report.sessions],
        models=[ModelUsage(model=t.group or "unknown", **_fields(t)) for t in report.models],
    )


def _organization_usage(
    since: datetime | None, until: datetime | None, report: OrganizationUsageReport
) -> OrganizationUsage:
    return OrganizationUsage(
        since=since,
        until=until,
        total=UsageTotals(**_fields(report.total)),
        instances=[InstanceUsageItem(instance_id=t.group or "", **_fields(t)) for t in report.instances],
        keys=[KeyUsage(key_id=t.group, **_fields(t)) for t in report.keys],
        spend=_spend(report.spend),
    )


def _spend(report: MonthReport) -> SpendCaps:
    return SpendCaps(
        month=report.month,
        organization=_cap(report.organization),
        keys=[KeyCapUsage(key_id=key_id, **_cap(cap).model_dump()) for key_id, cap in report.keys.items()],
    )


def _cap(cap: Cap) -> CapUsage:
    return CapUsage(monthly_token_limit=cap.limit, monthly_tokens_used=cap.used)


def _fields(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
    }
