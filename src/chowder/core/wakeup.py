"""The nudge a background loop sleeps on: set from any thread (API handlers do their database work in threads),
waited for in the loop's own event loop, with the poll interval as the longest sleep."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Called by the loop once it runs; nudges before then are dropped (the loop's first pass sees them)."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout_s: float) -> None:
        """Until nudged or `timeout_s` passed. `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` drops a
        cancellation that arrives together with the nudge, and the loop then never ends."""
        assert self._event is not None, "bind() first"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._event.wait()
        self._event.clear()
