"""The nudge background loops sleep on must never outlive their cancellation."""

from __future__ import annotations

import asyncio

from chowder.core.wakeup import Wakeup


def test_a_cancellation_that_arrives_with_a_nudge_still_ends_the_loop() -> None:
    async def scenario() -> bool:
        wakeup = Wakeup()
        wakeup.bind()
        passes = 0

        async def loop() -> None:
            nonlocal passes
            while True:
                passes += 1
                await wakeup.wait(60)

        task = asyncio.create_task(loop())
        await asyncio.sleep(0)  # the loop is waiting
        wakeup.set()
        await asyncio.sleep(0)  # the nudge has fired: the waiter is done but has not run yet
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        return task in done and task.cancelled()

    assert asyncio.run(scenario()), "the loop swallowed its cancellation and kept running"


def test_the_wait_ends_on_a_nudge_or_at_its_timeout() -> None:
    async def scenario() -> tuple[float, float]:
        wakeup = Wakeup()
        wakeup.bind()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wakeup.wait(0.05)
        timed_out = loop.time() - started
        loop.call_later(0.01, wakeup.set)
        started = loop.time()
        await wakeup.wait(30)
        return timed_out, loop.time() - started

    timed_out, nudged = asyncio.run(scenario())
    assert 0.04 <= timed_out < 1
    assert nudged < 1
