"""The Kubernetes objects of one sandbox, as the `kubernetes` provider creates them: a PersistentVolumeClaim for
its state (kept across stop/start, removed on destroy), a Pod running its one process (deleted on stop, made
again on start), a ClusterIP Service the control plane reaches its app port through, and a NetworkPolicy that
admits only the control plane and lets it out only to the control plane's model endpoint, DNS, and (egress
`open`) the public internet outside `BLOCKED`: never to another sandbox, which lives on a private address.

The pod holds nothing of the cluster: no service account token, no service links, non-root, read-only root
filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault, an optional RuntimeClass
(gVisor, Kata). Labels find a sandbox again after a restart; what the spec labels it with rides in annotations
(their values need not be label-shaped). Kubernetes has no per-pod process limit (a node's `podPidsLimit`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chowder.core.kubernetes import container_security, pod_security
from chowder.sandbox.base import BLOCKED, LaunchSpec, SandboxSpec

MANAGED_BY = "chowder"
SANDBOX_LABEL = "chowder.dev/sandbox"
ANNOTATION_PREFIX = "chowder.dev/"
STATE_DIR = "/sandbox"
_NAME_PREFIX = "chowder-sb-"


@dataclass(frozen=True, slots=True)
class KubernetesPlacement:
    """Where and how a cluster runs sandboxes (from settings)."""

    namespace: str
    image: str
    app_port: int
    # The control plane's pods (admitted in, and the model endpoint's side of the way out).
    control_plane_namespace: str
    control_plane_labels: dict[str, str]
    model_port: int
    state_mb: int = 1024
    tmp_mb: int = 256
    runtime_class: str | None = None
    storage_class: str | None = None


def object_name(sandbox_id: str) -> str:
    """One name for all of a sandbox's objects: a DNS label (sandbox ids may hold `_`)."""
    return _NAME_PREFIX + sandbox_id.lower().replace("_", "-")


def sandbox_objects(spec: SandboxSpec, placement: KubernetesPlacement) -> list[dict[str, Any]]:
    """What `create` makes: everything but the pod."""
    return [_claim(spec, placement), _service(spec, placement), _network_policy(spec, placement)]


def pod(spec: SandboxSpec, launch: LaunchSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    """What `start` makes. `launch.env` carries secrets into the pod spec, readable only with `get pods` in the
    sandbox namespace (the control plane's Role; the pod itself has no token)."""
    memory = f"{spec.resources.memory_mb}Mi"
    cpu = f"{round(spec.resources.cpus * 1000)}m"
    container = {
        "name": "app",
        "image": placement.image,
        "command": list(launch.argv),
        "env": [{"name": name, "value": value} for name, value in sorted(launch.env.items())],
        "workingDir": STATE_DIR,
        "ports": [{"name": "app", "containerPort": placement.app_port, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "securityContext": {**container_security(), "runAsNonRoot": True},
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "state", "persistentVolumeClaim": {"claimName": object_name(spec.sandbox_id)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": f"{placement.tmp_mb}Mi"}},
        ],
    }
    if placement.runtime_class is not None:
        pod_spec["runtimeClassName"] = placement.runtime_class
    return {**_object("v1", "Pod", spec, placement), "spec": pod_spec}


def _object(api_version: str, kind: str, spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": object_name(spec.sandbox_id),
            "namespace": placement.namespace,
            "labels": _labels(spec.sandbox_id),
            "annotations": {
                f"{ANNOTATION_PREFIX}sandbox-id": spec.sandbox_id,
                **{f"{ANNOTATION_PREFIX}label-{key}": value for key, value in spec.labels.items()},
            },
        },
    }


def _labels(sandbox_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, SANDBOX_LABEL: object_name(sandbox_id)}


def _claim(spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{placement.state_mb}Mi"}},
    }
    if placement.storage_class is not None:
        claim["storageClassName"] = placement.storage_class
    return {**_object("v1", "PersistentVolumeClaim", spec, placement), "spec": claim}


def _service(spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    port = {"name": "app", "port": placement.app_port, "targetPort": "app", "protocol": "TCP"}
    service = {"type": "ClusterIP", "selector": _labels(spec.sandbox_id), "ports": [port]}
    return {**_object("v1", "Service", spec, placement), "spec": service}


def _network_policy(spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    control_plane = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": placement.control_plane_namespace}},
        "podSelector": {"matchLabels": placement.control_plane_labels},
    }
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    egress = [{"to": [control_plane], "ports": [{"protocol": "TCP", "port": placement.model_port}]}, dns]
    if spec.egress == "open":
        egress.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(BLOCKED)}}]})
    policy = {
        "podSelector": {"matchLabels": _labels(spec.sandbox_id)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [control_plane], "ports": [{"protocol": "TCP", "port": placement.app_port}]}],
        "egress": egress,
    }
    return {**_object("networking.k8s.io/v1", "NetworkPolicy", spec, placement), "spec": policy}
