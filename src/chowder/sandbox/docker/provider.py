"""The `docker` provider: each sandbox is a container of the Docker engine at DOCKER_HOST, on this host.

Per sandbox, all named `chowder-<scope>-<id>` and labelled with both (a restarted control plane finds them again
by label, nothing is kept elsewhere; the scope, from the data dir, keeps control planes sharing an engine apart):
- a volume mounted at `/sandbox`, the box (`root/`, `home/`, `logs/`, `tmp/`, as in the process provider); it
  outlives stop/start and goes with destroy. Its labels hold what create fixed: the sandbox's uid, labels, limits
  and read-only paths. The control plane reaches its files at the volume's mountpoint through `boxfs` (never
  following a symlink out), which is why the engine must run on this host.
- a bridge network of its own, `chwd…` on the host, under the same nftables rules as a process sandbox's veth
  (`network.HostNetwork`): the model endpoint is the one host address it reaches, egress per instance, never
  another sandbox, the host, loopback or a private range;
- while running, the main container: the gateway image (`image`), its port published on 127.0.0.1 only, its own
  uid, all capabilities dropped, no-new-privileges, read-only root filesystem, a small tmpfs /tmp, memory, CPU and
  pids limits, an init as PID 1 (signals and zombies), the configured OCI runtime. Stop removes it; start makes
  a new one with the launch's argv and environment (a new gateway token every boot). Freeze pauses it (the
  engine's cgroup freezer): a paused container is a running sandbox, and stop, destroy and exec unpause it first.
- each `exec` is a container of its own with the same confinement, joined to the main one's network when that
  runs (an OpenClaw CLI reaches its gateway), removed when done; a timeout kills it, every process it started
  included.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import docker
import docker.errors
import docker.types
import requests
from docker.models.containers import Container
from docker.models.volumes import Volume

from chowder.core.errors import ProviderError
from chowder.core.images import IMAGE_RUNTIME, TREES_LABEL
from chowder.core.offload import off_loop
from chowder.core.settings import MIB, Settings
from chowder.sandbox.base import (
    Egress,
    ExecResult,
    LaunchSpec,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)
from chowder.sandbox.box_operations import BoxFileOperations
from chowder.sandbox.boxfs import ROOT, BoxFiles
from chowder.sandbox.docker.commands import run_to_end
from chowder.sandbox.docker.objects import Facts, SandboxObjects
from chowder.sandbox.isolation import RUN_DIR, host_lock
from chowder.sandbox.meta import checked
from chowder.sandbox.network import HostNetwork, host_resolvers

T = TypeVar("T")
BOX = PurePosixPath("/sandbox")
APP_PORT = 18789
_TMPFS = "rw,nosuid,nodev,size=256m,mode=1777"
_FAILURES = (docker.errors.DockerException, requests.RequestException, OSError, ValueError)
# A main container in either state is a running sandbox: "paused" is a frozen one.
_LIVE = ("running", "paused")


class DockerProvider(BoxFileOperations):
    """Sandboxes as containers of a local Docker engine (or podman's Docker API service)."""

    name = "docker"
    local = True
    freezes = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.image = settings.docker_image
        self._runtime_dir = settings.resolved_runtime_dir
        self._subnet = ipaddress.IPv4Network(settings.docker_subnet)
        # One engine may serve several control planes (data dirs): each sees only its own sandboxes.
        self.scope = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:10]
        self._client: docker.DockerClient | None = None
        self._engine_problem: str | None = None
        try:
            self._client = docker.from_env(timeout=120)
            self._engine = self._client.version()
            self._objects = SandboxObjects(self._client, self.scope)
        except _FAILURES as exc:
            where = os.environ.get("DOCKER_HOST", "the default socket")
            self._engine_problem = f"no Docker engine answers at {where}: {exc}"
        self.network = HostNetwork(settings.sandbox_subnet, settings.model_port)

    @property
    def client(self) -> docker.DockerClient:
        return self.objects.client

    @property
    def objects(self) -> SandboxObjects:
        if self._client is None:
            raise ProviderError(f"Docker sandbox: {self._engine_problem}")
        return self._objects

    def isolation_report(self) -> dict[str, str]:
        if self._client is None:
            return {"engine": f"NOT available: {self._engine_problem}"}
        runtime = self._settings.docker_runtime or f"the engine's default ({self.client.info().get('DefaultRuntime')})"
        engine = f"Docker API {self._engine.get('ApiVersion')} ({self._engine.get('Version')})"
        report = {
            "engine": f"{engine}, image {self.image}",
            "container": f"in force: runtime {runtime}; own uid, cap-drop ALL, no-new-privileges, read-only root, "
            "init, memory/CPU/pids limits",
            "network": self.network.note,
            "disk quota": "NOT in force: a volume has no size limit on the local driver",
        }
        if refusal := self.refusal():
            report["REFUSING"] = refusal
        return report

    def refusal(self) -> str | None:
        problems = [self._engine_problem] if self._engine_problem else self._engine_problems()
        if self.network.problem is not None:
            problems.append(f"sandbox networks: {self.network.problem}")
        return f"sandboxes cannot be isolated here: {'; '.join(problems)}" if problems else None

    def _engine_problems(self) -> list[str]:
        problems = []
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            problems.append(f"the gateway image {self.image} is not in the engine (run `chowder runtime image`)")
        runtime = self._settings.docker_runtime
        if runtime is not None and runtime not in (self.client.info().get("Runtimes") or {}):
            problems.append(f"the engine has no OCI runtime {runtime!r}")
        return problems

    def sandbox_facing_address(self) -> tuple[str, int]:
        return self.network.model_address, self._settings.model_port

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        return await _off_loop(self._create, spec)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        return await _off_loop(lambda: self._info(Facts.of(self.objects.volume(sandbox_id))))

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await _off_loop(self._start, sandbox_id, launch)

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await _off_loop(self._stop, sandbox_id, grace_s)

    async def destroy(self, sandbox_id: str) -> None:
        await _off_loop(self._destroy, sandbox_id)

    async def freeze(self, sandbox_id: str) -> None:
        """`docker pause`, which returns once the engine's freezer says the container is frozen."""
        await _off_loop(self._freeze, sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        await _off_loop(self._thaw, sandbox_id)

    async def page_out(self, sandbox_id: str) -> None:
        raise ProviderError("The docker provider cannot page a sandbox out: its engine's API cannot reclaim memory.")

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        return await _off_loop(self._observe, sandbox_id)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return await _off_loop(self._list)

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None:
        """In force at once, running or not; the next create sets it again (after a host reboot, for one)."""
        await _off_loop(self._set_egress, sandbox_id, egress)

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        return await _off_loop(self._exec, sandbox_id, argv, env, timeout_s)

    async def _offload(self, function: Callable[[], T]) -> T:
        return await _off_loop(function)

    # Lifecycle

    def _set_egress(self, sandbox_id: str, egress: Egress) -> None:
        self.objects.volume(sandbox_id)
        self.network.admit(self.objects.iface(sandbox_id), egress)

    def _create(self, spec: SandboxSpec) -> SandboxInfo:
        """Idempotent; a second create sets the egress policy again (it may have changed between boots)."""
        sandbox_id = checked(spec.sandbox_id)
        self._refuse_if_weaker(sandbox_id)
        self._check_image_holds(spec.read_only_paths)
        with host_lock("docker"):
            volume = self.objects.find_volume(sandbox_id)
            if volume is None:
                volume = self.objects.new_volume(spec, self._settings.sandbox_uid_base)
            self.objects.ensure_network(sandbox_id, self._subnet)
        self.network.admit(self.objects.iface(sandbox_id), spec.egress)
        return self._info(Facts.of(volume))

    def _check_image_holds(self, paths: tuple[Path, ...]) -> None:
        labels = self.client.images.get(self.image).labels or {}
        held = set(labels.get(TREES_LABEL, "").split(","))
        for path in paths:
            if self._in_image(path) and path.relative_to(self._runtime_dir).parts[0] not in held:
                raise ProviderError(
                    f"The image {self.image} does not hold {path.relative_to(self._runtime_dir).parts[0]}: "
                    "build it again with `chowder runtime image`."
                )

    def _info(self, facts: Facts) -> SandboxInfo:
        host, port = self.sandbox_facing_address()
        return SandboxInfo(
            facts.sandbox_id,
            root=str(BOX / ROOT),
            home=str(BOX / "home"),
            app_port=APP_PORT,
            listen="all",
            model_endpoint_url=f"http://{host}:{port}",
            read_only_paths={Path(path): self._inside(Path(path)) for path in facts.read_only_paths},
        )

    def _inside(self, path: Path) -> str:
        """The runtime cache is in the image, at its own layout; any other read-only path is bound at itself."""
        if self._in_image(path):
            return str(IMAGE_RUNTIME / path.relative_to(self._runtime_dir))
        return str(path)

    def _in_image(self, path: Path) -> bool:
        return path.is_relative_to(self._runtime_dir)

    def _refuse_if_weaker(self, sandbox_id: str) -> None:
        if refusal := self.refusal():
            raise ProviderError(f"Sandbox {sandbox_id} refused: {refusal}. Fix that and start the instance again.")

    def _start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        self._refuse_if_weaker(sandbox_id)
        volume = self.objects.volume(sandbox_id)
        facts = Facts.of(volume)
        main = self.objects.main(sandbox_id)
        if main is not None and main.status in _LIVE:
            return
        if main is not None:
            main.remove(force=True)
        os.close(BoxFiles(self.objects.box(volume), facts.uid, BOX).open_log(launch.log_file))
        log_file = str(BOX / ROOT / launch.log_file)
        # Published on host loopback only, at a port the engine picks.
        published: dict[str, Any] = {"ports": {f"{APP_PORT}/tcp": ("127.0.0.1", None)}}
        self.client.containers.run(
            self.image,
            ["/bin/sh", "-c", 'exec "$@" >>"$0" 2>&1', log_file, *launch.argv],
            detach=True,
            name=self.objects.name(sandbox_id),
            labels=self.objects.labels(sandbox_id, role="main"),
            environment=launch.env,
            network=self.objects.name(sandbox_id),
            hostname="sandbox",
            **published,
            **self._confinement(sandbox_id, facts),
        )

    def _confinement(self, sandbox_id: str, facts: Facts) -> dict[str, Any]:
        """What every container of a sandbox runs under, its main one and its exec ones alike."""
        binds = {
            self.objects.name(sandbox_id): {"bind": str(BOX), "mode": "rw"},
            str(_resolv_conf()): {"bind": "/etc/resolv.conf", "mode": "ro"},
        }
        for path in facts.read_only_paths:
            if not self._in_image(Path(path)):
                binds[path] = {"bind": path, "mode": "ro"}
        memory = facts.resources.memory_mb * MIB
        return {
            "user": f"{facts.uid}:{facts.uid}",
            "working_dir": str(BOX / ROOT),
            "volumes": binds,
            "read_only": True,
            "tmpfs": {"/tmp": _TMPFS},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": memory,
            "memswap_limit": memory,
            "nano_cpus": int(facts.resources.cpus * 1e9),
            "pids_limit": facts.resources.pids,
            "init": True,
            "runtime": self._settings.docker_runtime,
        }

    def _stop(self, sandbox_id: str, grace_s: float) -> None:
        main = self._thawed(sandbox_id)
        if main is None:
            return
        with contextlib.suppress(docker.errors.NotFound):
            if main.status == "running":
                main.stop(timeout=math.ceil(grace_s))
            main.remove(force=True)

    def _freeze(self, sandbox_id: str) -> None:
        self.objects.volume(checked(sandbox_id))
        main = self.objects.main(sandbox_id)
        if main is None or main.status not in _LIVE:
            raise ProviderError(f"Sandbox {sandbox_id} is not running: only a running sandbox can be frozen.")
        if main.status == "running":
            main.pause()

    def _thaw(self, sandbox_id: str) -> None:
        """Looked at first: engines differ in how they refuse to unpause what is not paused (409, 500)."""
        main = self.objects.main(checked(sandbox_id))
        if main is not None and main.status == "paused":
            with contextlib.suppress(docker.errors.NotFound):
                main.unpause()

    def _thawed(self, sandbox_id: str) -> Container | None:
        """The main container, unpaused first (a paused one gets no signal; some engines refuse to stop it)."""
        self._thaw(sandbox_id)
        return self.objects.main(sandbox_id)

    def _destroy(self, sandbox_id: str) -> None:
        self._thawed(sandbox_id)
        for container in self.objects.containers(sandbox_id):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        self.network.release(self.objects.iface(sandbox_id))
        self.objects.remove_network(sandbox_id)
        volume = self.objects.find_volume(sandbox_id)
        if volume is not None:
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)

    def _observe(self, sandbox_id: str) -> SandboxStatus:
        volume = self.objects.find_volume(checked(sandbox_id))
        if volume is None:
            return SandboxStatus(SandboxState.MISSING)
        return self._status(volume, self.objects.main(sandbox_id))

    def _status(self, volume: Volume, main: Container | None) -> SandboxStatus:
        labels = dict(Facts.of(volume).labels)
        if main is None or main.status not in _LIVE:
            return SandboxStatus(SandboxState.STOPPED, labels=labels)
        published = (main.attrs["NetworkSettings"]["Ports"] or {}).get(f"{APP_PORT}/tcp") or []
        endpoint = f"http://127.0.0.1:{published[0]['HostPort']}" if published else None
        return SandboxStatus(SandboxState.RUNNING, endpoint=endpoint, labels=labels)

    def _list(self) -> dict[str, SandboxStatus]:
        mains = self.objects.mains()
        found = {}
        for volume in self.objects.volumes():
            facts = Facts.of(volume)
            found[facts.sandbox_id] = self._status(volume, mains.get(facts.sandbox_id))
        return found

    # Exec

    def _exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        self._refuse_if_weaker(sandbox_id)
        facts = Facts.of(self.objects.volume(sandbox_id))
        main = self._thawed(sandbox_id)
        # A running sandbox's network namespace (its gateway on localhost), else its own network.
        network: dict[str, Any] = (
            {"network_mode": f"container:{main.id}"}
            if main and main.status == "running"
            else {"network": self.objects.name(sandbox_id)}
        )
        container = self.client.containers.create(
            self.image,
            argv,
            labels=self.objects.labels(sandbox_id, role="exec"),
            environment=env,
            **network,
            **self._confinement(sandbox_id, facts),
        )
        try:
            return run_to_end(container, timeout_s)
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)

    # Engine objects

    def _box_files(self, sandbox_id: str) -> BoxFiles:
        volume = self.objects.volume(sandbox_id)
        return BoxFiles(self.objects.box(volume), Facts.of(volume).uid, BOX)


def _resolv_conf() -> Path:
    """The host's usable name servers, as a process sandbox has them: the DNS destinations the host rules let an
    open sandbox reach. In place of the engine's embedded resolver (127.0.0.11), which an engine that leaves the
    firewall alone does not serve: every lookup there hung 10 s before failing, and a gateway makes some at boot."""
    servers = "".join(f"nameserver {address}\n" for address in host_resolvers())
    path = RUN_DIR / "docker-resolv.conf"
    RUN_DIR.mkdir(mode=0o711, exist_ok=True)
    if not path.is_file() or path.read_text() != servers:
        staging = path.with_suffix(f".{os.getpid()}")
        staging.write_text(servers)
        staging.chmod(0o644)
        os.replace(staging, path)
    return path


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    return await off_loop("Docker sandbox", _FAILURES, function, *args)
