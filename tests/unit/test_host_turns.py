"""Chat turns across the processes of one host on one SQLite file (`persistence/host_turns.py`), as the workers
of `chowder serve --workers N` take them: two `HostTurns` here hold their locks on descriptions of their own, as
two processes would; a real second process shows what its death leaves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.domain.ports.turns import SessionTurns
from chowder.persistence.db import Database, migrate
from chowder.persistence.host_turns import HostTurns, lock_file_of
from chowder.wiring import session_turns
from tests.unit.turns import interleaved_turns

# Another process's turn on ("inst", "s") for key "k-dead", held until the process is killed.
_HOLDER = """
import asyncio, sys
from pathlib import Path
from chowder.persistence.db import make_engine
from chowder.persistence.host_turns import HostTurns

async def hold() -> None:
    turns = HostTurns(Path(sys.argv[2]), make_engine(sys.argv[1]))
    async with turns.hold("inst", "s", "k-dead"):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(hold())
"""


@pytest.fixture
def database(data_dir: Path) -> Iterator[tuple[str, Database]]:
    url = f"sqlite:///{data_dir / 'chowder.db'}"
    db = Database(url)
    migrate(db.engine)
    try:
        yield url, db
    finally:
        db.dispose()


@pytest.fixture
def processes(database: tuple[str, Database]) -> tuple[SessionTurns, SessionTurns]:
    url, db = database
    a, b = session_turns(url, db), session_turns(url, db)
    assert isinstance(a, HostTurns) and isinstance(b, HostTurns)
    return a, b


def test_processes_take_turns_on_a_session_one_at_a_time_and_name_the_holder(
    processes: tuple[SessionTurns, SessionTurns],
) -> None:
    events, seen = interleaved_turns(*processes)
    ins = [event.split()[0] for event in events if event.endswith(" in")]
    assert events == [f"{key} {step}" for key in ins for step in ("in", "out")], "never two at once"
    assert ins[0] == "k1" and sorted(ins) == ["k1", "k2", "k3", "k4"], "the first on a free session, none lost"
    assert ins.index("k1") < ins.index("k3") and ins.index("k2") < ins.index("k4"), "a process's own in order"
    assert seen == {key: (key, key) for key in ins}, "every process names the holder"


def test_other_sessions_are_not_held_up(processes: tuple[SessionTurns, SessionTurns]) -> None:
    a, b = processes

    async def scenario() -> None:
        async with a.hold("inst", "s", "k1"):
            async with asyncio.timeout(2), b.hold("inst", "other", "k2"), b.hold("inst2", "s", "k3"):
                assert await a.key_of("inst", "other") == "k2"
                assert await b.key_of("inst", "s") == "k1"

    asyncio.run(scenario())


def test_a_waiter_that_gives_up_leaves_the_session_to_the_next(processes: tuple[SessionTurns, SessionTurns]) -> None:
    a, b = processes

    async def scenario() -> None:
        async with a.hold("inst", "s", "k1"):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3), b.hold("inst", "s", "k2"):
                    pytest.fail("entered a held session")
        async with asyncio.timeout(2), b.hold("inst", "s", "k3"):
            assert await a.key_of("inst", "s") == "k3"

    asyncio.run(scenario())


def test_a_dead_processes_turn_frees_the_session_and_names_nobody(
    database: tuple[str, Database], processes: tuple[SessionTurns, SessionTurns]
) -> None:
    """The kernel frees a killed process's lock; its row stays behind, naming nobody."""
    url, _ = database
    a, _ = processes
    lock_file = lock_file_of(Path(url.removeprefix("sqlite:///")))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url, str(lock_file)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert asyncio.run(a.key_of("inst", "s")) == "k-dead", "another process's turn is named"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()

    async def after() -> None:
        assert await a.key_of("inst", "s") is None
        async with asyncio.timeout(1), a.hold("inst", "s", "k-next"):
            assert await a.key_of("inst", "s") == "k-next"

    asyncio.run(after())
