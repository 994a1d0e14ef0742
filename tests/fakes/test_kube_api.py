"""The fake Kubernetes API (tests/fakes/kube_api.py) driven by the official client: the token, objects and their
errors, watches, and pods run for real on the test engine (hardened, on a claim, with a Secret's env), exec, Services,
graceful deletion, and nothing left on the engine after close."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx
import pytest
import websocket
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from chowder.core.images import DEFAULT_IMAGE
from chowder.core.kubernetes import RUN_AS, container_security, pod_security
from tests.fakes.kube_api import FakeKubernetes
from tests.fakes.kube_pods import LABEL

pytestmark = pytest.mark.e2e

NS = "chowder-sandboxes"
T = TypeVar("T")


@pytest.fixture(scope="module")
def engine(docker_host: str) -> Iterator[docker.DockerClient]:
    engine = docker.DockerClient(base_url=docker_host, timeout=120)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def fake(engine: docker.DockerClient) -> Iterator[FakeKubernetes]:
    with FakeKubernetes(engine) as fake:
        yield fake


@pytest.fixture(scope="module")
def api(fake: FakeKubernetes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(str(fake.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")))
    yield client.CoreV1Api(api_client)
    api_client.close()


@pytest.fixture(scope="module")
def app(api: client.CoreV1Api) -> str:
    """One hardened pod as the provider makes them: a claim, a Secret's env, and busybox httpd on a named port."""
    labels = {"app": "web"}
    api.create_namespaced_secret(NS, {"metadata": {"name": "web-env"}, "stringData": {"TOKEN": "s3cret"}})
    api.create_namespaced_persistent_volume_claim(NS, claim("web-state"))
    serve = "mkdir /tmp/www && echo hello from $GREETING > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
    box = {
        "env": [
            {"name": "GREETING", "value": "web"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "web-env", "key": "TOKEN"}}},
        ],
        "envFrom": [{"secretRef": {"name": "web-env"}}],
        "ports": [{"name": "app", "containerPort": 8080, "protocol": "TCP"}],
    }
    api.create_namespaced_pod(NS, pod("web", ["/bin/sh", "-c", serve], claim_name="web-state", labels=labels, **box))
    service = {"selector": labels, "ports": [{"name": "app", "port": 80, "targetPort": "app"}]}
    api.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": service})
    running(api, "web")
    return "web"


