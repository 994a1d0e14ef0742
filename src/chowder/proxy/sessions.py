"""One turn at a time per session: the gateway fails a second concurrent start on one session, so the
control plane queues them (FIFO: asyncio.Lock wakes waiters in arrival order). Different sessions run in
parallel. Per process; replicas behind a load balancer need sticky routing per instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SessionLocks:
    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, instance_id: str, session_id: str) -> AsyncIterator[None]:
        key = (instance_id, session_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
