"""Chat turns across API replicas on one PostgreSQL database (`persistence/turns.py`): two replicas, each with
its own engine and connections, as two `chowder serve` processes would have."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from chowder.domain.ports.turns import SessionTurns
from chowder.persistence.db import Database, make_engine, migrate
from chowder.persistence.turns import DatabaseTurns
from chowder.wiring import session_turns
from tests.unit.turns import interleaved_turns

pytestmark = pytest.mark.persistence


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[SessionTurns, SessionTurns, str]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("turns shared by replicas are PostgreSQL's: on SQLite one process serves, its queue in memory")
    databases = [Database(database_url), Database(database_url)]
    migrate(databases[0].engine)
    try:
        a, b = (session_turns(database_url, db) for db in databases)
        assert isinstance(a, DatabaseTurns) and isinstance(b, DatabaseTurns)
        yield a, b, database_url
    finally:
        for db in databases:
            db.dispose()


def test_replicas_take_turns_on_a_session_in_arrival_order_and_name_the_holder(
    replicas: tuple[SessionTurns, SessionTurns, str],
) -> None:
    a, b, _ = replicas
    events, seen = interleaved_turns(a, b)
    assert events == [f"{key} {step}" for key in ("k1", "k2", "k3", "k4") for step in ("in", "out")]
    assert seen == {key: (key, key) for key in ("k1", "k2", "k3", "k4")}, "every replica names the holder"


def test_other_sessions_are_not_held_up(replicas: tuple[SessionTurns, SessionTurns, str]) -> None:
    a, b, _ = replicas

    async def scenario() -> None:
        async with a.hold("inst", "s", "k1"):
            async with asyncio.timeout(2), b.hold("inst", "other", "k2"), b.hold("inst2", "s", "k3"):
                assert await a.key_of("inst", "other") == "k2"

    asyncio.run(scenario())


def test_a_dead_replicas_turn_frees_the_session_and_names_nobody(
    replicas: tuple[SessionTurns, SessionTurns, str],
) -> None:
    """A replica that dies mid-turn (its database sessions end) leaves its row behind; nobody is named by it."""
    a, b, url = replicas
    admin = make_engine(url)

    def kill_holders() -> None:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'INSERT INTO session_turns%'"
                )
            )
            connection.commit()

    async def scenario() -> None:
        async with a.hold("inst", "s", "k1"):
            assert await b.key_of("inst", "s") == "k1"
            await asyncio.to_thread(kill_holders)
            await asyncio.sleep(0.2)
            assert await b.key_of("inst", "s") is None, "the row is left, its lock is not"
            async with asyncio.timeout(2), b.hold("inst", "s", "k2"):
                assert await a.key_of("inst", "s") == "k2"

    try:
        asyncio.run(scenario())
    finally:
        admin.dispose()


def test_a_caller_that_gives_up_while_queued_leaves_the_queue(replicas: tuple[SessionTurns, SessionTurns, str]) -> None:
    a, b, url = replicas

    async def scenario() -> None:
        async with a.hold("inst", "s", "k1"):
            waiting = asyncio.create_task(_enter(b, "k2"))
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        async with asyncio.timeout(2), b.hold("inst", "s", "k3"):
            assert await a.key_of("inst", "s") == "k3"

    asyncio.run(scenario())
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            waiting = connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
        assert waiting == 0
    finally:
        engine.dispose()


async def _enter(turns: SessionTurns, key: str) -> None:
    async with turns.hold("inst", "s", key):
        pass
