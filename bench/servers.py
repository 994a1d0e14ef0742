"""One `chowder serve` per setting a bench compares, each on a data dir of its own, and everything they started
gone afterwards, however the bench ends."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.harness import Server, create_running, destroy_sandboxes
from tests.factories import auth, signup


@contextmanager
def bench_servers(settings: dict[str, dict[str, str]], **common: str) -> Iterator[dict[str, tuple[Server, str]]]:
    """Each setting's running server and an org key on it, by the setting's label."""
    started: dict[str, Server] = {}
    try:
        for label, env in settings.items():
            data_dir = Path(tempfile.mkdtemp(prefix="chowder-bench-", dir="/tmp"))
            data_dir.chmod(0o711)
            started[label] = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", **common, **env)
            started[label].start()
        yield {
            label: (server, signup(server.client, f"bench {label}", model_keys={})) for label, server in started.items()
        }
    finally:
        for label, server in started.items():
            server.stop()
            destroy_sandboxes(server.data_dir, settings[label].get("CHOWDER_SANDBOX_PROVIDER", "process"))
            shutil.rmtree(server.data_dir, ignore_errors=True)


def create_stop_start(server: Server, key: str) -> tuple[dict[str, Any], float, float]:
    """A new instance created, stopped and started again: as the start answered it, create → running (s), and
    start → running (s)."""
    client = server.client
    body, create_s = create_running(server, key)
    instance_id = body["id"]
    assert client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key)).status_code == 200
    started = time.monotonic()
    response = client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert response.status_code == 200 and response.json()["status"] == "running", response.text
    started_body: dict[str, Any] = response.json()
    return started_body, create_s, time.monotonic() - started
