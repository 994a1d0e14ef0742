"""Optional page parameters of the lists that grow (extension). Without them a list is the whole bare array, as
the public API answers it; with `limit`, the array holds at most that many, and when more remain the answer
carries `X-Next-Cursor` (pass it back as `cursor`) and a `Link` to the next page (rel="next"). The body keeps
its shape either way, so a public-API client notices nothing."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response

from chowder.core.pagination import MAX_LIMIT, Cursor, Page, PageRequest

T = TypeVar("T")

NEXT_CURSOR = "X-Next-Cursor"


async def page_request(
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="Extension. At most this many items, newest first.")
    ] = None,
    cursor: Annotated[
        str | None, Query(description="Extension. Continue after the page whose X-Next-Cursor this is.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit, None if cursor is None else Cursor.decode(cursor))


PageParams = Annotated[PageRequest, Depends(page_request)]


def paged(page: Page[T], request: Request, response: Response) -> list[T]:
    """The page's items, with the next page's cursor and link in the answer's headers."""
    if page.next is not None:
        cursor = page.next.encode()
        response.headers[NEXT_CURSOR] = cursor
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'
    return page.items
