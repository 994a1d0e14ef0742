"""A page of a list, newest first, in SQL: ordered by creation time then id, after the cursor's item (a keyset,
so reading a page costs the same however deep it lies), one row past the limit to tell whether a next page
exists (`core/pagination.Page.of`). The columns are the mapped class's or, in the hottest reads' Core statements,
its table's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute

from chowder.core.pagination import PageRequest

Row = TypeVar("Row")


def newest_first(
    query: Select[Row],
    created_at: InstrumentedAttribute[datetime] | ColumnElement[datetime],
    item_id: InstrumentedAttribute[str] | ColumnElement[str],
    page: PageRequest,
) -> Select[Row]:
    return _ordered(query, created_at, item_id, *_bounds(page))


class PreparedPages(Generic[Row]):
    """The page statements of a list that pollers read (the instances), built once with the page as parameters:
    building a statement anew, and its cache key, cost ~200 us of a list request. `statement` gives the one a
    page needs and its parameters, to which the caller adds the query's own."""

    def __init__(
        self,
        query: Select[Row],
        created_at: ColumnElement[datetime],
        item_id: ColumnElement[str],
    ) -> None:
        after: tuple[Any, Any] = (bindparam("after_at"), bindparam("after_id"))
        self._statements = {
            (resumes, limited): _ordered(
                query, created_at, item_id, after if resumes else None, bindparam("limit") if limited else None
            )
            for resumes in (False, True)
            for limited in (False, True)
        }

    def statement(self, page: PageRequest) -> tuple[Select[Row], dict[str, Any]]:
        after, limit = _bounds(page)
        parameters: dict[str, Any] = {}
        if after is not None:
            parameters |= {"after_at": after[0], "after_id": after[1]}
        if limit is not None:
            parameters["limit"] = limit
        return self._statements[(after is not None, limit is not None)], parameters


def _bounds(page: PageRequest) -> tuple[tuple[datetime, str] | None, int | None]:
    """The item the page starts after, and how many rows to read: one past the page, to tell whether a next one
    exists."""
    after = None if page.after is None else (page.after.created_at, page.after.id)
    return after, None if page.limit is None else page.limit + 1


def _ordered(
    query: Select[Row],
    created_at: InstrumentedAttribute[datetime] | ColumnElement[datetime],
    item_id: InstrumentedAttribute[str] | ColumnElement[str],
    after: tuple[Any, Any] | None,
    limit: Any,
) -> Select[Row]:
    """`after` and `limit` (`_bounds`) as values, or as parameters (`PreparedPages`)."""
    query = query.order_by(created_at.desc(), item_id)
    if after is not None:
        at, after_id = after
        query = query.where(or_(created_at < at, and_(created_at == at, item_id > after_id)))
    return query if limit is None else query.limit(limit)
