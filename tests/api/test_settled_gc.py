"""A serving process freezes what its app's startup built out of the garbage collector's sight (a full collection
walked all of it under load: the p99 of a poll); an app built by a test, one of hundreds, leaves the collector
as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chowder.api.app import create_app
from chowder.core.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("settle_gc", [True, False])
def test_only_a_serving_process_freezes_what_startup_built(settings: Settings, settle_gc: bool) -> None:
    app = create_app(settings, run_engine=False, serve_sandboxes=False, settle_gc=settle_gc)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert (gc.get_freeze_count() > 0) is settle_gc
