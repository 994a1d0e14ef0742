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

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from chowder.core.kubernetes import container_security, pod_security
from chowder.sandbox.base import BLOCKED, LaunchSpec, Resources, SandboxSpec

MANAGED_BY = "chowder"
SANDBOX_LABEL = "chowder.dev/sandbox"
ANNOTATION_PREFIX = "chowder.dev/"
ROLE_LABEL = "chowder.dev/role"
STATE_DIR = "/sandbox"
BOX_ROOT = f"{STATE_DIR}/root"  # the tenant's files (the file operations' root), as in the other providers
TOOLS_IDLE_S = 900
# The box's layout (a new claim is empty), made by each pod before its process starts.
# (The working dir is the claim's root: a runtime makes a missing working dir as root, which the app then could not
# write to.)
_MAKE_BOX = f"mkdir -p {BOX_ROOT} {STATE_DIR}/home {STATE_DIR}/tmp && cd {BOX_ROOT}"
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
    return [_claim(spec, placement), _service(spec, placement), network_policy(spec, placement)]


def pod(spec: SandboxSpec, launch: LaunchSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    """What `start` makes. `launch.env` carries secrets into the pod spec, readable only with `get pods` in the
    sandbox namespace (the control plane's Role; the pod itself has no token). Its output goes to the launch's log
    file in the box, where the file operations read it back."""
    log_file = str(PurePosixPath(BOX_ROOT, launch.log_file))
    script = f'{_MAKE_BOX} && mkdir -p "$(dirname "$0")" && exec "$@" >>"$0" 2>&1'
    command = ["/bin/sh", "-c", script, log_file, *launch.argv]
    container = _container(spec, placement, command)
    container["env"] = [{"name": name, "value": value} for name, value in sorted(launch.env.items())]
    container["ports"] = [{"name": "app", "containerPort": placement.app_port, "protocol": "TCP"}]
    return _pod(object_name(spec.sandbox_id), "app", "Always", container, spec, placement)


def tools_pod(spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    """A pod holding the box of a stopped sandbox, under the same confinement, for its file operations and exec;
    it ends on its own after a while (`TOOLS_IDLE_S`), and `start` deletes it first (the claim may be ReadWriteOnce)."""
    command = ["/bin/sh", "-c", f"{_MAKE_BOX} && exec sleep {TOOLS_IDLE_S}"]
    container = _container(spec, placement, command)
    return _pod(tools_pod_name(spec.sandbox_id), "tools", "Never", container, spec, placement)


def tools_pod_name(sandbox_id: str) -> str:
    return f"{object_name(sandbox_id)}-tools"


def spec_of(claim_metadata: Any) -> SandboxSpec:
    """The spec a sandbox was created with, read back from its claim's annotations (a restarted control plane
    knows nothing else of it); all but its egress, which its NetworkPolicy holds."""
    notes: dict[str, str] = claim_metadata.annotations or {}
    memory_mb, cpus, pids = notes[f"{ANNOTATION_PREFIX}resources"].split(",")
    label_prefix = f"{ANNOTATION_PREFIX}label-"
    return SandboxSpec(
        sandbox_id=notes[f"{ANNOTATION_PREFIX}sandbox-id"],
        labels={key[len(label_prefix) :]: value for key, value in notes.items() if key.startswith(label_prefix)},
        resources=Resources(int(memory_mb), float(cpus), int(pids)),
        read_only_paths=tuple(Path(path) for path in json.loads(notes[f"{ANNOTATION_PREFIX}read-only-paths"])),
    )


def _container(spec: SandboxSpec, placement: KubernetesPlacement, command: list[str]) -> dict[str, Any]:
    memory = f"{spec.resources.memory_mb}Mi"
    cpu = f"{round(spec.resources.cpus * 1000)}m"
    return {
        "name": "app",
        "image": placement.image,
        "command": command,
        "workingDir": STATE_DIR,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "securityContext": {**container_security(), "runAsNonRoot": True},
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _pod(
    name: str, role: str, restart: str, container: dict[str, Any], spec: SandboxSpec, placement: KubernetesPlacement
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": restart,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "state", "persistentVolumeClaim": {"claimName": object_name(spec.sandbox_id)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": f"{placement.tmp_mb}Mi"}},
        ],
    }
    if placement.runtime_class is not None:
        pod_spec["runtimeClassName"] = placement.runtime_class
    manifest = {**_object("v1", "Pod", spec, placement), "spec": pod_spec}
    manifest["metadata"]["name"] = name
    manifest["metadata"]["labels"][ROLE_LABEL] = role
    return manifest


def _object(api_version: str, kind: str, spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    resources = spec.resources
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": object_name(spec.sandbox_id),
            "namespace": placement.namespace,
            "labels": _labels(spec.sandbox_id),
            "annotations": {
                f"{ANNOTATION_PREFIX}sandbox-id": spec.sandbox_id,
                f"{ANNOTATION_PREFIX}resources": f"{resources.memory_mb},{resources.cpus},{resources.pids}",
                f"{ANNOTATION_PREFIX}read-only-paths": json.dumps([str(path) for path in spec.read_only_paths]),
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
    service = {"type": "ClusterIP", "selector": {**_labels(spec.sandbox_id), ROLE_LABEL: "app"}, "ports": [port]}
    return {**_object("v1", "Service", spec, placement), "spec": service}


def network_policy(spec: SandboxSpec, placement: KubernetesPlacement) -> dict[str, Any]:
    """Made by `create`, and replaced whole when the egress changes (`set_egress`)."""
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
