"""Each request's use of instances, as pure ASGI middleware: the instances a request made ready stay recorded as in
use until its last byte has gone out (a streamed answer runs past the route's return), so idleness never freezes a
gateway in the middle of a call (`domain/power.py`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from chowder.api.asgi import app_state


class ActivityScope:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = app_state(scope)
        if state is None:
            await self.app(scope, receive, send)
            return
        async with state.power.scope():
            await self.app(scope, receive, send)
