"""One turn at a time per session, in one process (`SessionTurns` for a single server on SQLite): the gateway
fails a second concurrent start on one session, so the control plane queues them (FIFO: asyncio.Lock wakes
waiters in arrival order). Different sessions run in parallel. While a turn runs, the API key behind it is known
here, so the model calls the turn causes can be attributed to it. Replicas on PostgreSQL share theirs through the
database (`persistence/turns.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SessionLocks:
    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._owners: dict[tuple[str, str], str] = {}

    @asynccontextmanager
    async def hold(self, instance_id: str, session_id: str, key_id: str | None = None) -> AsyncIterator[None]:
        key = (instance_id, session_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                if key_id is not None:
                    self._owners[key] = key_id
                try:
                    yield
                finally:
                    self._owners.pop(key, None)
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def key_of(self, instance_id: str, session_id: str) -> str | None:
        """The API key whose turn is running on this session right now."""
        return self._owners.get((instance_id, session_id))
