"""One `chowder serve` per setting a bench compares, each on a data dir of its own, and everything they started
gone afterwards, however the bench ends."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.harness import Server, destroy_sandboxes
from tests.factories import signup


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
