"""A page of a list, newest first, in SQL: ordered by creation time then id, after the cursor's item (a keyset,
so reading a page costs the same however deep it lies), one row past the limit to tell whether a next page
exists (`core/pagination.Page.of`). The columns are the mapped class's or, in the hottest reads' Core statements,
its table's."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from chowder.core.pagination import PageRequest

Row = TypeVar("Row")


def newest_first(
    query: Select[Row],
    created_at: InstrumentedAttribute[datetime] | ColumnElement[datetime],
    item_id: InstrumentedAttribute[str] | ColumnElement[str],
    page: PageRequest,
) -> Select[Row]:
    query = query.order_by(created_at.desc(), item_id)
    if page.after is not None:
        at, after_id = page.after.created_at, page.after.id
        query = query.where(or_(created_at < at, and_(created_at == at, item_id > after_id)))
    return query if page.limit is None else query.limit(page.limit + 1)
