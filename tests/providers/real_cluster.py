"""A real cluster for the opt-in run of the kubernetes contract suite (CHOWDER_TEST_KUBECONFIG; see the README)."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client, config

from chowder.sandbox.kubernetes.objects import ROLE_LABEL, SANDBOX_LABEL, object_name


@dataclass(frozen=True)
class RealCluster:
    """Its nodes are not visible from here: a sandbox's processes are seen as the app pods the API lists, and
    limits are not read."""

    namespace: str

    def container_of(self, pod_name: str) -> None:
        return None

    def app_pods(self, sandbox_id: str) -> list[int]:
        """One number per app pod of the sandbox that is not being deleted."""
        selector = f"{SANDBOX_LABEL}={object_name(sandbox_id)},{ROLE_LABEL}=app"
        api = client.CoreV1Api(config.new_client_from_config())
        pods = api.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [number for number, pod in enumerate(pods, 1) if pod.metadata and not pod.metadata.deletion_timestamp]
