"""Lifecycle webhooks from a real server driving a real OpenClaw gateway: create → running → stop → delete of an
instance is announced to a receiver on 127.0.0.1 (allowed by CHOWDER_WEBHOOKS_ALLOW_PRIVATE) as instance.running,
instance.stopped and instance.deleted, each signed with the endpoint's secret and listed in its delivery log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.harness import Server
from tests.factories import auth, create_instance, signup
from tests.fakes.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
LIFE = ["instance.running", "instance.stopped", "instance.deleted"]


def test_an_instances_life_reaches_the_receiver_signed(server_factory: type[Server], data_dir: Path) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_WEBHOOKS_ALLOW_PRIVATE="1")
    server.start()
    receiver = Receiver()
    try:
        client, key = server.client, signup(server.client, "Hooked")
        endpoint = client.post("/v1/webhooks/endpoints", json={"url": receiver.url}, headers=auth(key)).json()
        receiver.secret = endpoint["secret"]
        instance_id = create_instance(client, key)["id"]
        running = server.wait_status(key, instance_id, {"running", "error"})
        assert running["status"] == "running", running["error_message"]
        stopped = client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key))
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
        assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
        deadline = time.monotonic() + 60
        while len(receiver.received) < len(LIFE):
            assert time.monotonic() < deadline, f"got only {receiver.events()}\n{server.log_text()[-3000:]}"
            time.sleep(0.2)
    finally:
        receiver.down()

    received = sorted(receiver.received, key=lambda item: item.body["created_at"])
    assert [item.body["type"] for item in received] == LIFE
    assert all(item.signature_valid and item.event_id_header == item.body["id"] for item in received)
    assert {item.body["data"]["instance"]["id"] for item in received} == {instance_id}
    assert [item.body["data"]["instance"]["status"] for item in received] == ["running", "stopped", "terminated"]
    log = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=auth(key)).json()
    assert [(d["event_type"], d["status"], d["attempts"]) for d in log] == [(t, "delivered", 1) for t in LIFE[::-1]]
    assert endpoint["secret"] not in server.log_text()