def pod(
    name: str,
    command: list[str],
    *,
    claim_name: str | None = None,
    labels: dict[str, str] | None = None,
    restart: str = "Always",
    runtime: str | None = None,
    **container: Any,
) -> dict[str, Any]:
    """A pod shaped as src/chowder/sandbox/kubernetes/objects.py makes them."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    if claim_name is not None:
        mounts.append({"name": "state", "mountPath": "/sandbox"})
        volumes.append({"name": "state", "persistentVolumeClaim": {"claimName": claim_name}})
    box = {
        "name": "app",
        "image": DEFAULT_IMAGE,
        "command": command,
        "workingDir": "/tmp",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": {**container_security(), "runAsNonRoot": True},
        "volumeMounts": mounts,
        **container,
    }
    spec = {"restartPolicy": restart, "securityContext": pod_security(), "containers": [box], "volumes": volumes}
    if runtime is not None:
        spec["runtimeClassName"] = runtime
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def claim(name: str) -> dict[str, Any]:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    return {"metadata": {"name": name}, "spec": spec}


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 30) -> T:
    deadline = time.monotonic() + timeout_s
    while not done(value := read()):
        assert time.monotonic() < deadline, f"still {value}"
        time.sleep(0.1)
    return value


def running(api: client.CoreV1Api, name: str) -> client.V1Pod:
    return wait_for(lambda: api.read_namespaced_pod(name, NS), lambda p: p.status.phase == "Running" and ready(p))


def ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def execute(
    api: client.CoreV1Api, name: str, argv: list[str], stdin: bytes | None = None, *, duplex: bool = False
) -> tuple[bytes, bytes, int]:
    """stdout, stderr and exit code. stdin is written whole and closed before the output is read (as the provider
    does), or with `duplex` from a thread while it is read (for a command that answers as it reads)."""
    resp = stream(
        api.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=argv,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        binary=True,
        _preload_content=False,
    )
    if stdin is not None:

        def feed() -> None:
            for start in range(0, len(stdin), 1 << 20):
                resp.write_stdin(stdin[start : start + (1 << 20)])
            resp.close_channel(0)

        if duplex:
            threading.Thread(target=feed, daemon=True).start()
        else:
            feed()
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + 60
    while resp.is_open():
        assert time.monotonic() < deadline, "exec did not end"
        resp.update(timeout=1)
        out += resp.read_channel(1, timeout=0)
        err += resp.read_channel(2, timeout=0)
    out += resp.read_channel(1, timeout=0)
    err += resp.read_channel(2, timeout=0)
    return bytes(out), bytes(err), resp.returncode


def test_every_request_needs_the_token(fake: FakeKubernetes, tmp_path: Path) -> None:
    answer = httpx.get(f"{fake.url}/api/v1/namespaces/{NS}/pods")
    assert answer.status_code == 401
    assert answer.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    kubeconfig.write_text(kubeconfig.read_text().replace(fake.token, "not-the-token"))
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(config.new_client_from_config(str(kubeconfig))).list_namespaced_secret(NS)
    assert denied.value.status == 401


def test_objects_are_created_read_listed_and_deleted(fake: FakeKubernetes, api: client.CoreV1Api) -> None:
    for name, tier in (("one", "a"), ("two", "b"), ("three", None)):
        labels = {"tier": tier} if tier else {}
        body = {"metadata": {"name": name, "labels": labels}, "stringData": {"password": name}}
        made = api.create_namespaced_secret(NS, body)
        assert made.metadata.uid and made.metadata.resource_version and made.metadata.creation_timestamp
        assert made.metadata.namespace == NS and made.data == {"password": base64.b64encode(name.encode()).decode()}
    assert api.read_namespaced_secret("one", NS).metadata.labels == {"tier": "a"}

    def names(selector: str) -> list[str]:
        listed = api.list_namespaced_secret(NS, label_selector=selector)
        assert listed.kind == "SecretList" and listed.metadata.resource_version
        return sorted(item.metadata.name for item in listed.items if item.metadata.name in ("one", "two", "three"))

    assert names("tier=a") == ["one"]
    assert names("tier!=a") == ["three", "two"]
    assert names("tier") == ["one", "two"]
    assert names("!tier") == ["three"]
    assert names("tier,tier!=b") == ["one"]

    with pytest.raises(ApiException) as missing:
        api.read_namespaced_secret("nope", NS)
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'secrets "nope" not found'
    with pytest.raises(ApiException) as taken:
        api.create_namespaced_secret(NS, {"metadata": {"name": "one"}})
    assert taken.value.status == 409 and json.loads(taken.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as nameless:
        api.create_namespaced_secret(NS, {"metadata": {}})
    assert nameless.value.status == 422 and json.loads(nameless.value.body)["reason"] == "Invalid"
    with pytest.raises(ApiException) as elsewhere:
        api.create_namespaced_secret("nowhere", {"metadata": {"name": "x"}})
    assert elsewhere.value.status == 404
    put = httpx.put(
        f"{fake.url}/api/v1/namespaces/{NS}/secrets/one", json={}, headers={"Authorization": f"Bearer {fake.token}"}
    )
    assert put.status_code == 405 and put.json()["reason"] == "MethodNotAllowed"
    json_patch = httpx.patch(
        f"{fake.url}/api/v1/namespaces/{NS}/secrets/one",
        json=[{"op": "remove", "path": "/data"}],
        headers={"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json-patch+json"},
    )
    assert json_patch.status_code == 415

    policies = client.NetworkingV1Api(api.api_client)
    policy = {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert policies.create_namespaced_network_policy(NS, policy).kind == "NetworkPolicy"
    assert [p.metadata.name for p in policies.list_namespaced_network_policy(NS).items] == ["deny"]
    assert [p["metadata"]["name"] for p in fake.objects("NetworkPolicy")] == ["deny"]
    egress = {"spec": {"policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}
    patched = policies.patch_namespaced_network_policy("deny", NS, egress, _content_type="application/merge-patch+json")
    assert patched.spec.policy_types == ["Egress"] and patched.spec.egress[0].ports[0].port == 53
    assert patched.metadata.name == "deny" and patched.spec.pod_selector is not None
    policies.delete_namespaced_network_policy("deny", NS)

    for name in ("one", "two", "three"):
        api.delete_namespaced_secret(name, NS)
    with pytest.raises(ApiException) as gone:
        api.delete_namespaced_secret("one", NS)
    assert gone.value.status == 404


def test_a_pod_runs_hardened_on_its_claim(fake: FakeKubernetes, api: client.CoreV1Api, app: str) -> None:
    status = api.read_namespaced_pod_status(app, NS).status
    assert status.pod_ip and status.pod_ip.startswith("10.233.") and status.host_ip
    [box] = status.container_statuses
    assert box.ready and box.started and box.restart_count == 0 and box.state.running.started_at

    container = fake.container_of(app)
    assert container is not None
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == f"{RUN_AS}:{RUN_AS}" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == 128 << 20 and host["NanoCpus"] == 500_000_000

    out, _, code = execute(api, app, ["/bin/sh", "-c", "id -u; id -G; stat -c '%a %g' /sandbox; echo $KEY $TOKEN"])
    uid, groups, sandbox, env = out.decode().splitlines()
    assert code == 0 and uid == str(RUN_AS) and str(RUN_AS) in groups.split()
    assert sandbox == f"2775 {RUN_AS}" and env == "s3cret s3cret"
    out, _, code = execute(api, app, ["/bin/sh", "-c", "echo kept > /sandbox/f && echo t > /tmp/f && cat /sandbox/f"])
    assert (out, code) == (b"kept\n", 0)
    _, err, code = execute(api, app, ["/bin/touch", "/rooted"])
    assert code != 0 and b"Read-only file system" in err


def test_exec_streams_stdin_stdout_stderr_and_the_exit_code(api: client.CoreV1Api, app: str) -> None:
    assert execute(api, app, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]) == (b"out\n", b"err\n", 3)
    assert execute(api, app, ["/bin/wc", "-c"], stdin=b"hello") == (b"5\n", b"", 0)
    blob = os.urandom(6 << 20)
    out, err, code = execute(api, app, ["/bin/cat"], stdin=blob, duplex=True)
    assert (len(out), err, code) == (len(blob), b"", 0) and out == blob
    digest = hashlib.sha256(blob).hexdigest().encode()
    assert execute(api, app, ["/bin/sha256sum"], stdin=blob)[0] == digest + b"  -\n"

    with pytest.raises(ApiException) as missing:
        stream(api.connect_get_namespaced_pod_exec, "absent", NS, command=["true"], stdout=True, stderr=True)
    assert "404" in str(missing.value.reason)


def test_exec_speaks_v4_with_its_status_channel(fake: FakeKubernetes, app: str) -> None:
    query = "command=/bin/sh&command=-c&command=echo%20hi%3B%20exit%202&stdout=true&stderr=true"
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{fake.port}/api/v1/namespaces/{NS}/pods/{app}/exec?{query}",
        header=[f"Authorization: Bearer {fake.token}", "Sec-WebSocket-Protocol: v4.channel.k8s.io"],
    )
    frames = []
    try:
        assert ws.getheaders()["sec-websocket-protocol"] == "v4.channel.k8s.io"
        while (frame := ws.recv_data())[0] != websocket.ABNF.OPCODE_CLOSE:
            frames.append(frame[1])
    finally:
        ws.close()
    assert frames[0] == b"\x01hi\n" and frames[-1][:1] == b"\x03"
    assert json.loads(frames[-1][1:]) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command [/bin/sh -c echo hi; exit 2], "
        "exit code 2",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "2"}]},
    }


def test_a_service_forwards_its_cluster_ip_to_the_pod(api: client.CoreV1Api, app: str) -> None:
    service = api.read_namespaced_service("web", NS)
    assert service.spec.cluster_ip.startswith("127.77.")
    assert httpx.get(f"http://{service.spec.cluster_ip}/index.html").text == "hello from web\n"
    pod_ip = api.read_namespaced_pod(app, NS).status.pod_ip
    assert httpx.get(f"http://{pod_ip}:8080/index.html").text == "hello from web\n"

    empty = {"selector": {"app": "none"}, "ports": [{"port": 80, "targetPort": 8080}]}
    lonely = api.create_namespaced_service(NS, {"metadata": {"name": "lonely"}, "spec": empty}).spec.cluster_ip
    with socket.create_connection((lonely, 80), timeout=5) as conn:
        assert conn.recv(1) == b"", "no ready pod: closed at once"
    api.delete_namespaced_service("lonely", NS)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((lonely, 80), timeout=5)


def test_watch_and_graceful_delete(fake: FakeKubernetes, api: client.CoreV1Api) -> None:
    events: list[tuple[str, client.V1Pod]] = []

    def follow() -> None:
        for event in watch.Watch().stream(api.list_namespaced_pod, NS, label_selector="test=watch", timeout_seconds=30):
            events.append((event["type"], event["object"]))
            if event["type"] == "DELETED":
                return

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    api.create_namespaced_pod(NS, pod("watched", command, labels={"test": "watch"}))
    running(api, "watched")
    container = fake.container_of("watched")
    assert container is not None
    started = time.monotonic()
    deleting = api.delete_namespaced_pod("watched", NS, grace_period_seconds=20)
    assert deleting.metadata.deletion_timestamp is not None
    watcher.join(timeout=30)
    assert time.monotonic() - started < 10, "the container stopped on SIGTERM, well within its grace"
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "ADDED" and kinds[-1] == "DELETED" and "MODIFIED" in kinds
    assert events[-2][1].metadata.deletion_timestamp is not None
    assert any(p.status.phase == "Running" for kind, p in events if kind == "MODIFIED")
    assert fake.container_of("watched") is None
    with pytest.raises(docker.errors.NotFound):
        container.reload()
    with pytest.raises(ApiException):
        api.read_namespaced_pod("watched", NS)


def test_a_claim_outlives_its_pod(fake: FakeKubernetes, api: client.CoreV1Api) -> None:
    api.create_namespaced_persistent_volume_claim(NS, claim("kept"))
    sleeper = pod("keeper", ["/bin/sleep", "3600"], claim_name="kept")
    api.create_namespaced_pod(NS, sleeper)
    running(api, "keeper")
    assert execute(api, "keeper", ["/bin/sh", "-c", "echo 42 > /sandbox/answer"])[2] == 0

    started = time.monotonic()
    api.delete_namespaced_pod("keeper", NS, grace_period_seconds=2)
    wait_for(lambda: fake.container_of("keeper"), lambda found: found is None)
    assert 1.5 < time.monotonic() - started < 15, "sleep ignores SIGTERM: killed once the grace period is over"
    wait_for(lambda: [p["metadata"]["name"] for p in fake.objects("Pod")], lambda names: "keeper" not in names)

    api.create_namespaced_pod(NS, sleeper)
    running(api, "keeper")
    assert execute(api, "keeper", ["/bin/cat", "/sandbox/answer"])[0] == b"42\n"

    volumes = fake.engine.volumes.list(filters={"label": f"{LABEL}={fake.id}"})
    api.delete_namespaced_persistent_volume_claim("kept", NS)
    assert api.read_namespaced_persistent_volume_claim("kept", NS).metadata.deletion_timestamp, "in use: kept"
    api.delete_namespaced_pod("keeper", NS, grace_period_seconds=0)
    wait_for(lambda: [c["metadata"]["name"] for c in fake.objects("PersistentVolumeClaim")], lambda n: "kept" not in n)
    left = fake.engine.volumes.list(filters={"label": f"{LABEL}={fake.id}"})
    assert len(left) == len(volumes) - 1


def test_pods_that_cannot_run_say_why(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, pod("unclaimed", ["/bin/true"], claim_name="absent"))
    api.create_namespaced_pod(NS, pod("sandboxed", ["/bin/true"], runtime="no-such-runtime"))
    api.create_namespaced_pod(NS, pod("failing", ["/bin/sh", "-c", "echo failing >&2; exit 3"], restart="Never"))
    api.create_namespaced_pod(NS, pod("crashing", ["/bin/sh", "-c", "sleep 0.2; exit 1"]))

    def condition(p: client.V1Pod, kind: str) -> client.V1PodCondition | None:
        return next((c for c in p.status.conditions or [] if c.type == kind), None)

    unclaimed = wait_for(lambda: api.read_namespaced_pod("unclaimed", NS), lambda p: condition(p, "PodScheduled"))
    scheduled = condition(unclaimed, "PodScheduled")
    assert unclaimed.status.phase == "Pending" and scheduled.status == "False"
    assert scheduled.message == 'persistentvolumeclaim "absent" not found'
    sandboxed = wait_for(lambda: api.read_namespaced_pod("sandboxed", NS), lambda p: p.status.container_statuses)
    waiting = sandboxed.status.container_statuses[0].state.waiting
    assert sandboxed.status.phase == "Pending" and waiting.reason == "CreateContainerError"
    assert "no-such-runtime" in waiting.message
    with pytest.raises(ApiException) as not_running:
        stream(api.connect_get_namespaced_pod_exec, "sandboxed", NS, command=["true"], stdout=True, stderr=True)
    assert "400" in str(not_running.value.reason)

    failing = wait_for(lambda: api.read_namespaced_pod("failing", NS), lambda p: p.status.phase == "Failed")
    assert failing.status.container_statuses[0].state.terminated.exit_code == 3
    assert api.read_namespaced_pod_log("failing", NS) == "failing\n"
    crashing = wait_for(
        lambda: api.read_namespaced_pod("crashing", NS),
        lambda p: bool(p.status.container_statuses) and p.status.container_statuses[0].restart_count >= 1,
    )
    assert crashing.status.phase == "Running"
    for name in ("unclaimed", "sandboxed", "failing", "crashing"):
        api.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_close_removes_everything_it_made(engine: docker.DockerClient, tmp_path: Path) -> None:
    with FakeKubernetes(engine, namespace="elsewhere") as other:
        configuration = client.Configuration()
        config.load_kube_config(str(other.write_kubeconfig(tmp_path / "config")), client_configuration=configuration)
        api = client.CoreV1Api(client.ApiClient(configuration))
        api.create_namespaced_persistent_volume_claim("elsewhere", claim("state"))
        api.create_namespaced_pod(
            "elsewhere", pod("busy", ["/bin/sleep", "3600"], claim_name="state", labels={"a": "b"})
        )
        service = {"selector": {"a": "b"}, "ports": [{"port": 80}]}
        cluster_ip = api.create_namespaced_service(
            "elsewhere", {"metadata": {"name": "s"}, "spec": service}
        ).spec.cluster_ip
        wait_for(lambda: api.read_namespaced_pod("busy", "elsewhere"), lambda p: p.status.phase == "Running")
        mine = {"label": f"{LABEL}={other.id}"}
        assert engine.containers.list(filters=mine) and engine.volumes.list(filters=mine)
        assert engine.networks.list(filters=mine)
    assert not engine.containers.list(all=True, filters=mine)
    assert not engine.volumes.list(filters=mine)
    assert not engine.networks.list(filters=mine)
    assert subprocess.run(["ip", "link", "show", f"chtk{other.id}"], capture_output=True).returncode != 0
    with pytest.raises(OSError):
        socket.create_connection((cluster_ip, 80), timeout=2)
