"""An instance on the docker provider, from create to delete, checked from outside the server: the engine's
objects, the host's sandbox rules and the volume's files (chat, files, channels and stop/start run on docker in
their own modules)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import docker
import pytest

from chowder.core.ids import sandbox_id_for
from chowder.sandbox.docker.objects import SANDBOX_LABEL
from tests.e2e.harness import Server, sandbox_box
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.e2e


def _engine_objects(sandbox_id: str) -> dict[str, list[str]]:
    client = docker.from_env()
    labels = {"label": f"{SANDBOX_LABEL}={sandbox_id}"}
    return {
        "containers": [c.name or "" for c in client.containers.list(all=True, filters=labels)],
        "networks": [n.name or "" for n in client.networks.list(filters=labels)],
        "volumes": [v.name or "" for v in client.volumes.list(filters=labels)],
    }


def _admitted_interfaces() -> str:
    """The host rules' model endpoints, by interface (the sandbox's bridge is there while it exists)."""
    listed = subprocess.run(
        ["nft", "-j", "list", "set", "inet", "chowder", "model_endpoints"], capture_output=True, text=True, check=True
    )
    return json.dumps(json.loads(listed.stdout))


def test_an_instance_runs_in_its_container_and_delete_leaves_nothing(
    docker_host: str, server_factory: type[Server], data_dir: Path
) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_SANDBOX_PROVIDER="docker")
    server.start()
    client = server.client
    secret = "sk-ant-docker-secret-model-key"
    key = signup(client, "Docker", model_keys={"anthropic": secret})
    instance_id = create_instance(client, key, name="boxed")["id"]
    sandbox_id = sandbox_id_for(instance_id)
    running = server.wait_status(key, instance_id, {"running", "error"})
    assert running["status"] == "running", running["error_message"]
    assert running["gateway_url"].startswith("http://127.0.0.1:"), "published on host loopback only"

    objects = _engine_objects(sandbox_id)
    assert [len(objects[kind]) for kind in ("containers", "networks", "volumes")] == [1, 1, 1], objects
    (container,) = docker.from_env().containers.list(filters={"label": f"{SANDBOX_LABEL}={sandbox_id}"})
    assert container.attrs["Config"]["User"] != "" and not container.attrs["Config"]["User"].startswith("0")
    bridge = container.attrs["NetworkSettings"]["Networks"][objects["networks"][0]]
    iface = docker.from_env().networks.get(bridge["NetworkID"]).attrs["Options"]["com.docker.network.bridge.name"]
    assert iface in _admitted_interfaces(), "the bridge is under the host's sandbox rules"

    box = sandbox_box(data_dir, instance_id, "docker")
    config = next(box.rglob("openclaw.json"))
    assert '"bind": "lan"' in config.read_text() and "/model/anthropic" in config.read_text()
    secrets = [secret, key]
    for path in box.rglob("*"):
        if path.is_file():
            assert not [s for s in secrets if s.encode() in path.read_bytes()], path
    assert not [s for s in secrets if s in server.log_text()]

    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    deadline = time.monotonic() + 60
    while any(_engine_objects(sandbox_id).values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _engine_objects(sandbox_id) == {"containers": [], "networks": [], "volumes": []}
    assert iface not in _admitted_interfaces() and not box.exists()
