"""Forwarding a Responses call to an instance's gateway, streamed or not.

The agent runtime says how a turn is addressed to its gateway (`AgentRuntime.chat_request`); the answer, and
each streamed event as it passes, is completed to the specification (`response_spec`), naming the caller's
model again whatever the gateway called it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from chowder.core.bounded import IDENTITY, MAX_ANSWER_BYTES, BodyTooLarge, LineSplitter, read_body
from chowder.core.errors import GATEWAY_UNAVAILABLE, GatewayTimeout, GatewayUnavailable
from chowder.core.settings import MIB
from chowder.domain.chat import Turn
from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess
from chowder.proxy.response_spec import StreamCompletion, complete_response, request_echo


async def send_turn(
    http: httpx.AsyncClient,
    runtime: AgentRuntime,
    turn: Turn,
    session_id: str,
    body: dict[str, Any],
    timeout_s: float,
    session_lock: AbstractAsyncContextManager[None],
) -> Response:
    """Holds the session's lock from the upstream call until the last byte of the answer has gone out."""
    echo = request_echo(body)
    gateway = GatewayAccess(turn.gateway_url, turn.gateway_token)
    chat = runtime.chat_request(gateway, session_id, turn.model_ref, body)
    request = http.build_request(
        "POST",
        chat.url,
        json=chat.body,
        headers={**chat.headers, **IDENTITY},
        timeout=httpx.Timeout(timeout_s, connect=10.0),
    )
    await session_lock.__aenter__()
    try:
        answer = await http.send(request, stream=True)
    except httpx.TimeoutException as exc:
        await session_lock.__aexit__(None, None, None)
        raise GatewayTimeout({"error": f"The gateway did not answer within {timeout_s:g} s."}) from exc
    except httpx.HTTPError as exc:
        await session_lock.__aexit__(None, None, None)
        raise GatewayUnavailable(GATEWAY_UNAVAILABLE) from exc
    if answer.status_code >= 400 or not body.get("stream"):
        try:
            content = await read_body(answer, MAX_ANSWER_BYTES)
        except BodyTooLarge as exc:
            raise GatewayUnavailable({"error": str(exc)}) from exc
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(GATEWAY_UNAVAILABLE) from exc
        finally:
            await answer.aclose()
            await session_lock.__aexit__(None, None, None)
        return _complete(answer.status_code, content, echo)

    async def events() -> AsyncIterator[bytes]:
        stream = StreamCompletion(echo)
        try:
            async for line in _lines(answer):
                yield _complete_events(line, stream)
        except httpx.HTTPError:
            yield _failure_event(stream, "The gateway connection was lost mid-stream.")
        except _LineTooLong:
            yield _failure_event(
                stream, f"The gateway sent an event line over {MAX_ANSWER_BYTES // MIB} MiB; the stream was cut."
            )
        finally:
            await answer.aclose()
            await session_lock.__aexit__(None, None, None)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _complete(status: int, content: bytes, echo: dict[str, Any]) -> Response:
    try:
        payload = json.loads(content)
    except json.JSONDecodeError:
        payload = None
    if status >= 400:
        message = content.decode(errors="replace")
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            message = str(payload["error"].get("message", message))
        return JSONResponse({"detail": {"error": message, "gateway_status": status}}, status_code=status)
    if isinstance(payload, dict):
        payload = complete_response(payload, echo, int(time.time()))
    return JSONResponse(payload, status_code=status)


async def _lines(answer: httpx.Response) -> AsyncIterator[bytes]:
    """Whole lines (with their newline) as they arrive, so each SSE line can be looked at; _LineTooLong when
    the gateway sends a line over MAX_ANSWER_BYTES, which would otherwise be held however long it grew."""
    lines = LineSplitter(MAX_ANSWER_BYTES)
    async for chunk in answer.aiter_raw():
        if complete := lines.feed(chunk):
            yield complete
        if lines.dropped:
            raise _LineTooLong
    if rest := lines.rest():
        yield rest


class _LineTooLong(Exception):
    pass


def _complete_events(lines: bytes, stream: StreamCompletion) -> bytes:
    """The SSE lines with each JSON event completed; anything else (event names, `[DONE]`) as it came. The events
    an event implies follow it, each a whole SSE event; the blank line that ended the original ends the last."""
    out = []
    for line in lines.split(b"\n"):
        if line.startswith(b"data: {"):
            try:
                event = json.loads(line[6:])
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                first, *implied = stream.complete(event)
                line = b"\n\n".join([b"data: " + _json(first), *map(_sse_event, implied)])
        out.append(line)
    return b"\n".join(out)


def _sse_event(event: dict[str, Any]) -> bytes:
    """An event as its `event:` and `data:` lines, without the blank line that ends it."""
    return f"event: {event['type']}\n".encode() + b"data: " + _json(event)


def _failure_event(stream: StreamCompletion, message: str) -> bytes:
    return _sse_event(stream.failure(message)) + b"\n\ndata: [DONE]\n\n"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
