"""API tests: the real app and a real database, without the lifecycle engine (nothing boots)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from chowder.api.app import create_app
from chowder.core.settings import Settings
from tests.conftest import SHARED_RUNTIME


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, runtime_dir=SHARED_RUNTIME)


@contextlib.contextmanager
def client_for(settings: Settings) -> Iterator[TestClient]:
    """The app on `settings` with its lifespan running, the lifecycle engine off."""
    app = create_app(settings, run_engine=False, serve_sandboxes=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as test_client:
        yield test_client


def sql(settings: Settings, statement: str, **params: str) -> Any:
    """One statement on the app's database, behind its back: the first row, if it returns any."""
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        row = result.first() if result.returns_rows else None
    engine.dispose()
    return row


def pretend_running(settings: Settings, instance_id: str) -> None:
    """Running at a gateway URL nobody listens on: calls get past the state check; a turn then cannot connect
    (502)."""
    sql(
        settings,
        "UPDATE instances SET status = 'running', gateway_url = 'http://127.0.0.1:9' WHERE id = :i",
        i=instance_id,
    )
