"""The contract suite's harness for the `docker` provider, on the real engine of the `docker_host` fixture: the
test server runs on the image's Node; processes and limits are read off the host (/proc and the containers'
cgroups), not asked of the provider."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
from docker.models.containers import Container

from chowder.core.settings import Settings
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.sandbox.base import Egress, LaunchSpec, Resources, SandboxInfo, SandboxProvider, SandboxSpec
from chowder.sandbox.docker.objects import SANDBOX_LABEL, SCOPE_LABEL
from chowder.sandbox.docker.provider import APP_PORT, DockerProvider
from tests.conftest import SHARED_RUNTIME
from tests.providers.harness import REACH_JS, RESOURCES, SECRET, SERVER_JS, marked_processes, own_settings

_CACHE = RuntimeCache(SHARED_RUNTIME)


@dataclass
class DockerHarness:
    settings: Settings
    provider: DockerProvider
    name: str = "docker"
    network_isolated: bool = True
    unenforced: frozenset[str] = frozenset()

    @classmethod
    def on(cls, data_dir: Path) -> DockerHarness:
        # A model port of its own: a test listens there as the control plane would.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            model_port = probe.getsockname()[1]
        settings = own_settings(data_dir).model_copy(
            update={"sandbox_provider": "docker", "runtime_dir": SHARED_RUNTIME, "model_port": model_port}
        )
        return cls(settings, DockerProvider(settings))

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
        """The gateway behind a published endpoint, at its container's own address (what another sandbox would
        try: host loopback is not the sandbox's)."""
        return self.reach_url(info, f"http://{self._container_address(url)}:{APP_PORT}/")

    def reach_url(self, info: SandboxInfo, url: str) -> list[str]:
        """An argv that exits 0 when `url` answers from inside the sandbox."""
        return [self._node(info), "-e", REACH_JS, url]

    def restarted(self) -> SandboxProvider:
        return DockerProvider(self.settings)

    def running_processes(self, info: SandboxInfo) -> list[int]:
        return marked_processes(self._marker(info))

    def applied_limits(self, sandbox_id: str) -> Resources | None:
        """From the main container's cgroup (v1 or v2), as the kernel enforces them."""
        (container,) = self.containers(sandbox_id, role="main")
        return cgroup_limits(container.attrs["State"]["Pid"])

    def _node(self, info: SandboxInfo) -> str:
        return info.inside(_CACHE.node)

    def _marker(self, info: SandboxInfo) -> str:
        return f"chowder-test:{self.settings.data_dir}:{info.sandbox_id}"

    def containers(self, sandbox_id: str, role: str) -> list[Container]:
        labels = [f"{SANDBOX_LABEL}={sandbox_id}", f"dev.chowder.role={role}", self._scoped]
        return list(docker.from_env().containers.list(ignore_removed=True, filters={"label": labels}))

    def network(self, sandbox_id: str) -> dict[str, Any]:
        """The sandbox's own network, as the engine describes it."""
        (found,) = docker.from_env().networks.list(filters={"label": [f"{SANDBOX_LABEL}={sandbox_id}", self._scoped]})
        attrs: dict[str, Any] = found.attrs
        return attrs

    @property
    def _scoped(self) -> str:
        return f"{SCOPE_LABEL}={self.provider.scope}"

    def _container_address(self, url: str) -> str:
        port = str(urlsplit(url).port)
        for container in docker.from_env().containers.list(ignore_removed=True, filters={"label": [SANDBOX_LABEL]}):
            published = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{APP_PORT}/tcp") or []
            if any(binding["HostPort"] == port for binding in published):
                (network,) = container.attrs["NetworkSettings"]["Networks"].values()
                return str(network["IPAddress"])
        raise AssertionError(f"no sandbox container publishes {url}")


def cgroup_limits(pid: int) -> Resources:
    """The limits in force on a process, read from its cgroups (v1 or v2)."""
    memory = _cgroup_value(pid, "memory", ("memory.max", "memory.limit_in_bytes"))
    pids = _cgroup_value(pid, "pids", ("pids.max",))
    if (quota := _cgroup_value(pid, "cpu", ("cpu.max",))) is not None:
        cpus = int(quota.split()[0]) / int(quota.split()[1])
    else:
        cpus = int(_cgroup_value(pid, "cpu", ("cpu.cfs_quota_us",)) or 0) / int(
            _cgroup_value(pid, "cpu", ("cpu.cfs_period_us",)) or 1
        )
    return Resources(memory_mb=int(memory or 0) >> 20, cpus=cpus, pids=int(pids if pids and pids != "max" else 0))


def _cgroup_value(pid: int, controller: str, names: tuple[str, ...]) -> str | None:
    """A file of the process's cgroup for `controller` (v1: its own hierarchy; v2: the unified one)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        mount = Path("/sys/fs/cgroup") / controllers.replace("name=", "") if controllers else Path("/sys/fs/cgroup")
        if controllers and controller not in controllers.split(","):
            continue
        for base in (mount, Path("/sys/fs/cgroup") / ",".join(sorted(controllers.split(",")))):
            for name in names:
                if (base / path.lstrip("/") / name).exists():
                    return (base / path.lstrip("/") / name).read_text().strip()
    return None
