"""The engine objects of one control plane's docker sandboxes: how they are named and labelled, found again, and
made (a volume holding the box, a bridge network of its own). Everything the provider must remember of a sandbox
is a label on its volume (`Facts`), so a restarted control plane needs nothing but the engine."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.types
from docker.models.containers import Container
from docker.models.volumes import Volume

from chowder.core.errors import ProviderError
from chowder.sandbox.base import Resources, SandboxSpec
from chowder.sandbox.meta import checked, free_uid, make_box
from chowder.sandbox.network import IFACE_PREFIX, routed_networks

SANDBOX_LABEL = "dev.chowder.sandbox"
SCOPE_LABEL = "dev.chowder.scope"
ROLE_LABEL = "dev.chowder.role"
_FACTS_LABEL = "dev.chowder.facts"


@dataclass(frozen=True, slots=True)
class Facts:
    """What create fixed for a sandbox, kept as a label of its volume."""

    sandbox_id: str
    uid: int
    labels: dict[str, str]
    resources: Resources
    read_only_paths: list[str]

    def to_label(self) -> str:
        resources = {"memory_mb": self.resources.memory_mb, "cpus": self.resources.cpus, "pids": self.resources.pids}
        data = {"uid": self.uid, "labels": self.labels, "resources": resources, "ro": self.read_only_paths}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def of(cls, volume: Volume) -> Facts:
        labels = volume.attrs["Labels"]
        data = json.loads(labels[_FACTS_LABEL])
        return cls(labels[SANDBOX_LABEL], data["uid"], data["labels"], Resources(**data["resources"]), data["ro"])


class SandboxObjects:
    """One scope's sandboxes on one engine. The scope (a hash of the data dir) keeps control planes sharing an
    engine apart; uids and subnets are handed out across all of them (the caller holds the host's engine lock)."""

    def __init__(self, client: docker.DockerClient, scope: str) -> None:
        self.client = client
        self.scope = scope
        self.scoped = f"{SCOPE_LABEL}={scope}"

    def name(self, sandbox_id: str) -> str:
        return f"chowder-{self.scope}-{sandbox_id}"

    def iface(self, sandbox_id: str) -> str:
        """The bridge's host name: the shared `chw` prefix (the host rules match it), 15 characters at most."""
        return f"{IFACE_PREFIX}d{hashlib.sha256(self.name(sandbox_id).encode()).hexdigest()[:11]}"

    def labels(self, sandbox_id: str, role: str | None = None) -> dict[str, str]:
        labels = {SCOPE_LABEL: self.scope, SANDBOX_LABEL: sandbox_id}
        return labels | ({ROLE_LABEL: role} if role else {})

    def find_volume(self, sandbox_id: str) -> Volume | None:
        try:
            volume: Volume = self.client.volumes.get(self.name(sandbox_id))
        except docker.errors.NotFound:
            return None
        labels = volume.attrs.get("Labels") or {}
        return volume if labels.get(SANDBOX_LABEL) == sandbox_id and labels.get(SCOPE_LABEL) == self.scope else None

    def volume(self, sandbox_id: str) -> Volume:
        volume = self.find_volume(checked(sandbox_id))
        if volume is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return volume

    def volumes(self) -> list[Volume]:
        volumes: list[Volume] = self.client.volumes.list(filters={"label": self.scoped})
        return volumes

    def main(self, sandbox_id: str) -> Container | None:
        try:
            container: Container = self.client.containers.get(self.name(sandbox_id))
        except docker.errors.NotFound:
            return None
        return container

    def mains(self) -> dict[str, Container]:
        found = self.client.containers.list(
            all=True, ignore_removed=True, filters={"label": [self.scoped, f"{ROLE_LABEL}=main"]}
        )
        return {container.labels[SANDBOX_LABEL]: container for container in found}

    def containers(self, sandbox_id: str) -> list[Container]:
        """Every container of the sandbox: its main one and any exec left by a crash."""
        labels = [self.scoped, f"{SANDBOX_LABEL}={sandbox_id}"]
        found: list[Container] = self.client.containers.list(all=True, ignore_removed=True, filters={"label": labels})
        return found

    def new_volume(self, spec: SandboxSpec, uid_base: int) -> Volume:
        """The volume and its box, owned by a uid no sandbox on the engine has."""
        every = self.client.volumes.list(filters={"label": SANDBOX_LABEL})
        taken = {Facts.of(volume).uid for volume in every if _FACTS_LABEL in (volume.attrs.get("Labels") or {})}
        facts = Facts(
            spec.sandbox_id,
            free_uid(uid_base, taken),
            dict(spec.labels),
            spec.resources,
            [str(path) for path in spec.read_only_paths],
        )
        labels = {**self.labels(spec.sandbox_id), _FACTS_LABEL: facts.to_label()}
        volume = self.client.volumes.create(self.name(spec.sandbox_id), labels=labels)
        try:
            make_box(self.box(volume), facts.uid)
        except BaseException:
            volume.remove(force=True)
            raise
        return volume

    def ensure_network(self, sandbox_id: str, subnet: ipaddress.IPv4Network) -> None:
        """Its own bridge, on the first /29 of `subnet` that no sandbox network on the engine holds and no route of
        the host overlaps."""
        if self.client.networks.list(names=[self.name(sandbox_id)]):
            return
        taken = {
            config["Subnet"]
            for network in self.client.networks.list(filters={"label": SANDBOX_LABEL})
            for config in (network.attrs.get("IPAM") or {}).get("Config") or []
        }
        routed = routed_networks()
        free = next(
            (
                block
                for block in subnet.subnets(new_prefix=29)
                if str(block) not in taken and not any(block.overlaps(other) for other in routed)
            ),
            None,
        )
        if free is None:
            raise ProviderError(f"The docker sandbox subnet {subnet} is full.")
        pool = docker.types.IPAMPool(subnet=str(free), gateway=str(free.network_address + 1))
        self.client.networks.create(
            self.name(sandbox_id),
            driver="bridge",
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            options={"com.docker.network.bridge.name": self.iface(sandbox_id)},
            labels=self.labels(sandbox_id),
        )

    def remove_network(self, sandbox_id: str) -> None:
        for network in self.client.networks.list(names=[self.name(sandbox_id)]):
            try:
                network.remove()
            except docker.errors.NotFound:
                pass

    def box(self, volume: Volume) -> Path:
        box = Path(volume.attrs["Mountpoint"])
        if not box.is_dir():
            raise ProviderError(
                f"The volume {volume.name} is not on this host ({box}): the docker provider needs the engine to run "
                "on the control plane's host."
            )
        return box
