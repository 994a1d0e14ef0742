"""The SQL repository of spend caps (`domain/ports/spend.py`): limits live on the organization's and the key's rows,
the running monthly totals in `monthly_token_spend`, one row per subject and month."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import BindParameter, ColumnElement, Select, Table, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chowder.domain.ports.spend import Cap, Caps
from chowder.persistence.records import Executes
from chowder.persistence.tables import ApiKeyRow, MonthlyTokenSpendRow, OrganizationRow

_SPEND = MonthlyTokenSpendRow.__table__
_ORGS = OrganizationRow.__table__
_KEYS = ApiKeyRow.__table__


def _used(subject: ColumnElement[str], month: Any) -> ColumnElement[int]:
    """The subject's total of the month, 0 before its first charge."""
    tokens = select(_SPEND.c.tokens).where(_SPEND.c.subject_id == subject, _SPEND.c.month == month)
    return func.coalesce(tokens.scalar_subquery(), 0)


_MONTH: BindParameter[str] = bindparam("month")
# The model gateway's read before every model call: one statement, built once (as authentication's).
_CAPS = (
    select(
        _ORGS.c.monthly_token_limit,
        _used(_ORGS.c.id, _MONTH),
        _KEYS.c.id,
        _KEYS.c.monthly_token_limit,
        _used(_KEYS.c.id, _MONTH),
    )
    .select_from(_ORGS)
    .outerjoin(
        _KEYS,
        and_(_KEYS.c.id == bindparam("key_id"), _KEYS.c.organization_id == _ORGS.c.id, _KEYS.c.kind == "scoped"),
    )
    .where(_ORGS.c.id == bindparam("org_id"))
)


def _adding(insert: postgresql.Insert | sqlite.Insert) -> postgresql.Insert | sqlite.Insert:
    """An upsert adding the row's tokens to the month's total (both dialects spell it alike)."""
    return insert.on_conflict_do_update(
        index_elements=[_SPEND.c.subject_id, _SPEND.c.month],
        set_={"tokens": _SPEND.c.tokens + insert.excluded.tokens},
    )


# Built once: a statement built per charge cost more than the rest of recording a model call's usage.
_ADD = {
    name: _adding(dialect.insert(cast(Table, _SPEND)))
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class SqlSpendReads:
    """The model gateway's check, on a session or on a bare connection (`SqlTransactions.read`: before every model
    call, it costs no transaction of its own)."""

    def __init__(self, executes: Executes) -> None:
        self._executes = executes

    def caps(self, org_id: str, key_id: str | None, month: str) -> Caps:
        row: Any = self._executes.execute(_CAPS, {"org_id": org_id, "key_id": key_id, "month": month}).one_or_none()
        if row is None:
            return Caps(Cap(None, 0), None)
        key = Cap(row[3], int(row[4])) if row[2] is not None else None
        return Caps(Cap(row[0], int(row[1])), key)


class SqlSpendRepository(SqlSpendReads):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session

    def charge(self, org_id: str, key_id: str | None, month: str, tokens: int) -> None:
        if tokens <= 0:
            return
        subjects = [org_id, *([key_id] if key_id else [])]
        rows = [{"subject_id": s, "month": month, "organization_id": org_id, "tokens": tokens} for s in subjects]
        connection = self._session.connection()  # a Core statement: no ORM bulk-insert machinery around it
        connection.execute(_ADD[connection.dialect.name], rows)

    def key_caps(self, org_id: str, key_ids: list[str], month: str) -> dict[str, Cap]:
        return self._key_caps(_scoped_of(org_id, month).where(_KEYS.c.id.in_(key_ids))) if key_ids else {}

    def capped_keys(self, org_id: str, month: str) -> dict[str, Cap]:
        return self._key_caps(_scoped_of(org_id, month).where(_KEYS.c.monthly_token_limit.is_not(None)))

    def set_org_limit(self, org_id: str, limit: int | None) -> None:
        self._session.execute(
            update(OrganizationRow).where(OrganizationRow.id == org_id).values(monthly_token_limit=limit)
        )

    def set_key_limit(self, org_id: str, key_id: str, limit: int | None) -> None:
        self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.organization_id == org_id, ApiKeyRow.kind == "scoped")
            .values(monthly_token_limit=limit)
        )

    def _key_caps(self, query: Select[Any]) -> dict[str, Cap]:
        return {row[0]: Cap(row[1], int(row[2])) for row in self._session.execute(query)}


def _scoped_of(org_id: str, month: str) -> Select[Any]:
    return select(_KEYS.c.id, _KEYS.c.monthly_token_limit, _used(_KEYS.c.id, month)).where(
        _KEYS.c.organization_id == org_id, _KEYS.c.kind == "scoped"
    )
