"""Request body limits, as pure ASGI middleware: a body over its route's limit is answered 413 as soon as that
is known (a declared Content-Length before the app runs, a chunked body when the byte that crosses the limit
arrives), so no body is ever held past its limit.

Our own rather than FastAPI's `max_body_size`: that answers a bare "Content Too Large" (plain text on some paths),
where every error of this API is `{"detail": ...}`, here naming the limit; and our limits come from settings,
which route decorators (built at import) cannot see."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chowder.core.endpoints import MODEL_PATH
from chowder.core.settings import MIB, Settings

# Room around the file in the requests that carry one: multipart boundaries and part headers, the path field
# (up to 4 KiB), JSON quoting. The file itself is held to max_upload_mb by the files domain.
_FILE_FRAMING = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bytes a request body may hold: that of the first pattern matching the whole path, else `default`."""

    default: int
    routes: tuple[tuple[re.Pattern[str], int], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        files = settings.max_upload_mb * MIB + _FILE_FRAMING
        model = settings.max_model_request_mb * MIB
        return cls(
            default=settings.max_request_mb * MIB,
            routes=(
                (re.compile(r"/v1/instances/[^/]+/files/(upload|content)"), files),
                (re.compile(r"/v1/instances/[^/]+/(session/[^/]+/)?responses"), model),
                # A session's history, which every turn in it sends to the model: the same bound.
                (re.compile(r"/v1/instances/[^/]+/sessions/[^/]+/import"), model),
                (re.compile(re.escape(MODEL_PATH) + r"/.*"), model),
            ),
        )

    def of(self, path: str) -> int:
        return next((limit for pattern, limit in self.routes if pattern.fullmatch(path)), self.default)


class BodyLimit:
    """Wraps an ASGI app so that no request body exceeds its `BodyLimits` entry."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, headers = self.limits.of(scope["path"]), Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        if _framed(scope, headers, declared):
            await self.app(scope, receive, send)
            return
        received = 0
        over = started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Once over, whatever the app answers (FastAPI turns a failed body read into a 400) gives way to ours.
            nonlocal started
            if not over:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _too_large(limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    """Raised into the app by `receive`, to stop whatever is reading the body."""


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


def _framed(scope: Scope, headers: Headers, declared: int | None) -> bool:
    """Whether the body can be no longer than declared, so that it needs no counting as it arrives (most requests:
    every GET; counting cost a status read 25 of its 500 us). Without a chunked encoding, an HTTP/1 body is
    its Content-Length, or nothing without one (RFC 9112, 6.3); later versions are bounded only by a declared
    length."""
    if "transfer-encoding" in headers:
        return False
    return declared is not None or str(scope.get("http_version", "")).startswith("1")


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"The request body exceeds the {limit // MIB} MiB limit of this endpoint."}, 413)
