"""What the pure ASGI middlewares share: the app's state from a request's scope, and the status of the answer
a request got."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Message, Scope, Send

if TYPE_CHECKING:
    from chowder.api.state import AppState


def app_state(scope: Scope) -> AppState | None:
    """The running app's state for an HTTP request; None for other scopes, or before the lifespan built it."""
    if scope["type"] != "http":
        return None
    state: AppState | None = getattr(scope["app"].state, "chowder", None)
    return state


class StatusSeen:
    """Passes an answer on, noting its status: 500 until one is sent (the app raised before answering)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
