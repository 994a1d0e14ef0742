"""Optional page parameters of the lists that grow (extension). Without them a list is the whole bare array, as
the public API answers it; with `limit`, the array holds at most that many, and when more remain the answer
carries `X-Next-Cursor` (pass it back as `cursor`) and a `Link` to the next page (rel="next"). The body keeps
its shape either way, so a public-API client notices nothing. A usage report pages its breakdowns the same way,
`limit` counting in each of them."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Query, Request, Response

from chowder.core.pagination import MAX_LIMIT, BreakdownCursor, BreakdownPage, Cursor, Page, PageRequest

T = TypeVar("T")

NEXT_CURSOR = "X-Next-Cursor"

CursorText = Annotated[str | None, Query(description="Extension. Continue after the page whose X-Next-Cursor this is.")]


class NextCursor(Protocol):
    def encode(self) -> str: ...


def _limit(what: str) -> Any:
    return Query(ge=1, le=MAX_LIMIT, description=f"Extension. At most this many {what}.")


async def page_request(
    limit: Annotated[int | None, _limit("items, newest first")] = None,
    cursor: CursorText = None,
) -> PageRequest:
    return PageRequest(limit, None if cursor is None else Cursor.decode(cursor))


async def breakdown_page(
    limit: Annotated[int | None, _limit("groups in each breakdown")] = None,
    cursor: CursorText = None,
) -> BreakdownPage:
    return BreakdownPage(limit, None if cursor is None else BreakdownCursor.decode(cursor))


PageParams = Annotated[PageRequest, Depends(page_request)]
BreakdownParams = Annotated[BreakdownPage, Depends(breakdown_page)]


def paged(page: Page[T], request: Request, response: Response) -> list[T]:
    """The page's items, with the next page's cursor and link in the answer's headers."""
    link_next(page.next, request, response)
    return page.items


def link_next(cursor: NextCursor | None, request: Request, response: Response) -> None:
    """The next page's cursor and link in the answer's headers, if there is a next page."""
    if cursor is not None:
        text = cursor.encode()
        response.headers[NEXT_CURSOR] = text
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=text)}>; rel="next"'
