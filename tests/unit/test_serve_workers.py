"""`chowder serve --workers N`: several API processes on one port and one database file (or PostgreSQL); a
database in memory, which each would have to itself, is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from chowder.cli.main import app
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
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
            spawned = b"spawn_main" in (process / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and spawned:
            found.append(int(process.name))
    return found
