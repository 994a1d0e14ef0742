"""Token usage read back as totals: per instance (by session and model) and per organization (by instance and
key), the breakdowns paged on request. Recording happens where the tokens are counted, in
`domain/model_calls.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chowder.core.errors import BadRequest
from chowder.core.pagination import BreakdownCursor, BreakdownPage, group_key
from chowder.domain.instance_access import visible
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import UsageCell, UsageTotals
from chowder.domain.spend import MonthReport, month_report


@dataclass(frozen=True, slots=True)
class InstanceUsageReport:
    total: UsageTotals
    sessions: list[UsageTotals]
    models: list[UsageTotals]
    next: BreakdownCursor | None


@dataclass(frozen=True, slots=True)
class OrganizationUsageReport:
    total: UsageTotals
    instances: list[UsageTotals]
    keys: list[UsageTotals]
    next: BreakdownCursor | None
    spend: MonthReport


class UsageReports:
    """Each report is rolled up from one statement's sums, so its total and its breakdowns count the same events
    even while model calls are being recorded. A page of a report holds the whole range's total and `page`'s cut
    of each breakdown."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def of_instance(
        self, org_id: str, instance_id: str, since: datetime | None, until: datetime | None, page: BreakdownPage
    ) -> InstanceUsageReport:
        """Over [since, until). Raises BadRequest for an empty range, NotFound unless the instance is visible."""
        _check_range(since, until)

        def report(uow: UnitOfWork) -> InstanceUsageReport:
            visible(uow.instances.get(org_id, instance_id))
            cells = uow.usage.cells(org_id, ("session_id", "model"), since, until, instance_id)
            total, (sessions, models), next_page = _summed_up(cells, page)
            return InstanceUsageReport(total, sessions, models, next_page)

        return await self._tx(report)

    async def of_organization(
        self, org_id: str, since: datetime | None, until: datetime | None, page: BreakdownPage
    ) -> OrganizationUsageReport:
        """Over [since, until), deleted instances included, with this month's use against the spend caps.
        Raises BadRequest for an empty range."""
        _check_range(since, until)

        def report(uow: UnitOfWork) -> OrganizationUsageReport:
            cells = uow.usage.cells(org_id, ("instance_id", "key_id"), since, until)
            total, (instances, keys), next_page = _summed_up(cells, page)
            return OrganizationUsageReport(total, instances, keys, next_page, month_report(uow, org_id))

        return await self._tx(report)


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise BadRequest("'since' must be earlier than 'until'.")


def _summed_up(
    cells: list[UsageCell], page: BreakdownPage
) -> tuple[UsageTotals, list[list[UsageTotals]], BreakdownCursor | None]:
    """The total, the page of both breakdowns, and the next page's cursor."""
    [total] = _rolled_up(cells, None)
    breakdowns, next_page = page.of([_rolled_up(cells, 0), _rolled_up(cells, 1)], lambda totals: totals.group)
    return total, breakdowns, next_page


def _rolled_up(cells: list[UsageCell], by: int | None) -> list[UsageTotals]:
    """The cells summed by their `by`-th group (None: one total), sorted by group, no group first."""
    sums: dict[str | None, list[int]] = {} if by is not None else {None: [0, 0, 0]}
    for cell in cells:
        summed = sums.setdefault(None if by is None else cell.groups[by], [0, 0, 0])
        summed[0] += cell.requests
        summed[1] += cell.input_tokens
        summed[2] += cell.output_tokens
    ordered = sorted(sums.items(), key=lambda item: group_key(item[0]))
    return [UsageTotals(group, *figures) for group, figures in ordered]
