"""`chowder serve --workers N`: several API processes on one port and one database file (or PostgreSQL); a
database in memory, which each would have to itself, is refused."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from typer.testing import CliRunner

from chowder.cli.main import app
from chowder.sandbox import procfs
from tests.e2e.harness import Server, listening_sockets
from tests.factories import auth, create_instance, signup, wait_until


def _env(data_dir: Path, database_url: str) -> dict[str, str]:
    """`serve --workers N` sets CHOWDER_WORKERS in this process's environment for its workers: named here, the
    CliRunner puts it back afterwards (else the tests after this one would each enforce half their rate limits)."""
    return {"CHOWDER_DATA_DIR": str(data_dir), "CHOWDER_DATABASE_URL": database_url, "CHOWDER_WORKERS": "1"}


def test_several_workers_on_a_database_in_memory_are_refused(data_dir: Path) -> None:
    refused = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", "1"], env=_env(data_dir, "sqlite://"))
    assert refused.exit_code == 2
    assert "Several workers need a database file or PostgreSQL" in refused.output


def test_a_port_another_program_holds_is_refused_before_any_worker_starts(data_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = _env(data_dir, f"sqlite:///{data_dir / 'chowder.db'}")
        refused = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", str(port), "--no-engine"], env=env)
    assert refused.exit_code == 2
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use." in refused.output


def test_two_workers_on_one_sqlite_file_serve_as_one(data_dir: Path) -> None:
    database = f"sqlite:///{data_dir / 'chowder.db'}"
    server = Server(data_dir, database, command=("serve", "--no-engine", "--workers", "2"))
    server.start()
    try:
        assert server.process is not None
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        # Each on a listening socket of its own (SO_REUSEPORT), none shared: the kernel spreads connections evenly.
        # (The server answered once one worker had started; the other may still be starting.)
        wait_until(lambda: all(listening_sockets(worker, server.port) for worker in workers), "both workers listen")
        listeners = [listening_sockets(worker, server.port) for worker in workers]
        assert all(len(found) == 1 for found in listeners), listeners
        assert listeners[0] != listeners[1]
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
