"""Request ids, as pure ASGI middleware, outermost: each request gets the `X-Request-Id` it came with (when it is a
plain token of up to 64 characters) or a new one, returned on its answer, and written with everything the request
causes: its audit entries and log lines (`core/actors.py`)."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chowder.core.actors import Actor, act_as

HEADER = "X-Request-Id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        request_id = given if _VALID.fullmatch(given) else uuid.uuid4().hex
        act_as(Actor(request_id=request_id))

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, with_id)
