"""The `kubernetes` provider: each sandbox is a handful of objects in one namespace of a cluster, made through the
official client (the kubeconfig of KUBECONFIG or ~/.kube/config, or the pod's own service account inside a cluster).

Per sandbox, all named `chowder-sb-<id>` and labelled with it (a restarted control plane finds them again by label
and reads the spec back from the claim's annotations; nothing is kept elsewhere):
- a PersistentVolumeClaim, the box (`root/`, `home/`, `tmp/` at /sandbox, as in the other providers); it outlives
  stop/start and goes with destroy;
- a ClusterIP Service the control plane reaches the app through, and a NetworkPolicy that admits only the
  control plane and lets the sandbox out per its egress (enforced by the cluster's network plugin);
- while running, the pod: the gateway image under the hardened profile (`objects.pod`). Stop deletes it, start
  makes it anew with the launch's argv and environment;
- while stopped and only on demand, a tools pod holding the box under the same confinement, for the file
  operations and exec (the runtime writes a gateway's config before starting it). Start deletes it first.

File operations and exec run `boxtool.js` in the sandbox's pod through the exec subresource (`box_tool`): the
control plane needs no access to a node's disks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from websocket import WebSocketException

from chowder.core.errors import ProviderError
from chowder.core.images import IMAGE_RUNTIME
from chowder.core.kubernetes import CONTROL_PLANE_LABELS, MODEL_SERVICE
from chowder.core.offload import off_loop
from chowder.core.settings import Settings
from chowder.sandbox.base import Egress, LaunchSpec, SandboxInfo, SandboxSpec, SandboxState, SandboxStatus
from chowder.sandbox.kubernetes.box_tool import ToolFileOperations
from chowder.sandbox.kubernetes.objects import (
    BOX_ROOT,
    MANAGED_BY,
    ROLE_LABEL,
    STATE_DIR,
    KubernetesPlacement,
    network_policy,
    object_name,
    pod,
    sandbox_objects,
    spec_of,
    tools_pod,
    tools_pod_name,
)
from chowder.sandbox.kubernetes.pod_exec import PodCommand
from chowder.sandbox.meta import checked

T = TypeVar("T")
APP_PORT = 18789
_FAILURES = (ApiException, urllib3.exceptions.HTTPError, ConfigException, WebSocketException, OSError, ValueError)
_POLL_S = 0.2
_POD_READY_S = 120.0
_GONE_AFTER_GRACE_S = 30.0
_MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"


class KubernetesProvider(ToolFileOperations):
    """Sandboxes as pods (and their claims, Services and NetworkPolicies) of one namespace of a cluster."""

    name = "kubernetes"
    local = False
    # The Kubernetes API has no way to freeze a pod (the kubelet's cgroups are its own): sandboxes stay running.
    freezes = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime_dir = settings.resolved_runtime_dir
        self.placement = KubernetesPlacement(
            namespace=settings.kubernetes_namespace,
            image=settings.kubernetes_image,
            app_port=APP_PORT,
            control_plane_namespace=settings.kubernetes_control_plane_namespace,
            control_plane_labels=CONTROL_PLANE_LABELS,
            model_port=settings.model_port,
            state_mb=settings.sandbox_disk_mb,
            runtime_class=settings.kubernetes_runtime_class,
            storage_class=settings.kubernetes_storage_class,
        )
        self._model_url = settings.kubernetes_model_url or (
            f"http://{MODEL_SERVICE}.{settings.kubernetes_control_plane_namespace}.svc:{settings.model_port}"
        )
        self._endpoints: dict[str, str] = {}  # sandbox id -> its Service's address (fixed for the Service's life)
        self._cluster_problem: str | None = None
        try:
            self._core, self._networking, self._exec_api = _apis()
        except _FAILURES as exc:
            self._cluster_problem = f"no Kubernetes cluster is configured: {exc}"

    @property
    def namespace(self) -> str:
        return self.placement.namespace

    def isolation_report(self) -> dict[str, str]:
        if self._cluster_problem is not None:
            return {"cluster": f"NOT available: {self._cluster_problem}"}
        runtime = self.placement.runtime_class or "the cluster's default"
        return {
            "cluster": f"{self._core.api_client.configuration.host}, namespace {self.namespace}, image "
            f"{self.placement.image}",
            "pod": f"in force: runtime class {runtime}; uid 10001, non-root, read-only root, no privilege escalation, "
            "no capabilities, seccomp RuntimeDefault, no service account token, memory/CPU limits",
            "network": "a NetworkPolicy per sandbox: only the control plane in; out to the model endpoint, DNS and "
            "(egress open) public addresses; in force where the cluster's network plugin enforces NetworkPolicy",
            "disk quota": f"a claim of {self.placement.state_mb} MiB (as the storage class enforces it)",
            "process limit": "NOT per pod: the nodes' podPidsLimit",
        }

    def refusal(self) -> str | None:
        if self._cluster_problem is not None:
            return f"sandboxes cannot be made here: {self._cluster_problem}"
        return None

    def sandbox_facing_address(self) -> tuple[str, int]:
        """The pod's every address: in a cluster, the sandboxes' NetworkPolicy (not the bind) keeps others out."""
        return "0.0.0.0", self._settings.model_port

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        return await _off_loop(self._create, spec)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        return await _off_loop(lambda: self._info(self._spec(sandbox_id)))

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await _off_loop(self._start, sandbox_id, launch)

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await _off_loop(self._stop, sandbox_id, grace_s)

    async def destroy(self, sandbox_id: str) -> None:
        await _off_loop(self._destroy, sandbox_id)

    async def freeze(self, sandbox_id: str) -> None:
        raise ProviderError(
            "The kubernetes provider cannot freeze a sandbox; the Kubernetes API has no way to freeze a pod "
            "(stop it instead)."
        )

    async def thaw(self, sandbox_id: str) -> None:
        """Nothing is ever frozen here."""

    async def page_out(self, sandbox_id: str) -> None:
        raise ProviderError(
            "The kubernetes provider cannot page a sandbox out; the Kubernetes API has no way to reclaim a pod's "
            "memory (its gateway is stopped when it sleeps)."
        )

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        return await _off_loop(self._observe, sandbox_id)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return await _off_loop(self._list)

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None:
        """In force as soon as the network plugin applies the policy, running or not."""
        await _off_loop(self._set_egress, sandbox_id, egress)

    async def _offload(self, function: Callable[[], T]) -> T:
        return await _off_loop(function)

    # Lifecycle

    def _create(self, spec: SandboxSpec) -> SandboxInfo:
        """Idempotent: what exists is kept, but the NetworkPolicy is made again (the egress may have changed)."""
        self._refuse_if_weaker(checked(spec.sandbox_id))
        for path in spec.read_only_paths:
            if not path.is_relative_to(self._runtime_dir):
                raise ProviderError(
                    f"Sandbox {spec.sandbox_id}: {path} is not in the gateway image (pods reach no host path)."
                )
        for manifest in sandbox_objects(spec, self.placement):
            if not self._make(manifest) and manifest["kind"] == "NetworkPolicy":
                self._apply_policy(spec)
        return self._info(spec)

    def _make(self, manifest: dict[str, Any]) -> bool:
        """False when it exists already (made by an earlier, interrupted create, or a running sandbox's)."""
        make: dict[str, Callable[..., Any]] = {
            "PersistentVolumeClaim": self._core.create_namespaced_persistent_volume_claim,
            "Service": self._core.create_namespaced_service,
            "NetworkPolicy": self._networking.create_namespaced_network_policy,
            "Pod": self._core.create_namespaced_pod,
        }
        try:
            make[manifest["kind"]](self.namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return False
        return True

    def _apply_policy(self, spec: SandboxSpec) -> None:
        """A JSON merge patch: the rules replaced whole, with no moment without a policy."""
        policy = network_policy(spec, self.placement)
        self._networking.patch_namespaced_network_policy(
            policy["metadata"]["name"], self.namespace, policy, _content_type="application/merge-patch+json"
        )

    def _set_egress(self, sandbox_id: str, egress: Egress) -> None:
        spec = self._spec(sandbox_id)
        self._apply_policy(SandboxSpec(spec.sandbox_id, spec.labels, spec.resources, spec.read_only_paths, egress))

    def _info(self, spec: SandboxSpec) -> SandboxInfo:
        return SandboxInfo(
            spec.sandbox_id,
            root=BOX_ROOT,
            home=f"{STATE_DIR}/home",
            app_port=APP_PORT,
            listen="all",
            model_endpoint_url=self._model_url,
            read_only_paths={
                path: str(IMAGE_RUNTIME / path.relative_to(self._runtime_dir)) for path in spec.read_only_paths
            },
        )

    def _spec(self, sandbox_id: str) -> SandboxSpec:
        """From the claim; ProviderError when the sandbox does not exist."""
        claim = self._read(self._core.read_namespaced_persistent_volume_claim, object_name(checked(sandbox_id)))
        if claim is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return spec_of(claim.metadata)

    def _refuse_if_weaker(self, sandbox_id: str) -> None:
        if refusal := self.refusal():
            raise ProviderError(f"Sandbox {sandbox_id} refused: {refusal}. Fix that and start the instance again.")

    def _start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        self._refuse_if_weaker(sandbox_id)
        spec = self._spec(sandbox_id)
        name = object_name(sandbox_id)
        current = self._read(self._core.read_namespaced_pod, name)
        if current is not None and _live(current):
            return
        self._delete_pod(tools_pod_name(sandbox_id), grace_s=0)
        if current is not None:
            self._delete_pod(name, grace_s=0)
        self._make(pod(spec, launch, self.placement))

    def _stop(self, sandbox_id: str, grace_s: float) -> None:
        self._delete_pod(object_name(checked(sandbox_id)), grace_s)

    def _destroy(self, sandbox_id: str) -> None:
        name = object_name(checked(sandbox_id))
        for pod_name in (name, tools_pod_name(sandbox_id)):
            self._delete_pod(pod_name, grace_s=0)
        for delete in (
            self._core.delete_namespaced_service,
            self._networking.delete_namespaced_network_policy,
            self._core.delete_namespaced_persistent_volume_claim,
        ):
            _delete_if_present(delete, name, self.namespace)
        self._endpoints.pop(sandbox_id, None)
        # A claim goes once no pod uses it (its protection finalizer): gone before this returns, so a create of the
        # same id never finds the old one.
        read_claim = self._core.read_namespaced_persistent_volume_claim
        self._wait(lambda: self._read(read_claim, name) is None, _GONE_AFTER_GRACE_S, f"claim {name} to go")

    def _delete_pod(self, name: str, grace_s: float) -> None:
        """Deleted, and gone before this returns (its claim may be taken by the next pod)."""
        grace = math.ceil(grace_s)
        _delete_if_present(self._core.delete_namespaced_pod, name, self.namespace, grace_period_seconds=grace)
        self._wait(
            lambda: self._read(self._core.read_namespaced_pod, name) is None,
            grace + _GONE_AFTER_GRACE_S,
            f"pod {name} to go",
        )

    def _observe(self, sandbox_id: str) -> SandboxStatus:
        name = object_name(checked(sandbox_id))
        claim = self._read(self._core.read_namespaced_persistent_volume_claim, name)
        if claim is None or _deleted(claim):
            return SandboxStatus(SandboxState.MISSING)
        return self._status(sandbox_id, spec_of(claim.metadata), self._read(self._core.read_namespaced_pod, name))

    def _status(self, sandbox_id: str, spec: SandboxSpec, app: Any) -> SandboxStatus:
        if app is None or not _live(app):
            return SandboxStatus(SandboxState.STOPPED, labels=spec.labels)
        return SandboxStatus(SandboxState.RUNNING, endpoint=self._endpoint(sandbox_id), labels=spec.labels)

    def _endpoint(self, sandbox_id: str) -> str | None:
        if sandbox_id not in self._endpoints:
            service = self._read(self._core.read_namespaced_service, object_name(sandbox_id))
            if service is None or not service.spec.cluster_ip:
                return None
            self._endpoints[sandbox_id] = f"http://{service.spec.cluster_ip}:{APP_PORT}"
        return self._endpoints[sandbox_id]

    def _list(self) -> dict[str, SandboxStatus]:
        claims = self._core.list_namespaced_persistent_volume_claim(self.namespace, label_selector=_MANAGED).items
        apps = self._core.list_namespaced_pod(self.namespace, label_selector=f"{_MANAGED},{ROLE_LABEL}=app").items
        by_name = {app.metadata.name: app for app in apps if app.metadata}
        found = {}
        for claim in (claim for claim in claims if not _deleted(claim)):
            spec = spec_of(claim.metadata)
            found[spec.sandbox_id] = self._status(spec.sandbox_id, spec, by_name.get(object_name(spec.sandbox_id)))
        return found

    # Where the tools run

    def _pod_of(self, sandbox_id: str) -> PodCommand:
        """The sandbox's own pod once it runs; while it is stopped, its tools pod (made on demand)."""
        name = object_name(checked(sandbox_id))
        app = self._read(self._core.read_namespaced_pod, name)
        if app is not None and _live(app):
            self._wait(
                lambda: _running(self._read(self._core.read_namespaced_pod, name)), _POD_READY_S, f"pod {name} to run"
            )
            return PodCommand(self._exec_api, self.namespace, name)
        tools = tools_pod_name(sandbox_id)
        current = self._read(self._core.read_namespaced_pod, tools)
        if current is not None and not _live(current):
            self._delete_pod(tools, grace_s=0)
            current = None
        if current is None:
            self._make(tools_pod(self._spec(sandbox_id), self.placement))
        self._wait(
            lambda: _running(self._read(self._core.read_namespaced_pod, tools)), _POD_READY_S, f"pod {tools} to run"
        )
        return PodCommand(self._exec_api, self.namespace, tools)

    # Reading the cluster

    def _read(self, read: Callable[..., Any], name: str) -> Any:
        """An object, or None when it does not exist."""
        try:
            return read(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise ProviderError(f"Timed out after {timeout_s:.0f} s waiting for {what} in {self.namespace}.")
            time.sleep(_POLL_S)


def _delete_if_present(delete: Callable[..., Any], name: str, namespace: str, **options: Any) -> None:
    try:
        delete(name, namespace, **options)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _deleted(found: Any) -> bool:
    """Being deleted (what is left of it goes on its own)."""
    return found.metadata.deletion_timestamp is not None


def _live(found: Any) -> bool:
    """Neither being deleted nor ended: running, or on its way to."""
    return not _deleted(found) and found.status.phase in (None, "Pending", "Running")


def _running(found: Any) -> bool:
    if found is None or not _live(found) or found.status.phase != "Running":
        return False
    return all(status.ready or status.state.running for status in found.status.container_statuses or [])


def _apis() -> tuple[CoreV1Api, NetworkingV1Api, CoreV1Api]:
    """The cluster's APIs: the pod's service account inside a cluster, the kubeconfig outside. Exec gets a client
    of its own (see `pod_exec`)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        make: Callable[[], ApiClient] = ApiClient
    else:
        path = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")).split(os.pathsep)[0]

        def make() -> ApiClient:
            made: ApiClient = config.new_client_from_config(config_file=path)
            return made

    regular = make()
    return client.CoreV1Api(regular), client.NetworkingV1Api(regular), client.CoreV1Api(make())


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    return await off_loop("Kubernetes sandbox", _FAILURES, function, *args)
