"""What the control plane's own manifests and its sandboxes' agree on: the hardened profile every pod Chowder makes
runs under (a fixed non-root uid, the runtime's default seccomp profile, no privilege escalation, a read-only root
filesystem and no capabilities; fresh dicts each time, callers add to them), and the control plane's names."""

from __future__ import annotations

from typing import Any

RUN_AS = 10001
# The control plane as `chowder deploy kubernetes` names it: its pods' label, and the Service of the model endpoint
# its sandboxes call (in the control plane's namespace).
APP = "chowder"
CONTROL_PLANE_LABELS = {"app.kubernetes.io/name": APP}
MODEL_SERVICE = f"{APP}-model"


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
