"""The manifests that run the control plane on Kubernetes (`chowder deploy kubernetes`).

API replicas (`serve --no-engine`) behind a Service, with `/healthz` probes and a second port for the model
endpoint the sandboxes call; lifecycle workers (`worker`) beside them; one ServiceAccount with a Role granting
exactly what the `kubernetes` sandbox provider does with the API (`PROVIDER_RULES`) in the sandbox namespace;
secrets (the encryption key, the database URL) referenced from a Secret the operator creates, never printed;
disruption budgets so a node drain never takes every replica at once. Every container runs as non-root with a
read-only root filesystem, no privilege escalation, no capabilities and the runtime's default seccomp profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chowder.core.kubernetes import APP, MODEL_SERVICE, container_security, pod_security

API_PORT = 8000
MODEL_PORT = 8001
SECRET_NAME = "chowder"
# The Secret's keys, and the settings they feed.
SECRET_KEYS = {"CHOWDER_SECRET_KEY": "secret-key", "CHOWDER_DATABASE_URL": "database-url"}
DATA_DIR = "/var/lib/chowder"
# What the kubernetes sandbox provider does, resource by resource: create, observe (get, list, watch), stop
# (delete the pod, keep its claim), destroy, and exec/files through the pod's exec subresource.
PROVIDER_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get", "list", "delete"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["create", "get", "list", "delete", "patch"],
    },
)


@dataclass(frozen=True, slots=True)
class Deployment:
    namespace: str
    image: str
    replicas: int = 2
    workers: int = 1
    # Where instances' pods go; the control plane's own namespace when not given.
    sandbox_namespace: str | None = None

    @property
    def sandboxes_in(self) -> str:
        return self.sandbox_namespace or self.namespace


def manifests(deployment: Deployment) -> list[dict[str, Any]]:
    """Every object, in the order `kubectl apply` can create them."""
    namespaces = dict.fromkeys([deployment.namespace, deployment.sandboxes_in])
    return [
        *(_namespace(name) for name in namespaces),
        _object("v1", "ServiceAccount", APP, deployment.namespace),
        {
            **_object("rbac.authorization.k8s.io/v1", "Role", APP, deployment.sandboxes_in),
            "rules": list(PROVIDER_RULES),
        },
        {
            **_object("rbac.authorization.k8s.io/v1", "RoleBinding", APP, deployment.sandboxes_in),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": APP},
            "subjects": [{"kind": "ServiceAccount", "name": APP, "namespace": deployment.namespace}],
        },
        _deployment(deployment, "api", deployment.replicas, _api_container(deployment)),
        _deployment(deployment, "worker", deployment.workers, _worker_container(deployment)),
        _service(deployment.namespace, APP, "api", API_PORT),
        _service(deployment.namespace, MODEL_SERVICE, "model", MODEL_PORT),
        _disruption_budget(deployment.namespace, "api"),
        _disruption_budget(deployment.namespace, "worker"),
    ]


def _object(api_version: str, kind: str, name: str, namespace: str, component: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": APP, **({"app.kubernetes.io/component": component} if component else {})}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def _deployment(deployment: Deployment, component: str, replicas: int, container: dict[str, Any]) -> dict[str, Any]:
    return {
        **_object("apps/v1", "Deployment", f"{APP}-{component}", deployment.namespace, component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(component)},
            "template": {
                "metadata": {"labels": _selector(component)},
                "spec": {
                    "serviceAccountName": APP,
                    "automountServiceAccountToken": True,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _container(deployment: Deployment, name: str, args: list[str]) -> dict[str, Any]:
    env = [
        {"name": "CHOWDER_DATA_DIR", "value": DATA_DIR},
        {"name": "CHOWDER_SANDBOX_PROVIDER", "value": "kubernetes"},
        {"name": "CHOWDER_KUBERNETES_NAMESPACE", "value": deployment.sandboxes_in},
        {"name": "CHOWDER_KUBERNETES_CONTROL_PLANE_NAMESPACE", "value": deployment.namespace},
        *(
            {"name": setting, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key}}}
            for setting, key in SECRET_KEYS.items()
        ),
    ]
    return {
        "name": name,
        "image": deployment.image,
        "command": ["chowder"],
        "args": args,
        "env": env,
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _api_container(deployment: Deployment) -> dict[str, Any]:
    serve = ["serve", "--no-engine", "--host", "0.0.0.0", "--port", str(API_PORT)]
    probe = {"httpGet": {"path": "/healthz", "port": "api"}, "periodSeconds": 10, "timeoutSeconds": 2}
    return {
        **_container(deployment, "api", serve),
        "ports": [
            {"name": "api", "containerPort": API_PORT, "protocol": "TCP"},
            {"name": "model", "containerPort": MODEL_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {**probe, "failureThreshold": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 3},
    }


def _worker_container(deployment: Deployment) -> dict[str, Any]:
    return _container(deployment, "worker", ["worker"])


def _service(namespace: str, name: str, port_name: str, port: int) -> dict[str, Any]:
    """A ClusterIP Service for one of the API pods' ports: `api` for clients (behind the operator's ingress),
    `model` for the sandboxes' model calls."""
    return {
        **_object("v1", "Service", name, namespace, "api"),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector("api"),
            "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }


def _disruption_budget(namespace: str, component: str) -> dict[str, Any]:
    return {
        **_object("policy/v1", "PodDisruptionBudget", f"{APP}-{component}", namespace, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(component)}},
    }
