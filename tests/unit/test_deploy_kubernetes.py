"""`chowder deploy kubernetes`: what it prints is valid for a current Kubernetes (the real schemas, through
`kubernetes-validate`, strict: no field Kubernetes does not know), and runs Chowder as the architecture says."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from chowder.cli.main import app
from chowder.deploy.kubernetes import PROVIDER_RULES, SECRET_KEYS

KUBERNETES = "1.37.0"


def _printed(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["deploy", "kubernetes", *args])
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("args", [(), ("--replicas", "3", "--workers", "2", "--sandbox-namespace", "agents")])
def test_every_manifest_is_valid_for_a_current_kubernetes(args: tuple[str, ...]) -> None:
    docs = _printed(*args)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds.count("Deployment") == 2 and kinds.count("Service") == 2 and kinds.count("PodDisruptionBudget") == 2
    assert {"ServiceAccount", "Role", "RoleBinding", "Namespace"} <= set(kinds)


def test_the_schema_check_refuses_what_kubernetes_would() -> None:
    """Not a rubber stamp: a field Kubernetes does not know, or a wrong type, fails it."""
    api = _one(_printed(), "Deployment", "chowder-api")
    for broken in ({**api, "spec": {**api["spec"], "replica": 2}}, {**api, "spec": {**api["spec"], "replicas": "2"}}):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_replicas_workers_probes_and_hardening() -> None:
    docs = _printed("--replicas", "3", "--workers", "2", "--namespace", "cp", "--image", "registry.local/chowder:1")
    api = _one(docs, "Deployment", "chowder-api")
    worker = _one(docs, "Deployment", "chowder-worker")
    assert (api["spec"]["replicas"], worker["spec"]["replicas"]) == (3, 2)
    (serve,) = api["spec"]["template"]["spec"]["containers"]
    (work,) = worker["spec"]["template"]["spec"]["containers"]
    assert serve["command"] + serve["args"] == [
        "chowder",
        "serve",
        "--no-engine",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert work["command"] + work["args"] == ["chowder", "worker"]
    assert serve["image"] == work["image"] == "registry.local/chowder:1"
    for probe in (serve["readinessProbe"], serve["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "api"}
    for deployment, container in ((api, serve), (worker, work)):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    assert {doc["metadata"]["namespace"] for doc in docs if doc["kind"] != "Namespace"} == {"cp"}


def test_secrets_are_referenced_never_printed_and_rbac_is_the_providers_exactly() -> None:
    docs = _printed("--namespace", "cp", "--sandbox-namespace", "agents")
    (serve,) = _one(docs, "Deployment", "chowder-api")["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in serve["env"]}
    for setting, key in SECRET_KEYS.items():
        assert env[setting] == {"name": setting, "valueFrom": {"secretKeyRef": {"name": "chowder", "key": key}}}
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    assert env["CHOWDER_KUBERNETES_NAMESPACE"]["value"] == "agents"
    role = _one(docs, "Role", "chowder")
    assert role["metadata"]["namespace"] == "agents" and role["rules"] == list(PROVIDER_RULES)
    binding = _one(docs, "RoleBinding", "chowder")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "chowder", "namespace": "cp"}]
    verbs = {verb for rule in PROVIDER_RULES for verb in rule["verbs"]}
    assert not verbs & {"*", "update", "escalate", "bind", "impersonate"}
    assert not any("*" in rule["resources"] or "secrets" in rule["resources"] for rule in PROVIDER_RULES)


def test_bad_options_are_refused() -> None:
    for args in (["--namespace", "Not_A_Name"], ["--replicas", "0"], ["--sandbox-namespace", "x" * 64]):
        result = CliRunner().invoke(app, ["deploy", "kubernetes", *args])
        assert result.exit_code == 2, (args, result.output)
