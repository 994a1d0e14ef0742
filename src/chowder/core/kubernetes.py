"""The hardened profile every pod Chowder makes runs under, control plane and sandboxes alike: a fixed non-root
uid, the runtime's default seccomp profile, no privilege escalation, a read-only root filesystem and no
capabilities. Fresh dicts each time: callers add to them."""

from __future__ import annotations

from typing import Any

RUN_AS = 10001


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
