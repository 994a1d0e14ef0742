"""The whole lifecycle against real OpenClaw gateways in real sandboxes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from chowder.core.crypto import SecretBox
from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from tests.e2e.harness import METRICS_TOKEN, Server, gateway_pids, one_gateway, sandbox_processes
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.e2e


def _instance_tokens(data_dir: Path, instance_id: str) -> list[str]:
    """The gateway token and model credential, decrypted the way the server does it."""
    box = SecretBox.from_settings(Settings(data_dir=data_dir))
    with sqlite3.connect(data_dir / "chowder.db") as conn:
        row = conn.execute(
            "SELECT gateway_token_enc, model_token_enc FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
    return [box.decrypt(value) for value in row]


def test_signup_to_delete_walk(server: Server, data_dir: Path) -> None:
    client = server.client
    secret = "sk-ant-e2e-secret-model-key"
    key = signup(client, "Walk", model_keys={"anthropic": secret})
    created = create_instance(client, key, name="walker", openclaw_config={"agent": {"system_prompt": "Be terse."}})
    assert created["status"] == "provisioning"
    instance_id = created["id"]
    sandbox_dir = data_dir / "sandboxes" / sandbox_id_for(instance_id)

    running = server.wait_status(key, instance_id, {"running", "error"})
    assert running["status"] == "running", running["error_message"]
    assert running["sandbox_id"] == sandbox_id_for(instance_id) and running["gateway_url"]
    gateway = running["gateway_url"]
    one_gateway(server, gateway)
    status = client.get(f"/v1/instances/{instance_id}/status", headers=auth(key)).json()
    assert status == {"id": instance_id, "status": "running", "gateway_url": running["gateway_url"]}

    # The state dir holds the rendered config, and the standing instructions in AGENTS.md; no secret anywhere.
    state = next(sandbox_dir.rglob("openclaw.json")).parent
    config_text = (state / "openclaw.json").read_text()
    assert '"bind": "lan"' in config_text and "/model/anthropic" in config_text
    assert "Be terse." in (state / "workspace" / "AGENTS.md").read_text()
    (state / "workspace" / "notes.txt").write_text("kept across stop/start")
    secrets = [secret, key, *_instance_tokens(data_dir, instance_id)]
    for path in sandbox_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not [s for s in secrets if s.encode() in content], path
    assert not [s for s in secrets if s in server.log_text()]
    for pid in gateway_pids(gateway):
        assert not [s for s in secrets if s.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]

    stopped = client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key))
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    assert gateway_pids(gateway) == [] and sandbox_processes(sandbox_dir) == []
    again = client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key))
    assert (again.status_code, again.json()) == (409, {"detail": "Instance is stopped; it must be running to stop."})

    started = time.monotonic()
    response = client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "running"
    assert time.monotonic() - started < 180
    one_gateway(server, response.json()["gateway_url"])
    assert (state / "workspace" / "notes.txt").read_text() == "kept across stop/start"

    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    assert client.get(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 404
    deadline = time.monotonic() + 60
    while (sandbox_dir.exists() or sandbox_processes(sandbox_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sandbox_dir.exists(), "state dir left behind"
    assert sandbox_processes(sandbox_dir) == [] and gateway_pids(gateway) == []

    # The audit log tells the walk: the calls by the org key, the engine's transitions on its own.
    events = client.get(f"/v1/organization/audit?instance_id={instance_id}", headers=auth(key)).json()[::-1]
    by_engine = [e["action"] for e in events if e["actor"]["type"] == "engine"]
    by_key = [e["action"] for e in events if e["actor"]["type"] == "key"]
    assert by_engine[:2] == ["instance.launching", "instance.booted"] and "instance.stopped" in by_engine
    assert "instance.torn_down" in by_engine
    assert by_key[0] == "instance.create"
    for action in ("instance.stop", "POST /v1/instances/{instance_id}/stop", "instance.start", "instance.delete"):
        assert action in by_key, (action, by_key)

    # So do the metrics: a boot of each kind and a stop, timed.
    scraped = client.get("/metrics", headers=auth(METRICS_TOKEN)).text
    for series in ('chowder_instance_boot_duration_seconds_count{kind="create"}', "chowder_instance_stop_duration"):
        assert series in scraped, series
    assert 'chowder_instance_boot_duration_seconds_count{kind="start"} 1.0' in scraped


def test_rejected_config_ends_in_error_and_delete_frees_everything(server: Server, data_dir: Path) -> None:
    """A gateway that refuses its config leaves the instance in `error` with the gateway's reason, no process
    behind; it still holds its slot until deleted, and deleting it frees the slot and the files."""
    client = server.client
    key = signup(client, "Broken")
    instance_id = create_instance(client, key, openclaw_config={"bogusTopLevelKey": True})["id"]
    sandbox_dir = data_dir / "sandboxes" / sandbox_id_for(instance_id)
    failed = server.wait_status(key, instance_id, {"running", "error"})
    assert failed["status"] == "error"
    assert "bogusTopLevelKey" in failed["error_message"]
    assert failed["gateway_url"] is None
    assert sandbox_processes(sandbox_dir) == []
    response = client.post("/v1/instances", headers=auth(key), json={"name": "second"})
    assert response.status_code == 402
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    deadline = time.monotonic() + 60
    while sandbox_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sandbox_dir.exists()
    replacement = create_instance(client, key, name="second")
    assert client.delete(f"/v1/instances/{replacement['id']}", headers=auth(key)).status_code == 204
