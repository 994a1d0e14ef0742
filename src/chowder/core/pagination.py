"""Pages of the lists that grow (extension): newest first, continued by an opaque cursor naming the last item
given (its creation time and id, so an item created meanwhile never shifts a page). A list asked for without a
limit is the whole list, as the public API answers it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from chowder.core.errors import BadRequest

T = TypeVar("T")
MAX_LIMIT = 1000


class Listed(Protocol):
    """An item of a growing list: its creation time and id name its place."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at: datetime
    id: str

    @classmethod
    def after(cls, item: Listed) -> Cursor:
        return cls(item.created_at, item.id)

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            created_at, item_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(created_at), str(item_id))
        except (ValueError, TypeError, binascii.Error):
            raise BadRequest("Invalid cursor: pass the X-Next-Cursor of the previous page as it was given.") from None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`limit` None: everything after `after` (the whole list without it)."""

    limit: int | None = None
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: Cursor | None = None

    @classmethod
    def of(cls, fetched: list[T], page: PageRequest, cursor_of: Callable[[T], Cursor]) -> Page[T]:
        """`fetched`: up to `limit + 1` items, the one past the page only telling that there is a next one."""
        if page.limit is None or len(fetched) <= page.limit:
            return cls(fetched)
        items = fetched[: page.limit]
        return cls(items, cursor_of(items[-1]))
