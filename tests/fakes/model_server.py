"""A fake model provider for tests (runtime doc, section 11): the built-in echo model
(`chowder.modelgw.echo`, which documents the reply and usage) behind a real loopback port, plus knobs.

One port speaks OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, streaming or not, so a
real OpenClaw gateway (and the control plane's model proxy in front of it) can be driven offline. Routes match on
the path's suffix, because the control plane forwards e.g. `/anthropic/v1/messages` or `/openai/v1/responses`
with their prefix, and Gemini's OpenAI-compatible path is `/v1beta/openai/chat/completions`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chowder.modelgw.echo import (
    INTERNAL_CONTEXT,
    RUNTIME_SUFFIX,
    SYSTEM_ROLES,
    TEXT_PART_TYPES,
    TIMESTAMP_PREFIX,
    Answer,
    Conversation,
    Event,
    WireProtocol,
    answer,
    anthropic_events,
    chat_completion,
    chat_events,
    count_words,
    encode_sse,
    json_answer,
    parse_body,
    parse_conversation,
    protocol_for,
    reply_text,
    response_object,
    responses_events,
    split_pieces,
    sse_answer,
    text_of,
    user_words,
    wants_stream,
)
from tests.fakes.loopback import LoopbackServer

__all__ = [  # the echo model's names stay importable from here, as before they moved
    "INTERNAL_CONTEXT",
    "RUNTIME_SUFFIX",
    "SYSTEM_ROLES",
    "TEXT_PART_TYPES",
    "TIMESTAMP_PREFIX",
    "Answer",
    "Conversation",
    "DEFAULT_MODELS",
    "Event",
    "FakeModelServer",
    "RequestLog",
    "WireProtocol",
    "anthropic_events",
    "answer",
    "chat_completion",
    "chat_events",
    "count_words",
    "encode_sse",
    "error_body",
    "parse_conversation",
    "presented_key",
    "protocol_for",
    "reply_text",
    "response_object",
    "responses_events",
    "split_pieces",
    "text_of",
    "user_words",
]

DEFAULT_MODELS = ("fake-model", "fake-model-b")


# --- Simulated provider failures -----------------------------------------------------------------------------------


OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached."),
}
ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Forbidden."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request too large."),
    429: ("rate_limit_error", "Rate limited."),
    529: ("overloaded_error", "Overloaded."),
}


def error_body(protocol: WireProtocol, status: int) -> dict[str, Any]:
    """The error shape each provider's SDK parses; unknown statuses fall back to api_error/server_error."""
    if protocol == "anthropic":
        kind, message = ANTHROPIC_ERRORS.get(status, ("api_error", f"fake failure (HTTP {status})"))
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind, code, message = OPENAI_ERRORS.get(status, ("server_error", None, f"fake failure (HTTP {status})"))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- Request log ---------------------------------------------------------------------------------------------------


class RequestLog:
    """Thread-safe, list-like record of model calls; the handlers append from the server thread."""

    def __init__(self, jsonl_path: Path | None = None) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.jsonl_path = jsonl_path

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(record)
            if self.jsonl_path is not None:
                with self.jsonl_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, default=str) + "\n")

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._items[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.snapshot())


# --- Server --------------------------------------------------------------------------------------------------------


def presented_key(protocol: WireProtocol, headers: dict[str, str]) -> str | None:
    """Anthropic authenticates with `x-api-key`; OpenAI and Gemini's compatible API with a bearer token."""
    if protocol == "anthropic":
        return headers.get("x-api-key")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


class FakeModelServer(LoopbackServer):
    """Serve the fake on 127.0.0.1 from a background thread; use as `with FakeModelServer() as fake: fake.url`.

    Knobs are plain attributes, settable while running and read once as each request arrives:
    `delay_s` (sleep before answering), `fail_status` (answer that status with the protocol's error body),
    `required_key` (401 unless the protocol's credential matches), `stream_interval_s` (sleep between events).
    """

    thread_name = "fake-model"

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        fail_status: int | None = None,
        required_key: str | None = None,
        stream_interval_s: float = 0.0,
        pieces: int = 3,
        models: tuple[str, ...] = DEFAULT_MODELS,
        log_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.fail_status = fail_status
        self.required_key = required_key
        self.stream_interval_s = stream_interval_s
        self.pieces = pieces
        self.models = models
        self.requests = RequestLog(log_path)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST"])])

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        protocol = protocol_for(path)
        if request.method == "POST" and protocol is not None:
            return await self._model_call(request, protocol)
        if request.method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            return JSONResponse({"object": "list", "data": data})
        if request.method == "GET" and path.endswith("/health"):
            return JSONResponse({"ok": True})
        return JSONResponse({"error": {"message": f"no route {request.method} {path}", "type": "not_found"}}, 404)

    async def _model_call(self, request: Request, protocol: WireProtocol) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await _json_body(request)
        delay, interval = self.delay_s, self.stream_interval_s
        status = self._refusal(protocol, headers, body)
        result = answer(protocol, body, self.pieces) if status is None and body is not None else None
        self.requests.append(_record(request.url.path, headers, body, protocol, status, result))
        if not await self.pause(delay):
            return JSONResponse(error_body(protocol, 503), 503)
        if body is None or result is None:
            return JSONResponse(error_body(protocol, status or 400), status or 400)
        return self._render(protocol, body, result, interval)

    async def _paced(self, events: Iterator[bytes], interval: float) -> AsyncIterator[bytes]:
        """Each event is its own ASGI body message, so uvicorn writes (flushes) it before the next one; a stop
        ends the stream early (the client sees it cut short, as with a real provider going away)."""
        for event in events:
            yield event
            if not await self.pause(interval):
                return

    def _refusal(self, protocol: WireProtocol, headers: dict[str, str], body: dict[str, Any] | None) -> int | None:
        """The error status to answer with, if any: `fail_status` wins over a key mismatch, which wins over 400."""
        if self.fail_status is not None:
            return self.fail_status
        if self.required_key is not None and presented_key(protocol, headers) != self.required_key:
            return 401
        return 400 if body is None else None

    def _render(self, protocol: WireProtocol, body: dict[str, Any], result: Answer, interval: float) -> Response:
        if not wants_stream(body):
            return JSONResponse(json_answer(protocol, result))
        events = sse_answer(protocol, body, result)
        return StreamingResponse(
            self._paced(events, interval), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )


def _record(
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    protocol: WireProtocol,
    status: int | None,
    result: Answer | None,
) -> dict[str, Any]:
    """One entry of `FakeModelServer.requests`, logged on arrival: `status` is the answer decided then (a `stop()`
    during the delay answers 503 instead); `reply` and `usage` are None for refused requests."""
    return {
        "path": path,
        "headers": headers,
        "body": body,
        "protocol": protocol,
        "model": body.get("model") if body else None,
        "stream": bool(body and wants_stream(body)),
        "status": status or 200,
        "reply": result.text if result else None,
        "usage": {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens} if result else None,
        "received_at": time.time(),
    }


async def _json_body(request: Request) -> dict[str, Any] | None:
    return parse_body(await request.body())
