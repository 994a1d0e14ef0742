"""Crash safety: a SIGKILLed control plane leaves nothing stuck or orphaned, and adopts what still runs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server, gateway_pids, sandbox_processes
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.e2e


def test_sigkill_at_any_point_leaves_no_orphan_and_running_gateways_are_adopted(
    server_factory: type[Server], data_dir: Path
) -> None:
    db_path = data_dir / "chowder.db"
    server = server_factory(data_dir, f"sqlite:///{db_path}")
    server.start()
    client = server.client
    key_a, key_b = signup(client, "A"), signup(client, "B")
    doomed = create_instance(client, key_a)["id"]
    doomed_url = server.wait_status(key_a, doomed, {"running", "error"})["gateway_url"]
    assert doomed_url and gateway_pids(doomed_url)

    # Crash while another instance is half-way through provisioning.
    booting = create_instance(client, key_b)["id"]
    time.sleep(3)
    server.kill()
    # The first instance was deleted just before the crash: its row says so, its sandbox still runs.
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE instances SET status='terminated', desired_state='deleted' WHERE id=?", (doomed,))

    server = server_factory(data_dir, f"sqlite:///{db_path}")
    server.start()
    booted = server.wait_status(key_b, booting, {"running", "error"})
    assert booted["status"] == "running", booted["error_message"]
    gateway = booted["gateway_url"]
    assert len(gateway_pids(gateway)) == 1, "exactly one gateway: the one launched before the crash, or a new one"
    doomed_dir = data_dir / "sandboxes" / sandbox_id_for(doomed)
    deadline = time.monotonic() + 60
    while (doomed_dir.exists() or gateway_pids(doomed_url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not doomed_dir.exists() and gateway_pids(doomed_url) == []
    assert sandbox_processes(doomed_dir) == []

    # A crash while running: the restarted control plane adopts the gateway without restarting it.
    before = sorted(gateway_pids(gateway))
    server.kill()
    assert sorted(gateway_pids(gateway)) == before, "the gateway died with the control plane"
    server = server_factory(data_dir, f"sqlite:///{db_path}")
    server.start()
    time.sleep(6 + 2 * 2 + 3)  # lease expiry, then at least two liveness checks
    after = server.client.get(f"/v1/instances/{booting}", headers=auth(key_b)).json()
    assert after["status"] == "running"
    assert sorted(gateway_pids(gateway)) == before, "the gateway was restarted instead of adopted"
