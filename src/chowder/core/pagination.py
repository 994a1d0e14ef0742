"""Pages of the lists that grow (extension), continued by an opaque cursor naming where the last page ended, so
an item created meanwhile never shifts a page. A list asked for without a limit is the whole list, as the public
API answers it.

Two kinds: a list of items, newest first (`Page`: the cursor names the last item by creation time and id), and
the breakdowns of a usage report, each sorted by group (`BreakdownPage`: the cursor names each one's last group).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from chowder.core.errors import BadRequest

T = TypeVar("T")
C = TypeVar("C")
MAX_LIMIT = 1000

GroupKey = tuple[int, str]
"""Where a group sorts in a breakdown: (0, "") the entry of no group first, then (1, name) by name."""
_PAST_THE_END: GroupKey = (2, "")


def group_key(group: str | None) -> GroupKey:
    return (0, "") if group is None else (1, group)


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
        return _encoded([self.created_at.isoformat(), self.id])

    @classmethod
    def decode(cls, text: str) -> Cursor:
        def read(value: Any) -> Cursor:
            created_at, item_id = value
            return cls(datetime.fromisoformat(created_at), str(item_id))

        return _decoded(text, read)


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


@dataclass(frozen=True, slots=True)
class BreakdownCursor:
    """Per breakdown of a report, the key of the last group given, or past the end once all were."""

    after: tuple[GroupKey, ...]

    def encode(self) -> str:
        return _encoded([list(key) for key in self.after])

    @classmethod
    def decode(cls, text: str) -> BreakdownCursor:
        def read(value: Any) -> BreakdownCursor:
            after = tuple((int(kind), str(group)) for kind, group in value)
            if not all(key[0] in (0, 1) or key == _PAST_THE_END for key in after):
                raise ValueError(after)
            return cls(after)

        return _decoded(text, read)


@dataclass(frozen=True, slots=True)
class BreakdownPage:
    """At most `limit` groups of each breakdown (None: all), after those `after` names (from the first without)."""

    limit: int | None = None
    after: BreakdownCursor | None = None

    def of(
        self, breakdowns: Sequence[list[T]], group: Callable[[T], str | None]
    ) -> tuple[list[list[T]], BreakdownCursor | None]:
        """Each breakdown (sorted by `group_key`) cut to this page, and the next page's cursor while any has more:
        one limit for all, so a report's page stays one answer; a breakdown already given in full comes empty."""
        after: Sequence[GroupKey | None] = [None] * len(breakdowns) if self.after is None else self.after.after
        if len(after) != len(breakdowns):
            raise _invalid_cursor()
        rests = [
            [entry for entry in entries if key is None or group_key(group(entry)) > key]
            for entries, key in zip(breakdowns, after, strict=True)
        ]
        if self.limit is None or all(len(rest) <= self.limit for rest in rests):
            return rests, None
        pages = [rest[: self.limit] for rest in rests]
        ends = [
            group_key(group(page[-1])) if len(rest) > len(page) else _PAST_THE_END
            for page, rest in zip(pages, rests, strict=True)
        ]
        return pages, BreakdownCursor(tuple(ends))


def _encoded(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decoded(text: str, read: Callable[[Any], C]) -> C:
    """`read` of the cursor's JSON; a cursor that this server did not give is a BadRequest."""
    try:
        return read(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))
    except (ValueError, TypeError, binascii.Error):
        raise _invalid_cursor() from None


def _invalid_cursor() -> BadRequest:
    return BadRequest("Invalid cursor: pass the X-Next-Cursor of the previous page as it was given.")
