"""The Kubernetes objects of one sandbox: valid for a current Kubernetes (strict schemas), holding nothing of the
cluster, and fenced by a NetworkPolicy that admits only the control plane."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import V1ObjectMeta

from chowder.deploy.kubernetes import APP, MODEL_PORT
from chowder.sandbox.base import BLOCKED, LaunchSpec, Resources, SandboxSpec
from chowder.sandbox.kubernetes.objects import (
    ROLE_LABEL,
    KubernetesPlacement,
    object_name,
    pod,
    sandbox_objects,
    spec_of,
    tools_pod,
)

KUBERNETES = "1.37.0"
PLACEMENT = KubernetesPlacement(
    namespace="agents",
    image="registry.local/chowder-gateway:2026.9.6",
    app_port=18789,
    control_plane_namespace="chowder",
    control_plane_labels={"app.kubernetes.io/name": APP},
    model_port=MODEL_PORT,
)
SPEC = SandboxSpec("sb_1F2e3d", {"instance_id": "6d1c0c5e-0d1b-4c6a-9f8e-2b0d3c4e5f60"}, Resources(512, 0.5, 256))
LAUNCH = LaunchSpec(("node", "openclaw.mjs", "gateway", "run"), {"OPENCLAW_GATEWAY_TOKEN": "t0ken", "HOME": "/sandbox"})


def _every(spec: SandboxSpec = SPEC, placement: KubernetesPlacement = PLACEMENT) -> list[dict[str, Any]]:
    return [*sandbox_objects(spec, placement), pod(spec, LAUNCH, placement), tools_pod(spec, placement)]


@pytest.mark.parametrize("egress", ["open", "none"])
@pytest.mark.parametrize("extras", [{}, {"runtime_class": "gvisor", "storage_class": "fast"}])
def test_every_object_is_valid_for_a_current_kubernetes(egress: str, extras: dict[str, str]) -> None:
    objects = _every(dataclasses.replace(SPEC, egress=egress), dataclasses.replace(PLACEMENT, **extras))
    assert [o["kind"] for o in objects] == ["PersistentVolumeClaim", "Service", "NetworkPolicy", "Pod", "Pod"]
    for manifest in objects:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        assert manifest["metadata"]["name"].startswith("chowder-sb-sb-1f2e3d")
        assert manifest["metadata"]["annotations"]["chowder.dev/label-instance_id"] == SPEC.labels["instance_id"]
        assert manifest["metadata"]["annotations"]["chowder.dev/sandbox-id"] == "sb_1F2e3d"


def test_the_pod_holds_nothing_of_the_cluster_and_is_limited() -> None:
    manifest = pod(SPEC, LAUNCH, dataclasses.replace(PLACEMENT, runtime_class="gvisor"))
    spec = manifest["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["runtimeClassName"] == "gvisor" and "hostNetwork" not in spec
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert container["command"][:2] == ["/bin/sh", "-c"] and container["command"][3] == "/sandbox/root/logs/app.out"
    assert container["command"][4:] == list(LAUNCH.argv), "the launch's argv, its output to its log in the box"
    claim = [v for v in spec["volumes"] if v["name"] == "state"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == object_name(SPEC.sandbox_id), "its state is the claim create made, kept across stop/start"


def test_the_network_policy_admits_only_the_control_plane_and_never_another_sandbox() -> None:
    def policy(egress: str) -> dict[str, Any]:
        (found,) = [
            o
            for o in sandbox_objects(dataclasses.replace(SPEC, egress=egress), PLACEMENT)
            if o["kind"] == "NetworkPolicy"
        ]
        spec: dict[str, Any] = found["spec"]
        return spec

    closed, open_ = policy("none"), policy("open")
    assert closed["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = closed["ingress"]
    (source,) = ingress["from"]
    assert source["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "chowder"}}
    assert ingress["ports"] == [{"protocol": "TCP", "port": 18789}]
    destinations = [rule["to"] for rule in closed["egress"]]
    assert [{"protocol": "TCP", "port": MODEL_PORT}] == closed["egress"][0]["ports"]
    assert not any("ipBlock" in peer for peers in destinations for peer in peers), "egress none: no internet"
    (internet,) = [peer["ipBlock"] for rule in open_["egress"] for peer in rule["to"] if "ipBlock" in peer]
    assert internet == {"cidr": "0.0.0.0/0", "except": list(BLOCKED)}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(internet["except"])


def test_the_claim_holds_the_spec_a_restarted_control_plane_reads_back() -> None:
    spec = dataclasses.replace(SPEC, read_only_paths=(Path("/opt/runtime/node-v24"),))
    (claim,) = [o for o in sandbox_objects(spec, PLACEMENT) if o["kind"] == "PersistentVolumeClaim"]
    metadata = V1ObjectMeta(**claim["metadata"])
    assert spec_of(metadata) == dataclasses.replace(spec, egress="open"), "all but the egress (the policy's)"


def test_the_service_reaches_the_app_pod_only_and_the_tools_pod_ends_on_its_own() -> None:
    (service,) = [o for o in sandbox_objects(SPEC, PLACEMENT) if o["kind"] == "Service"]
    assert service["spec"]["selector"][ROLE_LABEL] == "app"
    tools = tools_pod(SPEC, PLACEMENT)
    assert tools["metadata"]["labels"][ROLE_LABEL] == "tools" and tools["spec"]["restartPolicy"] == "Never"
    assert (
        tools["spec"]["containers"][0]["securityContext"]
        == pod(SPEC, LAUNCH, PLACEMENT)["spec"]["containers"][0]["securityContext"]
    ), "the same confinement as the app"
    assert "env" not in tools["spec"]["containers"][0], "no secret of the launch"
