"""Chat turns, one at a time per session, and who holds one: the gateway fails a second concurrent start on a
session, and a model call made while a turn runs is that turn's key's cost."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class SessionTurns(Protocol):
    def hold(self, instance_id: str, session_id: str, key_id: str | None = None) -> AbstractAsyncContextManager[None]:
        """Entered when the session is free, in arrival order; `key_id` holds it until the exit."""
        ...

    async def key_of(self, instance_id: str, session_id: str) -> str | None:
        """The API key whose turn holds the session right now, if any."""
        ...
