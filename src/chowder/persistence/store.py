"""The SQL unit of work: one session per use case, its repositories built on it, run in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cached_property
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from chowder.domain.ports.storage import Reads, UnitOfWork
from chowder.persistence.audit import SqlAuditRepository
from chowder.persistence.backups import SqlBackupRepository
from chowder.persistence.db import Database
from chowder.persistence.idempotency import SqlIdempotencyRepository
from chowder.persistence.instances import SqlEngineRepository, SqlInstanceReads, SqlInstanceRepository
from chowder.persistence.spend import SqlSpendReads, SqlSpendRepository
from chowder.persistence.tenancy import SqlKeyRepository, SqlOrgRepository, SqlStripeEventRepository, SqlUsageRepository
from chowder.persistence.warm_pool import SqlWarmPoolRepository
from chowder.persistence.webhooks import SqlWebhookRepository

T = TypeVar("T")


class SqlUnitOfWork:
    def __init__(self, session: Session) -> None:
        self._session = session

    @cached_property
    def orgs(self) -> SqlOrgRepository:
        return SqlOrgRepository(self._session)

    @cached_property
    def keys(self) -> SqlKeyRepository:
        return SqlKeyRepository(self._session)

    @cached_property
    def instances(self) -> SqlInstanceRepository:
        return SqlInstanceRepository(self._session)

    @cached_property
    def usage(self) -> SqlUsageRepository:
        return SqlUsageRepository(self._session)

    @cached_property
    def stripe_events(self) -> SqlStripeEventRepository:
        return SqlStripeEventRepository(self._session)

    @cached_property
    def engine(self) -> SqlEngineRepository:
        return SqlEngineRepository(self._session)

    @cached_property
    def warm_pool(self) -> SqlWarmPoolRepository:
        return SqlWarmPoolRepository(self._session)

    @cached_property
    def audit(self) -> SqlAuditRepository:
        return SqlAuditRepository(self._session)

    @cached_property
    def idempotency(self) -> SqlIdempotencyRepository:
        return SqlIdempotencyRepository(self._session)

    @cached_property
    def spend(self) -> SqlSpendRepository:
        return SqlSpendRepository(self._session)

    @cached_property
    def webhooks(self) -> SqlWebhookRepository:
        return SqlWebhookRepository(self._session)

    @cached_property
    def backups(self) -> SqlBackupRepository:
        return SqlBackupRepository(self._session)


class SqlReads:
    """`Reads` on a bare connection."""

    def __init__(self, connection: Connection) -> None:
        self.instances = SqlInstanceReads(connection)
        self.spend = SqlSpendReads(connection)


class SqlTransactions:
    """`Transactions` on a database: each call is one session, committed when the work returns."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # SQLite in WAL mode: a reader never waits on a writer, and a lookup is a local file read of microseconds.
        # A server's database is across a network (it stays off the loop).
        self._reads_inline = db.engine.dialect.name == "sqlite"

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        return await asyncio.to_thread(self.run_sync, work)

    async def read(self, work: Callable[[Reads], T]) -> T:
        return self._read_sync(work) if self._reads_inline else await asyncio.to_thread(self._read_sync, work)

    def _read_sync(self, work: Callable[[Reads], T]) -> T:
        """Once more on a fresh connection when the first was dead (a database server restarted): reads repeat
        safely, and the pool then drops every connection older than the failure."""
        try:
            return self._read_once(work)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return self._read_once(work)

    def _read_once(self, work: Callable[[Reads], T]) -> T:
        if self._reads_inline:
            return work(SqlReads(self._db.kept_read_connection()))
        with self._db.read_connection() as connection:
            return work(SqlReads(connection))

    def run_sync(self, work: Callable[[UnitOfWork], T]) -> T:
        """The same transaction for callers that are not on an event loop (the operator CLI)."""
        with self._db.session() as session:
            return work(SqlUnitOfWork(session))
