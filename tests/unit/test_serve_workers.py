"""`chowder serve --workers N`: several API processes on one port and one database file (or PostgreSQL); a
database in memory, which each would have to itself, is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from chowder.cli.main import app
from chowder.sandbox import procfs
from tests.e2e.harness import Server
from tests.factories import auth, create_instance, signup


def test_several_workers_on_a_database_in_memory_are_refused(data_dir: Path) -> None:
    env = {"CHOWDER_DATA_DIR": str(data_dir), "CHOWDER_DATABASE_URL": "sqlite://", "CHOWDER_WORKERS": "1"}
    refused = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", "1"], env=env)
    assert refused.exit_code == 2
    assert "Several workers need a database file or PostgreSQL" in refused.output


def test_two_workers_on_one_sqlite_file_serve_as_one(data_dir: Path) -> None:
    database = f"sqlite:///{data_dir / 'chowder.db'}"
    server = Server(data_dir, database, command=("serve", "--no-engine", "--workers", "2"))
    server.start()
    try:
        assert server.process is not None
        assert len(_workers(server.process.pid)) == 2
        key = signup(server.client, "Workers")
        created = create_instance(server.client, key)["id"]
        for _ in range(8):  # a connection each: the kernel spreads them across both workers
            with httpx.Client(base_url=server.url) as client:
                listed = client.get("/v1/instances", headers=auth(key)).json()
                assert [instance["id"] for instance in listed] == [created]
    finally:
        server.stop()


def _workers(pid: int) -> list[int]:
    """The worker processes `pid` spawned (uvicorn's supervisor, through multiprocessing; its resource tracker,
    a child too, is not one)."""
    supervisor = procfs.proc_of(pid)
    assert supervisor is not None
    below = procfs.with_descendants({supervisor}) - {supervisor}
    return [child for child, _ in below if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]
