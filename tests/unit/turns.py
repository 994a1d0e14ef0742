"""A scenario both implementations of cross-process chat turns (`SessionTurns`) are checked with."""

from __future__ import annotations

import asyncio

from chowder.domain.ports.turns import SessionTurns

Seen = dict[str, tuple[str | None, str | None]]


def interleaved_turns(a: SessionTurns, b: SessionTurns) -> tuple[list[str], Seen]:
    """Four 0.3 s turns on one session arriving 0.1 s apart, alternately through `a` and `b` (k1 and k3 through
    `a`): the events in order ("k1 in", "k1 out", ...), and whom `a` and `b` named while each turn ran. Both must
    name nobody once all are done."""
    events: list[str] = []
    seen: Seen = {}

    async def turn(process: SessionTurns, key: str) -> None:
        async with process.hold("inst", "s", key):
            events.append(f"{key} in")
            seen[key] = (await a.key_of("inst", "s"), await b.key_of("inst", "s"))
            await asyncio.sleep(0.3)
            events.append(f"{key} out")

    async def scenario() -> None:
        tasks = []
        for process, key in ((a, "k1"), (b, "k2"), (a, "k3"), (b, "k4")):
            tasks.append(asyncio.create_task(turn(process, key)))
            await asyncio.sleep(0.1)  # arrival order
        await asyncio.gather(*tasks)
        assert await a.key_of("inst", "s") is None and await b.key_of("inst", "s") is None

    asyncio.run(scenario())
    return events, seen
