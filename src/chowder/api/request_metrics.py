"""Request metrics and the access log, as pure ASGI middleware just inside the request ids: each request's
duration until its last byte (a streamed turn included), by method, route template (not the path: ids would
make a series per instance) and status (`core/metrics.py`), and one log line per request."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from chowder.api.asgi import StatusSeen, app_state

UNMATCHED = "unmatched"
access = logging.getLogger("chowder.access")


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = app_state(scope)
        if state is None:
            await self.app(scope, receive, send)
            return
        started, answer = time.perf_counter(), StatusSeen(send)
        try:
            await self.app(scope, receive, answer.send)
        finally:
            status = answer.status
            route, elapsed = getattr(scope.get("route"), "path", UNMATCHED), time.perf_counter() - started
            state.metrics.requests.labels(scope["method"], route, str(status)).observe(elapsed)
            ms = round(elapsed * 1000, 1)
            fields = {"method": scope["method"], "route": route, "path": scope["path"], "status": status}
            access.info(
                "%s %s %d %.1f ms", scope["method"], scope["path"], status, ms, extra=fields | {"duration_ms": ms}
            )
