"""Failure paths end to end: a gateway killed under a running instance, a delete during provisioning, a gateway
that never becomes ready. One control plane (dev model) for the module, with one running instance.

Each test checks what is left on the host (processes, sandbox directory, mounts, cgroups, network namespace) from
/proc, /sys and the disk itself, while it runs: the fixture's teardown destroys every sandbox, so a leak is only
visible before it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import BOOT_TIMEOUT_S, RunningInstance, Server, gateway_pids, running_instance, sandbox_processes
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"
# How long the engine may take to tear a deleted sandbox down (it retries a failed teardown).
TEARDOWN_S = 60.0


@dataclass
class Plane:
    """The module's control plane, which a test may restart on other settings (same data dir and database)."""

    env: RunningInstance

    @property
    def server(self) -> Server:
        return self.env.server

    def restart(self, **env: str) -> None:
        self.server.stop()
        self.env.server = Server(self.env.data_dir, self.server.env["CHOWDER_DATABASE_URL"], **env)
        self.server.start()

    def org(self, name: str) -> str:
        """A new org's key (the free tier holds one instance; the first org's runs the module's)."""
        return signup(self.server.client, name, model_keys={})

    def get(self, instance_id: str, key: str | None = None) -> dict[str, Any]:
        response = self.server.client.get(f"/v1/instances/{instance_id}", headers=auth(key or self.env.key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, instance_id: str, action: str, key: str | None = None) -> Any:
        return self.server.client.post(f"/v1/instances/{instance_id}/{action}", headers=auth(key or self.env.key))


@dataclass(frozen=True)
class Host:
    """What an instance's sandbox holds on this host, found without the server's help."""

    data_dir: Path
    instance_id: str

    @property
    def sandbox_id(self) -> str:
        return sandbox_id_for(self.instance_id)

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandboxes" / self.sandbox_id

    def cgroups(self) -> list[Path]:
        """The sandbox's cgroup in every mounted hierarchy (`<mount>/chowder/<sandbox id>`, v1 or v2)."""
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
        found = [Path(m[1]) / "chowder" / self.sandbox_id for m in mounts if m[2] in ("cgroup", "cgroup2")]
        return [path for path in found if path.is_dir()]

    def members(self) -> set[int]:
        """Pids in the sandbox's cgroups: its gateway, once launched, and whatever it runs."""
        return {int(pid) for cgroup in self.cgroups() for pid in (cgroup / "cgroup.procs").read_text().split()}

    def processes(self) -> list[int]:
        """Pids in its cgroups or working in the sandbox dir."""
        return sorted(self.members() | set(sandbox_processes(self.sandbox_dir)))

    def leftovers(self) -> list[str]:
        """Everything of the sandbox still on the host, in words."""
        marker = str(self.sandbox_dir)
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines() if marker in line]
        netns = Path("/run/netns") / f"chowder-{self.sandbox_id}"
        return [
            *(f"process {pid}" for pid in self.processes()),
            *([f"directory {self.sandbox_dir}"] if self.sandbox_dir.exists() else []),
            *(f"mount {mount}" for mount in mounts),
            *(f"cgroup {cgroup}" for cgroup in self.cgroups()),
            *([f"network namespace {netns}"] if netns.exists() else []),
        ]

    def wait_gone(self, timeout_s: float = TEARDOWN_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], f"left behind after delete: {left}"


@pytest.fixture(scope="module")
def plane() -> Iterator[Plane]:
    with running_instance("Failures", model_keys={}, CHOWDER_DEV_MODEL="1") as env:
        plane = Plane(env)
        try:
            yield plane
        finally:
            plane.server.stop()  # a restarted one (running_instance stops the first)


def wait_for(plane: Plane, instance_id: str, status: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (body := plane.get(instance_id))["status"] != status:
        assert time.monotonic() < deadline, f"not {status} after {timeout_s:.0f} s: {body}"
        time.sleep(0.25)
    return body


@pytest.mark.parametrize("when", ["at once", "once its gateway runs"])
def test_delete_during_provisioning_leaves_nothing(plane: Plane, when: str) -> None:
    client, key = plane.server.client, plane.org(f"Deletes {when}")
    instance_id = create_instance(client, key, name="doomed")["id"]
    host = Host(plane.env.data_dir, instance_id)
    if when != "at once":
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not host.members():
            assert time.monotonic() < deadline, "the boot never started the gateway"
            time.sleep(0.1)
        assert plane.get(instance_id, key)["status"] == "provisioning", "booted before it could be deleted mid-boot"
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    assert client.get(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 404
    host.wait_gone()
    time.sleep(3)  # work the delete cancelled may still be finishing in a thread: nothing may come back
    assert host.leftovers() == []


def test_a_killed_gateway_is_booted_again_by_the_liveness_check(plane: Plane) -> None:
    instance_id = plane.env.instance_id
    gateway = plane.get(instance_id)["gateway_url"]
    [killed] = gateway_pids(gateway)
    os.kill(killed, signal.SIGKILL)
    wait_for(plane, instance_id, "provisioning", 30)  # the engine looks every 2 s (CHOWDER_OBSERVE_INTERVAL_S)
    body = plane.server.wait_status(plane.env.key, instance_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    [new] = gateway_pids(body["gateway_url"])
    assert new != killed
    response = plane.server.client.post(
        f"/v1/instances/{instance_id}/responses", headers=auth(plane.env.key), json={"model": CLAUDE, "input": "back?"}
    )
    assert response.status_code == 200, response.text
    assert "last=back?" in output_text(response.json())


def test_a_gateway_that_never_becomes_ready_errors_with_no_process_left(plane: Plane) -> None:
    """Last in the module: it restarts the control plane with timeouts no boot can meet. An instance in `error`
    keeps its files (its agent's memory, for `POST /recover`), as a stopped one does; its processes must be gone."""
    stopped = Host(plane.env.data_dir, plane.env.instance_id)
    gateway = plane.get(stopped.instance_id)["gateway_url"]
    assert plane.post(stopped.instance_id, "stop").status_code == 200
    plane.restart(CHOWDER_DEV_MODEL="1", CHOWDER_START_TIMEOUT_S="3", CHOWDER_PROVISION_TIMEOUT_S="3")

    response = plane.post(stopped.instance_id, "start")
    assert response.status_code == 502, response.text
    failed = plane.get(stopped.instance_id)
    assert failed["status"] == "error" and failed["error_message"] == response.json()["detail"]
    assert "3 s" in failed["error_message"]
    assert stopped.processes() == [] and gateway_pids(gateway) == []
    assert next(stopped.sandbox_dir.rglob("openclaw.json")).is_file(), "its state is kept for a recover"

    key = plane.org("Slow")
    created = Host(plane.env.data_dir, create_instance(plane.server.client, key, name="slow")["id"])
    errored = plane.server.wait_status(key, created.instance_id, {"running", "error"}, 60)
    assert errored["status"] == "error" and errored["error_message"], errored
    assert created.processes() == []
    refused = plane.post(created.instance_id, "start", key)
    assert (refused.status_code, refused.json()) == (409, {"detail": "Instance is error; it must be stopped to start."})
    recovered = plane.post(created.instance_id, "recover", key)
    assert recovered.status_code == 502 and recovered.json()["detail"], recovered.text
    assert plane.get(created.instance_id, key)["status"] == "error"
    # Again, seconds later: no boot that timed out goes on in the background.
    assert created.processes() == [] and stopped.processes() == [] and gateway_pids(gateway) == []
