"""Idempotency-Key (extension), as pure ASGI middleware: a POST carrying the header runs once per caller and key
for 24 h (`domain/idempotency.py`). The same key again with the same request (method, path, query and body bytes)
gets the first answer replayed, status, headers and body, marked `Idempotent-Replayed: true`; with a different
request, 422; while the first is still running, 409.

The caller is the API key (its hash: the key itself is never stored), or the client's address where a request
carries none (signup). Answers that say nothing about the request's work are not kept, so a retry runs it
again: 5xx, 401, 429, and streamed (event-stream) answers. The body is read whole before the route runs (its
fingerprint is needed first); the body limit, outside this middleware, bounds it."""

from __future__ import annotations

import contextlib
import hashlib
import re

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chowder.api.asgi import app_state
from chowder.api.callers import caller_of
from chowder.domain.idempotency import IdempotencyKeys
from chowder.domain.ports.idempotency import StoredAnswer

HEADER = "idempotency-key"
REPLAYED = ("idempotent-replayed", "true")
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_NOT_KEPT = frozenset({401, 429})


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = app_state(scope)
        key = Headers(scope=scope).get(HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        if state is None or key is None:
            await self.app(scope, receive, send)
            return
        if not _VALID_KEY.fullmatch(key):
            await _error("Idempotency-Key must be 1 to 255 visible ASCII characters.", 400)(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is None:  # the client went away
            return
        await _once(state.idempotency, self.app, _caller(scope), key, body, scope, receive, send)


async def _once(
    keys: IdempotencyKeys, app: ASGIApp, caller: str, key: str, body: bytes, scope: Scope, receive: Receive, send: Send
) -> None:
    fingerprint = _fingerprint(scope, body)
    found = await keys.claim(caller, key, fingerprint)
    if found is not None:
        if found.fingerprint != fingerprint:
            detail = "This Idempotency-Key was used with a different request; use a new key for a new request."
            await _error(detail, 422)(scope, receive, send)
        elif found.answer is None:
            detail = "A request with this Idempotency-Key is still in progress; retry once it has finished."
            await _error(detail, 409)(scope, receive, send)
        else:
            await _replay(found.answer, send)
        return
    recorder = _Recorder(send)
    try:
        async with keys.held(caller, key):
            await app(scope, _replaying(body, receive), recorder.send)
    except BaseException:
        with contextlib.suppress(Exception):
            await keys.release(caller, key)
            await recorder.finish()
        raise
    try:
        answer = recorder.answer()
        if answer is None:
            await keys.release(caller, key)
        else:
            await keys.answer(caller, key, answer)
    finally:
        await recorder.finish()


class _Recorder:
    """Passes the answer on and keeps a copy of it, unless it is not one to keep. The last part of a kept answer
    waits (`finish`) until the answer is stored: a client that has it whole and sends the key again at once then
    gets it replayed, never a 409 for a request that is over."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._kept = True
        self._last: Message | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            self._headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in message["headers"]]
            streamed = Headers(raw=message["headers"]).get("content-type", "").startswith("text/event-stream")
            self._kept = not streamed and self._status < 500 and self._status not in _NOT_KEPT
        elif message["type"] == "http.response.body" and self._kept:
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self._last = message
                return
        await self._send(message)

    async def finish(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await self._send(last)

    def answer(self) -> StoredAnswer | None:
        if self._status is None or not self._kept:
            return None
        return StoredAnswer(self._status, self._headers, b"".join(self._chunks))


async def _replay(answer: StoredAnswer, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in [*answer.headers, REPLAYED]]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _whole_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body once, as read; then whatever the client sends (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _caller(scope: Scope) -> str:
    kind, who = caller_of(scope)
    return f"{kind}:{who}"


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256(f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode()}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _error(detail: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": detail}, status)
