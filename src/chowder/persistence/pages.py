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
    after = None if page.after is None else (page.after.created_at, page.after.id)
    return _ordered(query, created_at, item_id, after, None if page.limit is None else page.limit + 1)


class PreparedPages(Generic[Row]):
    """The page statements of a list that pollers read (the instances), built once with the page as parameters:
    building a statement anew, and its cache key, cost ~180 us of a page's ~1 ms. `statement` gives the one a
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
        parameters: dict[str, Any] = {}
        if page.after is not None:
            parameters |= {"after_at": page.after.created_at, "after_id": page.after.id}
        if page.limit is not None:
            parameters["limit"] = page.limit + 1
        return self._statements[(page.after is not None, page.limit is not None)], parameters


def _ordered(
    query: Select[Row],
    created_at: InstrumentedAttribute[datetime] | ColumnElement[datetime],
    item_id: InstrumentedAttribute[str] | ColumnElement[str],
    after: tuple[Any, Any] | None,
    limit: Any,
) -> Select[Row]:
    """`after` and `limit` as values, or as parameters (`PreparedPages`); `limit` counts the row past the page."""
    query = query.order_by(created_at.desc(), item_id)
    if after is not None:
        at, after_id = after
        query = query.where(or_(created_at < at, and_(created_at == at, item_id > after_id)))
    return query if limit is None else query.limit(limit)
