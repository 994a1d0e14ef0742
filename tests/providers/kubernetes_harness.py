"""The contract suite's harness for the `kubernetes` provider, against the fake API server of `kube_cluster`
(tests/fakes/kube_api.py), whose pods are containers of the tests' real Docker engine: the provider speaks the real
Kubernetes API through the official client, with a kubeconfig as a user would give it; processes and limits are
read off the host, not asked of the provider or the fake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chowder.core.settings import Settings
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.sandbox.base import Egress, LaunchSpec, Resources, SandboxInfo, SandboxProvider, SandboxSpec
from chowder.sandbox.kubernetes.objects import object_name
from chowder.sandbox.kubernetes.provider import KubernetesProvider
from tests.conftest import SHARED_RUNTIME
from tests.fakes.kube_api import FakeKubernetes
from tests.providers.docker_harness import cgroup_limits
from tests.providers.harness import REACH_JS, RESOURCES, SECRET, SERVER_JS, marked_processes, own_settings
from tests.providers.real_cluster import RealCluster

_CACHE = RuntimeCache(SHARED_RUNTIME)


@dataclass
class KubernetesHarness:
    settings: Settings
    provider: KubernetesProvider
    cluster: FakeKubernetes | RealCluster
    name: str = "kubernetes"
    # The fake enforces no NetworkPolicy (no network plugin): the policies' content is checked in unit tests; a
    # real cluster's enforcement is its network plugin's.
    network_isolated: bool = False
    # Kubernetes limits a pod's memory and CPU; processes only per node (`podPidsLimit`).
    unenforced: frozenset[str] = frozenset({"pids"})

    @classmethod
    def on(cls, data_dir: Path, cluster: FakeKubernetes | RealCluster) -> KubernetesHarness:
        """Needs KUBECONFIG naming `cluster` (the fixture sets it)."""
        update = {
            "sandbox_provider": "kubernetes",
            "runtime_dir": SHARED_RUNTIME,
            "kubernetes_namespace": cluster.namespace,
        }
        settings = own_settings(data_dir).model_copy(update=update)
        return cls(settings, KubernetesProvider(settings), cluster)

    def spec(self, sandbox_id: str, egress: Egress = "open") -> SandboxSpec:
        return SandboxSpec(
            sandbox_id=sandbox_id,
            labels={"instance_id": f"inst-{sandbox_id}"},
            resources=RESOURCES,
            read_only_paths=(_CACHE.node_dir,),
            egress=egress,
        )

    def serve(self, info: SandboxInfo, script: str = SERVER_JS) -> LaunchSpec:
        env = {"HOME": info.home, "PORT": str(info.app_port), "HOST": "0.0.0.0", "SECRET": SECRET}
        return LaunchSpec(argv=(self._node(info), "-e", script, self._marker(info)), env=env)

    def reach(self, info: SandboxInfo, url: str) -> list[str]:
        return [self._node(info), "-e", REACH_JS, url]

    def restarted(self) -> SandboxProvider:
        return KubernetesProvider(self.settings)

    def running_processes(self, info: SandboxInfo) -> list[int]:
        if isinstance(self.cluster, RealCluster):
            return self.cluster.app_pods(info.sandbox_id)
        return marked_processes(self._marker(info))

    def applied_limits(self, sandbox_id: str) -> Resources | None:
        """From the cgroup of the container the fake's kubelet runs the pod in, as the kernel enforces them."""
        container = self.cluster.container_of(object_name(sandbox_id))
        if container is None:
            assert isinstance(self.cluster, RealCluster), f"no container runs the pod of {sandbox_id}"
            return None
        container.reload()
        return cgroup_limits(container.attrs["State"]["Pid"])

    def _node(self, info: SandboxInfo) -> str:
        return info.inside(_CACHE.node)

    def _marker(self, info: SandboxInfo) -> str:
        return f"chowder-test:{self.settings.data_dir}:{info.sandbox_id}"
