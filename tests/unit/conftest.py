"""Fixtures of the tests that work below the API: a migrated database behind `Transactions`, and the engine's
environment (fake sandbox provider and agent runtime on a real database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from tests.fakes.engine_env import EngineEnv


@pytest.fixture
def tx(database_url: str) -> Iterator[SqlTransactions]:
    db = Database(database_url)
    migrate(db.engine)
    yield SqlTransactions(db)
    db.dispose()


@pytest.fixture
def env(data_dir: Path, database_url: str) -> Iterator[EngineEnv]:
    opened = EngineEnv(data_dir, database_url)
    yield opened
    opened.close()
