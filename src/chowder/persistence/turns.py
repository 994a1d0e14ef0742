"""Chat turns serialized across API replicas on one PostgreSQL database (`SessionTurns`).

A turn holds a session-level advisory lock on a connection of its own for as long as it runs: waiters queue in
PostgreSQL's lock manager in arrival order, from whichever replica they came, and a replica that dies frees its
turns with its connections. Within a replica, turns first queue on an asyncio lock, so one connection per
session and replica waits at the database, not one per waiting turn. The holder writes its API key into
`session_turns`; any replica's model endpoint reads it there, and only while the lock is really held (a row a
dead replica left behind names nobody)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import Engine, text

from chowder.domain.turns import SessionLocks

_HOLDER = text(
    "SELECT t.key_id FROM session_turns t JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid) AND l.objsubid = 1"
    " WHERE t.instance_id = :instance_id AND t.session_id = :session_id"
)


class DatabaseTurns:
    """`conninfo` is the database's libpq URL; `engine` serves the reads (pooled)."""

    def __init__(self, conninfo: str, engine: Engine) -> None:
        self._conninfo = conninfo
        self._engine = engine
        self._local = SessionLocks()

    @asynccontextmanager
    async def hold(self, instance_id: str, session_id: str, key_id: str | None = None) -> AsyncIterator[None]:
        async with self._local.hold(instance_id, session_id, key_id):
            connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            try:
                await _wait_for_lock(connection, lock_key(instance_id, session_id))
                await connection.execute(
                    "INSERT INTO session_turns (instance_id, session_id, key_id) VALUES (%s, %s, %s)"
                    " ON CONFLICT (instance_id, session_id) DO UPDATE SET key_id = EXCLUDED.key_id",
                    (instance_id, session_id, key_id),
                )
                yield
            finally:
                # Closing ends the session: its advisory lock goes with it, whatever happened.
                await connection.close()

    async def key_of(self, instance_id: str, session_id: str) -> str | None:
        high, low = _halves(lock_key(instance_id, session_id))
        params = {"instance_id": instance_id, "session_id": session_id, "high": high, "low": low}

        def read() -> str | None:
            with self._engine.connect() as connection:
                key: str | None = connection.execute(_HOLDER, params).scalar()
                return key

        return await asyncio.to_thread(read)


async def _wait_for_lock(connection: psycopg.AsyncConnection[tuple[object, ...]], key: int) -> None:
    """A caller that gives up while queued (its client went away) leaves the queue at once."""
    try:
        await connection.execute("SELECT pg_advisory_lock(%s)", (key,))
    except asyncio.CancelledError:
        await connection.cancel_safe()
        raise


def lock_key(instance_id: str, session_id: str) -> int:
    """A signed 64-bit advisory lock key for one session of one instance."""
    digest = hashlib.sha256(f"chowder-turn:{instance_id}/{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _halves(key: int) -> tuple[int, int]:
    """How `pg_locks` shows a bigint advisory key: its high and low 32 bits, as unsigned oids."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF
