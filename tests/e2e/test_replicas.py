"""Two API replicas (`serve --no-engine`) and two workers on one database behave as one control plane: chats to
one session through both replicas are all answered, strictly one after another; instance calls go through
either; a worker killed mid-provisioning has its instance taken over. On PostgreSQL (its pass) and on one SQLite
file, whose processes hold a session through a lock file beside it, as `serve --workers N` does."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from chowder.persistence.db import make_engine
from tests.e2e.harness import Server, destroy_sandboxes, free_port, require_runtime
from tests.factories import auth, create_instance, output_text, signup
from tests.fakes.model_server import FakeModelServer

pytestmark = [pytest.mark.e2e, pytest.mark.persistence]

CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture
def cluster(database_url: str) -> Iterator[tuple[list[Server], list[Server], FakeModelServer, str]]:
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-replicas-", dir="/tmp"))
    with FakeModelServer() as fake:
        env = {"CHOWDER_MODEL_PORT": str(free_port()), "CHOWDER_ANTHROPIC_BASE_URL": fake.url}
        replicas = [Server(data_dir, database_url, command=("serve", "--no-engine"), **env) for _ in range(2)]
        workers = [Server(data_dir, database_url, command=("worker",), **env) for _ in range(2)]
        try:
            for process in [*replicas, *workers]:
                process.start()
            yield replicas, workers, fake, database_url
        finally:
            for process in [*replicas, *workers]:
                process.stop()
            destroy_sandboxes(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)


def test_two_replicas_and_two_workers_act_as_one(
    cluster: tuple[list[Server], list[Server], FakeModelServer, str],
) -> None:
    (a, b), workers, fake, database_url = cluster
    key = signup(a.client, "Replicas", model_keys={"anthropic": "sk-ant-replicas"})
    instance_id = create_instance(a.client, key)["id"]
    assert b.wait_status(key, instance_id, {"running", "error"})["status"] == "running"
    path = f"/v1/instances/{instance_id}/session/shared/responses"

    fake.delay_s = 0.5  # each turn takes a while, so the replicas' turns would overlap if they could
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda i: (a, b)[i % 2].client.post(
                        path, headers=auth(key), json={"model": CLAUDE, "input": f"turn {i}"}
                    ),
                    range(6),
                )
            )
    finally:
        fake.delay_s = 0.0
    assert [answer.status_code for answer in answers] == [200] * 6, [answer.text for answer in answers]
    turns = sorted(int(re.findall(r"turns=(\d+)", output_text(answer.json()))[0]) for answer in answers)
    assert turns == [1, 2, 3, 4, 5, 6], "one after another, none lost"
    usage = b.client.get("/v1/organization/usage", headers=auth(key)).json()
    charged = [entry for entry in usage["keys"] if entry["key_id"] is not None]
    assert charged and charged[0]["requests"] >= 6, "each turn's model calls charged to its key"

    assert b.client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key)).status_code == 200
    assert a.wait_status(key, instance_id, {"stopped", "error"})["status"] == "stopped"
    assert a.client.post(f"/v1/instances/{instance_id}/start", headers=auth(key)).status_code == 200
    assert b.wait_status(key, instance_id, {"running", "error"})["status"] == "running"
    assert b.client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204

    # A worker dies while it provisions an instance: the other one takes it over once the lease lapses.
    second = create_instance(b.client, key)["id"]
    owner = _lease_owner(database_url, second)
    by_pid = {worker.process.pid: worker for worker in workers if worker.process is not None}
    holder = by_pid[int(owner.split(":")[1])]
    assert holder.process is not None
    os.kill(holder.process.pid, signal.SIGKILL)
    holder.process.wait()
    assert a.wait_status(key, second, {"running", "error"})["status"] == "running", "only the survivor could"
    assert a.client.delete(f"/v1/instances/{second}", headers=auth(key)).status_code == 204


def _lease_owner(database_url: str, instance_id: str) -> str:
    """The worker holding the instance's lease, as soon as one does: `host:pid:tag`."""
    engine = make_engine(database_url)
    deadline = time.monotonic() + 30
    try:
        while True:
            with engine.connect() as connection:
                owner = connection.execute(
                    text("SELECT lease_owner FROM instances WHERE id = :id"), {"id": instance_id}
                ).scalar()
            if owner or time.monotonic() > deadline:
                assert owner, "no worker claimed the instance"
                return str(owner)
            time.sleep(0.05)
    finally:
        engine.dispose()
