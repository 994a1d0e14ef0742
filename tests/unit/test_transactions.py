"""Where a unit of work runs: every transaction off the event loop, except a short read on a local SQLite file,
which costs less than the hop to a thread (and under load, the wait for the GIL there)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import create_engine, text

from chowder.domain.models import Status
from chowder.persistence.store import SqlTransactions
from tests.factories import add_instance_of, new_org

pytestmark = pytest.mark.persistence
TERMINATE_OTHERS = """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND datname = current_database()"""


def test_a_short_read_runs_on_the_loop_only_on_sqlite(tx: SqlTransactions, database_url: str) -> None:
    async def threads() -> tuple[int, int, int]:
        read_on = await tx.read(lambda uow: threading.get_ident())
        work_on = await tx(lambda uow: threading.get_ident())
        return threading.get_ident(), read_on, work_on

    loop_thread, read_on, work_on = asyncio.run(threads())
    assert work_on != loop_thread, "a transaction runs in a worker thread"
    assert (read_on == loop_thread) is database_url.startswith("sqlite"), database_url.split(":")[0]


def an_instance(tx: SqlTransactions, org_name: str) -> tuple[str, str]:
    org_id = new_org(tx, org_name)
    return org_id, tx.run_sync(lambda uow: add_instance_of(uow, org_id, name=org_name))


def test_a_read_sees_what_a_transaction_committed_and_only_its_orgs(tx: SqlTransactions) -> None:
    org_id, instance_id = an_instance(tx, "Seen")
    other_org, _ = an_instance(tx, "Other")

    async def reads() -> tuple[object, ...]:
        return (
            await tx.read(lambda reads: reads.instances.public(org_id, instance_id)),
            await tx.read(lambda reads: reads.instances.status_of(org_id, instance_id)),
            await tx.read(lambda reads: [found.id for found in reads.instances.public_of_org(org_id)]),
            await tx.read(lambda reads: reads.instances.status_of(other_org, instance_id)),
        )

    found, status, listed, theirs = asyncio.run(reads())
    assert getattr(found, "name", None) == "Seen"
    assert status == (Status.PROVISIONING, None)
    assert listed == [instance_id]
    assert theirs is None, "another org's read finds nothing"


def test_a_read_on_a_connection_the_server_dropped_is_retried(tx: SqlTransactions, database_url: str) -> None:
    """Read connections are not pinged before use (a round trip per read): a dead one costs a retry instead."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a database server's connections (PostgreSQL)")
    org_id, instance_id = an_instance(tx, "Dropped")

    async def read() -> str | None:
        found = await tx.read(lambda reads: reads.instances.public(org_id, instance_id))
        return None if found is None else found.name

    assert asyncio.run(read()) == "Dropped", "a read connection is now pooled"
    server = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with server.begin() as connection:
        assert connection.execute(text(TERMINATE_OTHERS)).rowcount >= 1, "the pooled read connection was dropped"
    server.dispose()
    assert asyncio.run(read()) == "Dropped"
