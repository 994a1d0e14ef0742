"""End-to-end fixtures: a real server with real OpenClaw gateways, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import METRICS_TOKEN, Server, destroy_sandboxes, require_runtime

pytestmark = pytest.mark.e2e


@pytest.fixture
def server_factory(data_dir: Path) -> Iterator[type[Server]]:
    """Servers started by a test are stopped, and every sandbox destroyed, even when the test fails."""
    require_runtime()
    started: list[Server] = []

    class TrackedServer(Server):
        def start(self) -> None:
            started.append(self)
            super().start()

    yield TrackedServer
    for server in started:
        server.stop()
    for provider in {"process", *(server.env.get("CHOWDER_SANDBOX_PROVIDER", "process") for server in started)}:
        destroy_sandboxes(data_dir, provider)


@pytest.fixture
def server(server_factory: type[Server], data_dir: Path) -> Server:
    srv = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_METRICS_TOKEN=METRICS_TOKEN)
    srv.start()
    return srv
