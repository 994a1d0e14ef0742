"""What a hostile agent can reach from inside its sandbox, asked of the agent itself: every probe is a shell command
the fake model has OpenClaw's `exec` tool run, so it sees exactly the network, files and sockets the agent has.

Two tenants share one server. The "outside world" is a server in the tests' own network namespace
(tests/fakes/outside.py): never an address off this machine."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.sandbox.isolation import find_bwrap
from tests.conftest import SHARED_RUNTIME
from tests.e2e.agent_shell import CLAUDE, EXEC_CONFIG, agent_shell
from tests.e2e.harness import (
    Server,
    destroy_sandboxes,
    free_port,
    gateway_pids,
    require_runtime,
    sandbox_processes,
)
from tests.factories import auth, create_instance, signup
from tests.fakes.model_server import FakeModelServer
from tests.fakes.outside import ADDRESS, NETNS

pytestmark = pytest.mark.e2e


@dataclass
class Tenants:
    """Two organizations with one instance each: `a` is the agent that probes, `b` its neighbour."""

    server: Server
    keys: dict[str, str]
    a: str
    b: str
    model_port: int
    outside_port: int
    canary_port: int


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def outside_port(outside: str) -> Iterator[int]:
    """A web server in the tests' outside namespace (stand-in for the internet)."""
    port = 8080
    server = subprocess.Popen(
        ["ip", "netns", "exec", NETNS, sys.executable, "-m", "http.server", str(port), "--bind", outside],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # from the host, whose route to it leads only into that namespace
            try:
                httpx.get(f"http://{outside}:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def canary() -> Iterator[int]:
    """A service on every host address (loopback included) that no sandbox may reach."""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def tenants(outside_port: int, canary: int) -> Iterator[Tenants]:
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-e2e-", dir="/tmp"))
    model_port = free_port()
    with FakeModelServer() as fake:
        server = Server(
            data_dir,
            f"sqlite:///{data_dir / 'chowder.db'}",
            CHOWDER_ANTHROPIC_BASE_URL=fake.url,
            CHOWDER_MODEL_PORT=str(model_port),
            CHOWDER_SANDBOX_DISK_MB="256",
        )
        try:
            server.start()
            keys, ids = {}, {}
            for org in ("Alpha", "Beta"):
                keys[org] = signup(server.client, org, model_keys={"anthropic": "sk-ant-isolation"})
                ids[org] = create_instance(server.client, keys[org], openclaw_config=EXEC_CONFIG)["id"]
            for org, instance_id in ids.items():
                body = server.wait_status(keys[org], instance_id, {"running", "error"})
                assert body["status"] == "running", body["error_message"]
            keys = {ids[org]: key for org, key in keys.items()}
            yield Tenants(server, keys, ids["Alpha"], ids["Beta"], model_port, outside_port, canary)
        finally:
            server.stop()
            destroy_sandboxes(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)


def shell(env: Tenants, instance_id: str, command: str) -> str:
    return agent_shell(env.server, env.keys[instance_id], instance_id, command)


def connect(env: Tenants, instance_id: str, host: str, port: int) -> str:
    """OPEN, or BLOCKED with the errno, of a TCP connect from inside the agent's sandbox (3 s at most)."""
    code = (
        f"import socket; s = socket.socket(); s.settimeout(3); r = s.connect_ex(('{host}', {port})); "
        "print('OPEN' if r == 0 else 'BLOCKED', r)"
    )
    return shell(env, instance_id, f'python3 -c "{code}"').split()[0]


def gateway_host(env: Tenants, instance_id: str) -> str:
    body = env.server.client.get(f"/v1/instances/{instance_id}", headers=auth(env.keys[instance_id])).json()
    return httpx.URL(body["gateway_url"]).host


def test_the_host_and_other_tenants_are_out_of_reach(tenants: Tenants) -> None:
    a_host = gateway_host(tenants, tenants.a)
    host_side = a_host.rsplit(".", 1)[0] + "." + str(int(a_host.rsplit(".", 1)[1]) - 1)
    model_address = "10.231.0.1"
    assert connect(tenants, tenants.a, model_address, tenants.model_port) == "OPEN", "the model endpoint is"
    for host, port, what in [
        ("127.0.0.1", tenants.canary_port, "a service on the host's loopback"),
        ("127.0.0.1", tenants.server.port, "the control plane's API"),
        (host_side, tenants.canary_port, "the host, through its side of the sandbox's own link"),
        (model_address, tenants.canary_port, "the host at the model address, on another port"),
        (gateway_host(tenants, tenants.b), 18789, "another instance's gateway"),
    ]:
        assert connect(tenants, tenants.a, host, port) == "BLOCKED", what

    sockets = shell(tenants, tenants.a, "cat /proc/net/tcp /proc/net/tcp6")
    local_ports = {int(line.split()[1].rsplit(":", 1)[1], 16) for line in sockets.splitlines() if ":" in line}
    for port in (tenants.server.port, tenants.model_port, tenants.canary_port):
        assert port not in local_ports, f"host socket {port} visible in the sandbox's /proc/net"
    assert "Permission denied" in shell(tenants, tenants.a, "cat /etc/shadow; echo done")


def test_the_model_endpoint_serves_model_routes_only(tenants: Tenants) -> None:
    base = f"http://10.231.0.1:{tenants.model_port}"
    paths = "/v1/organization /model/openai/v1/files /healthz"
    answer = shell(
        tenants, tenants.a, f'for p in {paths}; do curl -s -o /dev/null -w "$p %{{http_code}} " {base}$p; done'
    )
    assert answer.split() == ["/v1/organization", "404", "/model/openai/v1/files", "404", "/healthz", "404"]
    public = tenants.server.client.post("/model/anthropic/v1/messages", json={})
    assert public.status_code == 404, "the public API does not serve model routes"


def test_egress_none_blocks_what_open_allows_and_chat_works_in_both(tenants: Tenants) -> None:
    client, headers = tenants.server.client, auth(tenants.keys[tenants.a])
    assert client.get(f"/v1/instances/{tenants.a}", headers=headers).json()["egress"] == "open"
    assert connect(tenants, tenants.a, ADDRESS, tenants.outside_port) == "OPEN"

    closed = client.patch(f"/v1/instances/{tenants.a}", headers=headers, json={"egress": "none"})
    assert (closed.status_code, closed.json()["egress"]) == (200, "none")
    assert connect(tenants, tenants.a, ADDRESS, tenants.outside_port) == "BLOCKED"
    assert connect(tenants, tenants.b, ADDRESS, tenants.outside_port) == "OPEN", "only a's policy changed"

    reopened = client.patch(f"/v1/instances/{tenants.a}", headers=headers, json={"egress": "open"})
    assert reopened.json()["egress"] == "open"
    assert connect(tenants, tenants.a, ADDRESS, tenants.outside_port) == "OPEN"
    bad = client.patch(f"/v1/instances/{tenants.a}", headers=headers, json={"egress": "some"})
    assert bad.status_code == 422
    refused_config = {"agents": {"defaults": {"timeoutSeconds": "soon"}}}
    refused = client.patch(
        f"/v1/instances/{tenants.a}", headers=headers, json={"egress": "none", "openclaw_config": refused_config}
    )
    assert refused.status_code == 400, refused.text
    assert client.get(f"/v1/instances/{tenants.a}", headers=headers).json()["egress"] == "open"
    assert connect(tenants, tenants.a, ADDRESS, tenants.outside_port) == "OPEN", "a refused PATCH changes nothing"


def test_a_full_disk_is_enospc_inside_one_sandbox_only(tenants: Tenants) -> None:
    """256 MiB each here (CHOWDER_SANDBOX_DISK_MB): writing 400 MiB fails inside a with ENOSPC; while a's disk is
    full, b and the control plane go on. (a's command frees the space itself before its turn ends: OpenClaw needs
    room to record the turn.)"""
    box = tenants.server.data_dir / "sandboxes" / sandbox_id_for(tenants.a) / "box"
    command = "head -c 400M /dev/zero > fill.bin 2>/tmp/err; echo exit=$?; cat /tmp/err; sleep 8; rm fill.bin"
    result: dict[str, str] = {}
    filling = threading.Thread(target=lambda: result.update(out=shell(tenants, tenants.a, command)))
    filling.start()
    try:
        deadline = time.monotonic() + 60
        while (free := os.statvfs(box)).f_bavail * free.f_frsize > 1 << 20:
            assert time.monotonic() < deadline, "a's disk never filled"
            time.sleep(0.2)
        headers = auth(tenants.keys[tenants.b])
        assert tenants.server.client.get(f"/v1/instances/{tenants.b}", headers=headers).status_code == 200
        assert shell(tenants, tenants.b, "echo fine > b.txt && cat b.txt").split() == ["fine"]
    finally:
        filling.join(120)
    assert "exit=1" in result["out"] and "No space left on device" in result["out"], result


def test_a_host_without_a_mechanism_refuses_to_start_sandboxes(data_dir: Path) -> None:
    """The server runs in a mount namespace where bwrap cannot be executed: an instance ends in `error` saying
    so, and nothing is started (not even its box is made)."""
    require_runtime()
    bwrap = find_bwrap()
    assert bwrap is not None
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    server.wrapper = ["unshare", "--mount", "--", "sh", "-c", f'mount --bind /dev/null {bwrap} && exec "$@"', "-"]
    try:
        server.start()
        key = signup(server.client, "Weak", model_keys={})
        instance_id = create_instance(server.client, key)["id"]
        failed = server.wait_status(key, instance_id, {"running", "error"}, timeout_s=60)
        assert failed["status"] == "error"
        # Masked in the venv, the bundled bwrap is not found; masked in the copy a 0700 home needs, it cannot run.
        assert re.search(r"bwrap (not found|cannot create namespaces)", failed["error_message"]), failed
        assert "CHOWDER_SANDBOX_ISOLATION=none" in failed["error_message"]
        sandbox_dir = data_dir / "sandboxes" / sandbox_id_for(instance_id)
        assert not sandbox_dir.exists() and sandbox_processes(data_dir / "sandboxes") == []
    finally:
        server.stop()


def test_a_clone_under_a_0700_home_keeps_per_sandbox_uids(data_dir: Path) -> None:
    """Data dir and runtime cache both inside a mode-0700 directory, as in a clone under /root: the gateway
    still runs as a host uid of its own (never root, never the server's), and answers."""
    require_runtime()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    runtime = data_dir / "runtime"
    runtime.mkdir()
    _run("mount", "--bind", str(SHARED_RUNTIME), str(runtime))
    try:
        _run("mount", "-o", "remount,bind,ro", str(runtime))  # the shared cache stays untouchable
        server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
        server.env["CHOWDER_RUNTIME_DIR"] = str(runtime)
        try:
            server.start()
            key = signup(server.client, "Home", model_keys={})
            instance_id = create_instance(server.client, key)["id"]
            body = server.wait_status(key, instance_id, {"running", "error"})
            assert body["status"] == "running", body["error_message"]
            pids = gateway_pids(body["gateway_url"])
            assert pids, "no gateway listens where the instance says"
            uids = {int(line.split()[1]) for pid in pids for line in _status(pid) if line.startswith("Uid:")}
            assert uids and all(uid >= Settings().sandbox_uid_base for uid in uids), uids
            turn = server.client.post(
                f"/v1/instances/{instance_id}/responses", headers=auth(key), json={"model": CLAUDE, "input": "hi"}
            )
            assert turn.status_code == 200, turn.text
        finally:
            server.stop()
            destroy_sandboxes(data_dir)
    finally:
        _run("umount", str(runtime))


def _status(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/status").read_text().splitlines()
