"""The lifecycle engine on a real database (SQLite in the test's data dir, or the test PostgreSQL) with the fake
sandbox provider and agent runtime, and timings small enough that every path runs in well under a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.domain.instances import Instances
from chowder.domain.models import Status
from chowder.domain.ports.instances import InstanceRecord
from chowder.domain.power import PowerControl
from chowder.domain.reconciler import Engine
from chowder.persistence.db import Database, migrate
from chowder.persistence.records import record_of
from chowder.persistence.store import SqlTransactions
from chowder.persistence.tables import InstanceRow
from chowder.sandbox.base import SandboxProvider
from tests.fakes.backups import FakeBackups
from tests.fakes.records import add_instance
from tests.fakes.runtime import FakeAgentRuntime
from tests.fakes.sandbox import FakeSandboxProvider


class EngineEnv:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            provision_timeout_s=1.0,
            start_timeout_s=1.0,
            stop_grace_s=0.01,
            reconcile_interval_s=0.02,
            observe_interval_s=0.05,
            lease_s=0.6,
        )
        self.db = Database(database_url)
        migrate(self.db.engine)
        self.tx = SqlTransactions(self.db)
        self.box = SecretBox("engine tests")
        self.provider = FakeSandboxProvider()
        self.runtime = FakeAgentRuntime()
        self.backups = FakeBackups()

    @property
    def providers(self) -> dict[str, SandboxProvider]:
        return {self.provider.name: self.provider}

    def engine(self) -> Engine:
        return Engine(self.tx, self.box, self.settings, self.providers, self.runtime, backups=self.backups)

    def use_cases(self, engine: Engine) -> Instances:
        """The instance use cases on the same database, waking `engine` as the API does."""
        power = PowerControl(self.tx, self.providers, self.settings, engine.wake)
        return Instances(
            self.tx, self.box, self.settings, self.providers, self.runtime, engine.wake, lambda: None, power
        )

    def add(self, **fields: Any) -> InstanceRecord:
        """A new org's instance on the fake provider; freshly created unless `fields` say otherwise."""
        return self.tx.run_sync(lambda uow: add_instance(uow, self.box, **fields))

    def read(self, instance_id: str) -> InstanceRecord:
        """The instance as stored, deleted or not (no repository reads a deleted one: only the engine's leases do)."""
        with self.db.session() as session:
            row = session.get(InstanceRow, instance_id)
            assert row is not None
            return record_of(InstanceRecord, row)

    async def until(self, instance_id: str, done: Callable[[InstanceRecord], bool], timeout_s: float = 5.0) -> None:
        """Waits for the engine to bring the instance where `done` says (AssertionError with its state if not)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done(instance := await asyncio.to_thread(self.read, instance_id)):
            assert loop.time() < deadline, f"the engine did not get there: {instance}"
            await asyncio.sleep(0.02)

    async def until_status(self, instance_id: str, status: Status) -> InstanceRecord:
        await self.until(instance_id, lambda instance: instance.status == status)
        return self.read(instance_id)

    def close(self) -> None:
        self.db.dispose()


class Loop(Protocol):
    async def run(self) -> None: ...


@contextlib.asynccontextmanager
async def running(*loops: Loop) -> AsyncIterator[None]:
    """The loops (engines, webhook workers) run until the block ends, then stop as on shutdown."""
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
