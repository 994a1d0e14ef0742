"""A chat turn that a spend cap stopped, told as such. When the model gateway refuses a call mid-turn (the cap was
crossed by the turn's earlier calls), OpenClaw fails the whole turn with a bare "internal error": a 500 answer, or a
`response.failed` event in a stream. If a cap of the turn's key or organization is reached by then, the failure
is the cap's: a non-streamed turn answers the API's 402 instead, a streamed one's failure event names the cap."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, cast

from fastapi.responses import Response, StreamingResponse

from chowder.domain.spend import CapReached

CapCheck = Callable[[], Awaitable[CapReached | None]]
_FAILED = b'"type":"response.failed"'


async def cap_named(answer: Response, cap_reached: CapCheck) -> Response:
    """`answer` as it came unless the turn failed with a cap reached. Raises CapReached for a non-streamed one."""
    if isinstance(answer, StreamingResponse):
        answer.body_iterator = _named(cast("AsyncGenerator[bytes, None]", answer.body_iterator), cap_reached)
    elif answer.status_code >= 400 and (reached := await cap_reached()) is not None:
        raise reached
    return answer


async def _named(chunks: AsyncGenerator[bytes, None], cap_reached: CapCheck) -> AsyncIterator[bytes]:
    """Closes `chunks` however it ends: the proxied stream releases the session's turn only then."""
    async with aclosing(chunks):
        async for chunk in chunks:
            if _FAILED in chunk and (reached := await cap_reached()) is not None:
                chunk = b"\n".join(_with_message(line, str(reached.detail)) for line in chunk.split(b"\n"))
            yield chunk


def _with_message(line: bytes, message: str) -> bytes:
    """A `response.failed` event's data line with its error's message replaced (its code kept)."""
    if not line.startswith(b"data: {") or _FAILED not in line:
        return line
    event: dict[str, Any] = json.loads(line[6:])
    response = event.get("response")
    if isinstance(response, dict):
        error = response.get("error")
        response["error"] = {**(error if isinstance(error, dict) else {"code": "api_error"}), "message": message}
    return b"data: " + json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
