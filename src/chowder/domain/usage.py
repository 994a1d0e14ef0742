"""Token usage: recorded per model call, read back as totals per session, model, instance and key."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest
from chowder.core.ids import new_id
from chowder.persistence.tables import UsageEventRow


@dataclass(frozen=True, slots=True)
class UsageEvent:
    organization_id: str
    instance_id: str
    session_id: str | None
    key_id: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Totals:
    group: str | None
    requests: int
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def record(session: Session, event: UsageEvent) -> None:
    session.add(UsageEventRow(id=new_id(), created_at=utcnow(), **asdict(event)))


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise BadRequest("'since' must be earlier than 'until'.")


def totals(
    session: Session,
    org_id: str,
    group_by: str | None,
    since: datetime | None,
    until: datetime | None,
    instance_id: str | None = None,
) -> list[Totals]:
    """Sums over the org's events (optionally one instance's), grouped by one column or not at all."""
    column = getattr(UsageEventRow, group_by) if group_by else None
    query = select(
        *([column] if column is not None else []),
        func.count(),
        func.coalesce(func.sum(UsageEventRow.input_tokens), 0),
        func.coalesce(func.sum(UsageEventRow.output_tokens), 0),
    ).where(UsageEventRow.organization_id == org_id)
    if instance_id is not None:
        query = query.where(UsageEventRow.instance_id == instance_id)
    if since is not None:
        query = query.where(UsageEventRow.created_at >= since)
    if until is not None:
        query = query.where(UsageEventRow.created_at < until)
    if column is not None:
        query = query.group_by(column).order_by(column)
        return [Totals(row[0], int(row[1]), int(row[2]), int(row[3])) for row in session.execute(query)]
    row = session.execute(query).one()
    return [Totals(None, int(row[0]), int(row[1]), int(row[2]))]
