"""Token usage read back as totals: per instance (by session and model) and per organization (by instance and
key). Recording happens where the tokens are counted, in `domain/model_calls.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chowder.core.errors import BadRequest
from chowder.domain.instance_access import visible
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import UsageTotals


@dataclass(frozen=True, slots=True)
class InstanceUsageReport:
    total: UsageTotals
    sessions: list[UsageTotals]
    models: list[UsageTotals]


@dataclass(frozen=True, slots=True)
class OrganizationUsageReport:
    total: UsageTotals
    instances: list[UsageTotals]
    keys: list[UsageTotals]


class UsageReports:
    """Each report is one transaction, so its total and its breakdowns count the same events."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def of_instance(
        self, org_id: str, instance_id: str, since: datetime | None, until: datetime | None
    ) -> InstanceUsageReport:
        """Over [since, until). Raises BadRequest for an empty range, NotFound unless the instance is visible."""
        _check_range(since, until)

        def report(uow: UnitOfWork) -> InstanceUsageReport:
            visible(uow.instances.get(org_id, instance_id))
            [total] = uow.usage.totals(org_id, None, since, until, instance_id)
            return InstanceUsageReport(
                total=total,
                sessions=uow.usage.totals(org_id, "session_id", since, until, instance_id),
                models=uow.usage.totals(org_id, "model", since, until, instance_id),
            )

        return await self._tx(report)

    async def of_organization(
        self, org_id: str, since: datetime | None, until: datetime | None
    ) -> OrganizationUsageReport:
        """Over [since, until), deleted instances included. Raises BadRequest for an empty range."""
        _check_range(since, until)

        def report(uow: UnitOfWork) -> OrganizationUsageReport:
            [total] = uow.usage.totals(org_id, None, since, until)
            return OrganizationUsageReport(
                total=total,
                instances=uow.usage.totals(org_id, "instance_id", since, until),
                keys=uow.usage.totals(org_id, "key_id", since, until),
            )

        return await self._tx(report)


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise BadRequest("'since' must be earlier than 'until'.")
