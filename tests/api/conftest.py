"""API tests: the real app and a real database, without the lifecycle engine (nothing boots)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chowder.api.app import create_app
from chowder.core.settings import Settings
from tests.conftest import SHARED_RUNTIME


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, runtime_dir=SHARED_RUNTIME)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, run_engine=False, serve_sandboxes=False)
    with TestClient(app) as test_client:
        yield test_client
