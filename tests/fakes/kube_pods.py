"""The node behind the fake Kubernetes API (tests/fakes/kube_api.py): a kubelet that runs each pod as a container of
a real Docker engine, `docker exec` streams for the API's exec, and a kube-proxy stand-in for ClusterIP Services.

Pods join a bridge network of the fake's own, on a /24 of 10.233.0.0/16 that no host route uses, so the host reaches
every pod at its `podIP` (the bridge's own address is the pods' `hostIP`). A PersistentVolumeClaim is a docker named
volume, mounted without docker's copy-up (as a real volume is) and made group-owned by the pod's fsGroup with mode
2775, as the kubelet does; an emptyDir is a tmpfs (mode 1777). Of a pod spec, the kubelet honours what the
`kubernetes` provider sets: one container (image, command, args, env and envFrom from Secrets, workingDir, ports),
the pod and container security contexts, cpu and memory limits, the runtime class, the restart policy and graceful
deletion. It never pulls an image, and has no probes, no cluster DNS, no `$(VAR)` expansion and no volume quota.
Everything it makes carries the fake's label, so `close` finds and removes it all."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, cast

import docker
import docker.errors
import docker.models.networks
import docker.types
from docker.models.containers import Container

LABEL = "dev.chowder.fakekube"
_POD_LABEL = f"{LABEL}.pod"
_NAMESPACE_LABEL = f"{LABEL}.namespace"
_OWNER_LABEL = f"{LABEL}.owner"
_POD_SUBNETS = ipaddress.ip_network("10.233.0.0/16")
_CLUSTER_IPS = ipaddress.ip_network("127.77.0.0/16")
_TICK_S = 0.25
_RESTART = {"Always": "always", "OnFailure": "on-failure"}  # Never: the engine's default
_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}


class Objects(Protocol):
    """What the node reads and writes of the API server's store."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def all_in(self, kind: str, namespace: str) -> list[dict[str, Any]]: ...

    def set_status(self, kind: str, namespace: str, name: str, uid: str, status: dict[str, Any]) -> None: ...

    def remove(self, kind: str, namespace: str, name: str, uid: str) -> dict[str, Any] | None: ...


class NotReady(Exception):
    """Why a pod's container cannot be made yet: its waiting reason, or (unschedulable) the PodScheduled condition's."""

    def __init__(self, reason: str, message: str, *, unschedulable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.unschedulable = unschedulable


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (`256Mi`, `500m`, `1`) as a number."""
    text = str(value)
    for suffix, factor in _QUANTITY.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _owner_of(found: Any) -> str | None:
    labels: dict[str, str] = found.attrs.get("Labels") or found.attrs.get("Config", {}).get("Labels") or {}
    return labels.get(_OWNER_LABEL)


class Kubelet:
    """Runs the pods of one fake cluster on `engine`, one worker thread per pod, and keeps their status current."""

    def __init__(self, engine: docker.DockerClient, objects: Objects, fake_id: str) -> None:
        self.engine = engine
        self.objects = objects
        self.fake_id = fake_id
        self.network = f"chowder-fakekube-{fake_id}"
        self.host_ip = ""
        self._mine = f"{LABEL}={fake_id}"
        # Every object carries its fake's id and the pid of the process that ran it: a run killed before its fake
        # closed leaves objects whose process is gone, which the next fake on the engine removes.
        self._owned = {LABEL: fake_id, _OWNER_LABEL: str(os.getpid())}
        self._closing = threading.Event()
        self._wakes: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """The pod network, on a /24 no host route covers (tried at random: another fake may hold one), once what
        fakes of runs that died left on the engine is gone."""
        for owner in {_owner_of(found) for found in self._made(LABEL)} - {None}:
            if not os.path.exists(f"/proc/{owner}"):
                self._remove(f"{_OWNER_LABEL}={owner}")
        routed = _host_routes()
        free = [net for net in _POD_SUBNETS.subnets(new_prefix=24) if not any(net.overlaps(r) for r in routed)]
        random.shuffle(free)
        failure: docker.errors.APIError | None = None
        for subnet in free[:8]:
            gateway = str(subnet.network_address + 1)
            try:
                self.engine.networks.create(
                    self.network,
                    driver="bridge",
                    ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(str(subnet), gateway=gateway)]),
                    options={"com.docker.network.bridge.name": f"chtk{self.fake_id}"},
                    labels=self._owned,
                )
            except docker.errors.APIError as error:  # the engine gave that subnet to another network meanwhile
                failure = error
                continue
            self.host_ip = gateway
            return
        raise RuntimeError(f"no free /24 in {_POD_SUBNETS} for the fake cluster's pods") from failure

    def close(self) -> None:
        """Stop every worker, then remove every container, volume and network the fake made."""
        self._closing.set()
        for wake in list(self._wakes.values()):
            wake.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._remove(self._mine)

    def _made(self, label: str) -> list[Any]:
        """Containers, then volumes, then networks with `label` (the order they can be removed in)."""
        return [
            *self.engine.containers.list(all=True, ignore_removed=True, filters={"label": label}),
            *self.engine.volumes.list(filters={"label": label}),
            *self.engine.networks.list(filters={"label": label}),
        ]

    def _remove(self, label: str) -> None:
        for found in self._made(label):
            with contextlib.suppress(docker.errors.NotFound):
                found.remove(**({} if isinstance(found, docker.models.networks.Network) else {"force": True}))

    # --- claims ----------------------------------------------------------------------------------------------------

    def volume_of(self, claim: dict[str, Any]) -> str:
        return f"chowder-fakekube-{self.fake_id}-{claim['metadata']['uid']}"

    def add_claim(self, claim: dict[str, Any]) -> None:
        self.engine.volumes.create(self.volume_of(claim), labels=self._owned)

    def release_claim(self, claim: dict[str, Any]) -> None:
        """Remove a deleted claim and its volume once no pod uses it any more (the pvc-protection finalizer)."""
        self._spawn(self._release, claim)

    def _release(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        while not self._closing.wait(_TICK_S):
            if any(meta["name"] in _claims(pod) for pod in self.objects.all_in("Pod", meta["namespace"])):
                continue
            try:
                self.engine.volumes.get(self.volume_of(claim)).remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:  # still mounted by a container on its way out
                continue
            self.objects.remove("PersistentVolumeClaim", meta["namespace"], meta["name"], meta["uid"])
            return

    # --- pods ------------------------------------------------------------------------------------------------------

    def add_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self._wakes[meta["uid"]] = threading.Event()
        self._spawn(self._run, meta["namespace"], meta["name"], meta["uid"])

    def wake(self, uid: str) -> None:
        """Look at the pod now (it is being deleted)."""
        if (wake := self._wakes.get(uid)) is not None:
            wake.set()

    def container(self, namespace: str, name: str) -> Container | None:
        labels = [self._mine, f"{_NAMESPACE_LABEL}={namespace}", f"{_POD_LABEL}={name}"]
        found: list[Container] = self.engine.containers.list(all=True, ignore_removed=True, filters={"label": labels})
        return found[0] if found else None

    def open_exec(self, namespace: str, name: str, command: list[str], streams: dict[str, bool]) -> ExecStream:
        """Start `command` in the pod's container, as its user, with its env and working dir (exec's defaults)."""
        container = self.container(namespace, name)
        if container is None:
            raise docker.errors.NotFound(f'container of pod "{name}" not found')
        exec_id = self.engine.api.exec_create(
            container.id,
            command,
            stdin=streams["stdin"],
            stdout=streams["stdout"],
            stderr=streams["stderr"],
            tty=streams["tty"],
        )["Id"]
        return ExecStream(self.engine, exec_id, streams["tty"])

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        thread = threading.Thread(target=target, args=args, name="fake-kubelet", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, namespace: str, name: str, uid: str) -> None:
        """One pod's life: make its container (again and again while it cannot be), report its status every tick,
        and once the pod is being deleted, stop the container within the grace period and remove the pod."""
        wake = self._wakes[uid]
        container: Container | None = None
        while not self._closing.is_set():
            pod = self.objects.get("Pod", namespace, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                break
            if "deletionTimestamp" in pod["metadata"]:
                if container is not None:
                    with contextlib.suppress(docker.errors.NotFound):
                        container.stop(timeout=pod["metadata"]["deletionGracePeriodSeconds"])
                        container.remove(force=True)
                self.objects.remove("Pod", namespace, name, uid)
                break
            try:
                if container is None:
                    container = self._create(pod)
                self.objects.set_status("Pod", namespace, name, uid, self._observed(pod, container))
            except NotReady as why:
                self.objects.set_status("Pod", namespace, name, uid, _not_ready(pod, why, self.host_ip))
            except docker.errors.NotFound:  # removed behind the kubelet's back: made again on the next tick
                container = None
            wake.wait(_TICK_S if container is not None else 1.0)
            wake.clear()
        self._wakes.pop(uid, None)

    def _create(self, pod: dict[str, Any]) -> Container:
        meta, spec = pod["metadata"], pod["spec"]
        box = spec["containers"][0]
        try:
            image = self.engine.images.get(box["image"])
        except docker.errors.ImageNotFound:
            message = f'image "{box["image"]}" is not on the node (the fake never pulls)'
            raise NotReady("ErrImageNeverPull", message) from None
        settings = {
            **_security(spec, box, image.attrs["Config"].get("User") or ""),
            **_limits(box),
            **self._volumes(meta["namespace"], spec, box),
        }
        if "runtimeClassName" in spec:
            settings["runtime"] = spec["runtimeClassName"]
        if (policy := spec.get("restartPolicy", "Always")) in _RESTART:
            settings["restart_policy"] = {"Name": _RESTART[policy]}
        try:
            container: Container = self.engine.containers.create(
                box["image"],
                name=f"{self.network}-{meta['name']}-{meta['uid'][:8]}",
                entrypoint=box.get("command"),
                command=box.get("args"),
                environment=self._env(meta["namespace"], box),
                working_dir=box.get("workingDir"),
                hostname=meta["name"][:63],
                network=self.network,
                labels={**self._owned, _NAMESPACE_LABEL: meta["namespace"], _POD_LABEL: meta["name"]},
                **settings,
            )
        except docker.errors.APIError as error:
            raise NotReady("CreateContainerError", str(error.explanation or error)) from None
        try:
            container.start()
        except docker.errors.APIError as error:
            container.remove(force=True)
            raise NotReady("RunContainerError", str(error.explanation or error)) from None
        return container

    def _volumes(self, namespace: str, spec: dict[str, Any], box: dict[str, Any]) -> dict[str, Any]:
        sources = {volume["name"]: volume for volume in spec.get("volumes", [])}
        fs_group = (spec.get("securityContext") or {}).get("fsGroup")
        mounts: list[docker.types.Mount] = []
        tmpfs: dict[str, str] = {}
        for mount in box.get("volumeMounts", []):
            source = sources.get(mount["name"], {})
            if "persistentVolumeClaim" in source:
                volume = self._claimed(namespace, source["persistentVolumeClaim"]["claimName"], fs_group)
                read_only = bool(mount.get("readOnly"))
                mounts.append(docker.types.Mount(mount["mountPath"], volume, read_only=read_only, no_copy=True))
            elif "emptyDir" in source:
                size = source["emptyDir"].get("sizeLimit")
                limit = f",size={int(quantity(size))}" if size else ""
                tmpfs[mount["mountPath"]] = f"rw,exec,nosuid,nodev,mode=1777{limit}"
            else:
                message = f"volume {mount['name']}: the fake mounts only claims and emptyDirs"
                raise NotReady("CreateContainerConfigError", message)
        return {"mounts": mounts, "tmpfs": tmpfs}

    def _claimed(self, namespace: str, name: str, fs_group: int | None) -> str:
        """The claim's volume, its root group-owned by fsGroup with mode 2775 (on the engine's host)."""
        claim = self.objects.get("PersistentVolumeClaim", namespace, name)
        if claim is None or "deletionTimestamp" in claim["metadata"]:
            state = "not found" if claim is None else "is being deleted"
            raise NotReady("Unschedulable", f'persistentvolumeclaim "{name}" {state}', unschedulable=True)
        volume = self.volume_of(claim)
        if fs_group is not None:
            root = self.engine.volumes.get(volume).attrs["Mountpoint"]
            try:
                os.chown(root, -1, fs_group)
                os.chmod(root, 0o2775)
            except OSError as error:
                raise NotReady(
                    "CreateContainerConfigError", f"fsGroup on {root} (the engine must be local): {error}"
                ) from None
        return volume

    def _env(self, namespace: str, box: dict[str, Any]) -> list[str]:
        env: dict[str, str] = {}
        for source in box.get("envFrom", []):
            if "secretRef" in source:
                values = self._secret(namespace, source["secretRef"])
                env.update({source.get("prefix", "") + key: value for key, value in values.items()})
        for var in box.get("env", []):
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if "valueFrom" not in var:
                env[var["name"]] = var.get("value", "")
            elif ref is None:
                raise NotReady("CreateContainerConfigError", f"env {var['name']}: the fake resolves only secretKeyRef")
            elif ref["key"] in (values := self._secret(namespace, ref)):
                env[var["name"]] = values[ref["key"]]
            elif not ref.get("optional"):
                raise NotReady("CreateContainerConfigError", f"couldn't find key {ref['key']} in Secret {ref['name']}")
        return [f"{name}={value}" for name, value in env.items()]

    def _secret(self, namespace: str, ref: dict[str, Any]) -> dict[str, str]:
        secret = self.objects.get("Secret", namespace, ref["name"])
        if secret is None:
            if ref.get("optional"):
                return {}
            raise NotReady("CreateContainerConfigError", f'secret "{ref["name"]}" not found')
        return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}

    def _observed(self, pod: dict[str, Any], container: Container) -> dict[str, Any]:
        container.reload()
        attrs, state = container.attrs, container.attrs["State"]
        policy = pod["spec"].get("restartPolicy", "Always")
        running = state["Running"] and not state["Restarting"]
        done = state["Status"] == "exited" and (policy == "Never" or (policy == "OnFailure" and not state["ExitCode"]))
        terminated = {
            "exitCode": state["ExitCode"],
            "reason": "OOMKilled" if state["OOMKilled"] else "Completed" if state["ExitCode"] == 0 else "Error",
            "startedAt": _second(state["StartedAt"]),
            "finishedAt": _second(state["FinishedAt"]),
            "containerID": f"docker://{container.id}",
        }
        last: dict[str, Any]
        if running:
            current, last, phase = {"running": {"startedAt": _second(state["StartedAt"])}}, {}, "Running"
        elif done:
            current, last, phase = {"terminated": terminated}, {}, "Failed" if state["ExitCode"] else "Succeeded"
        else:
            back_off = {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}
            current, last, phase = {"waiting": back_off}, {"terminated": terminated}, "Running"
        ip = attrs["NetworkSettings"]["Networks"].get(self.network, {}).get("IPAddress") or None
        box = pod["spec"]["containers"][0]
        status = _scheduled(pod, self.host_ip, running, phase)
        status["containerStatuses"] = [
            {
                "name": box["name"],
                "image": box["image"],
                "imageID": attrs["Image"],
                "containerID": f"docker://{container.id}",
                "ready": running,
                "started": running,
                "restartCount": attrs["RestartCount"],
                "state": current,
                "lastState": last,
            }
        ]
        if ip and phase == "Running":
            status |= {"podIP": ip, "podIPs": [{"ip": ip}]}
        return status


class ExecStream:
    """One `docker exec` over the engine's hijacked connection, driven from the event loop: a plain socket whose
    writes feed the process's stdin and whose half-close ends it, carrying docker's multiplexed stdout and stderr."""

    def __init__(self, engine: docker.DockerClient, exec_id: str, tty: bool) -> None:
        self._engine = engine
        self._exec_id = exec_id
        self._tty = tty
        self._aborted = False
        self._io: Any = cast(Any, engine.api.exec_start(exec_id, tty=tty, socket=True))  # a SocketIO, on a local engine
        self._sock: socket.socket = self._io._sock
        self._sock.setblocking(False)
        # What the HTTP client read past the upgrade's headers (the process's first output, if it was that quick).
        self._buffered: bytes = self._io._response.raw._fp.fp.peek()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(1 for stdout or 2 for stderr, bytes), in the order the process wrote them, until it has exited."""
        loop = asyncio.get_running_loop()
        pending = bytearray(self._buffered)
        while True:
            if self._tty and pending:
                yield 1, bytes(pending)
                pending.clear()
            while len(pending) >= 8 and len(pending) >= 8 + (size := struct.unpack(">I", pending[4:8])[0]):
                yield pending[0], bytes(pending[8 : 8 + size])
                del pending[: 8 + size]
            try:
                chunk = await loop.sock_recv(self._sock, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk

    async def write(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self._sock, data)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """End the output and any wait for the exit at once (the client left, or the server stops). Thread-safe."""
        self._aborted = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def exit_code(self) -> int | None:
        """Blocking until the process has exited (the engine may say so a moment after its output ends); None once
        aborted."""
        while not self._aborted:
            info = self._engine.api.exec_inspect(self._exec_id)
            if not info["Running"]:
                return int(info["ExitCode"] or 0)
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self._sock.close()
        self._io.close()


class ServiceProxy:
    """A kube-proxy stand-in: a Service's clusterIP is a loopback address of 127.77.0.0/16 where each of its ports
    listens and hands every connection to a ready pod its selector matches (none: the connection is closed at once).
    Lives on the API server's event loop."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._listeners: dict[str, tuple[str, list[asyncio.Server]]] = {}  # by Service uid: (clusterIP, servers)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self, service: dict[str, Any]) -> None:
        """Give the Service a free clusterIP (set in its spec) and listen on its ports."""
        self._loop = asyncio.get_running_loop()
        taken = {address for address, _ in self._listeners.values()}
        for _ in range(32):
            address = str(_CLUSTER_IPS[random.randrange(1, _CLUSTER_IPS.num_addresses - 1)])
            if address in taken:
                continue
            servers: list[asyncio.Server] = []
            try:
                for port in service["spec"].get("ports", []):
                    forward = functools.partial(self._forward, service, port)
                    servers.append(await asyncio.start_server(forward, address, port["port"]))
            except OSError:  # another fake (another test run) holds that address and port
                for server in servers:
                    server.close()
                continue
            self._listeners[service["metadata"]["uid"]] = (address, servers)
            service["spec"] |= {"clusterIP": address, "clusterIPs": [address], "ipFamilies": ["IPv4"]}
            return
        raise RuntimeError("no free clusterIP")

    def close(self, uid: str) -> None:
        for server in self._listeners.pop(uid, ("", []))[1]:
            server.close()

    def close_all(self) -> None:
        """From any thread."""
        if self._loop is not None and not self._loop.is_closed():
            done = asyncio.run_coroutine_threadsafe(self._close_all(), self._loop)
            with contextlib.suppress(TimeoutError, RuntimeError):
                done.result(timeout=5)

    async def _close_all(self) -> None:
        for uid in list(self._listeners):
            self.close(uid)

    async def _forward(
        self, service: dict[str, Any], port: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        target = self._target(service, port)
        try:
            if target is None:
                raise ConnectionRefusedError
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout=5)
        except (OSError, TimeoutError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        writer.close()
        up_writer.close()

    def _target(self, service: dict[str, Any], port: dict[str, Any]) -> tuple[str, int] | None:
        selector = service["spec"].get("selector") or {}
        pods = [
            pod
            for pod in self.objects.all_in("Pod", service["metadata"]["namespace"])
            if selector and selector.items() <= (pod["metadata"].get("labels") or {}).items() and _serving(pod)
        ]
        if not pods:
            return None
        pod = random.choice(pods)
        target = port.get("targetPort", port["port"])
        if isinstance(target, str) and not target.isdigit():
            named = {p.get("name"): p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
            if target not in named:
                return None
            target = named[target]
        return pod["status"]["podIP"], int(target)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on (a half-close); a reset ends both ways."""
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


def _serving(pod: dict[str, Any]) -> bool:
    """Ready and not terminating: what an endpoint slice would list."""
    status = pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
    return ready and "podIP" in status and "deletionTimestamp" not in pod["metadata"]


def _claims(pod: dict[str, Any]) -> set[str]:
    volumes = pod["spec"].get("volumes", [])
    return {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}


def _security(spec: dict[str, Any], box: dict[str, Any], image_user: str) -> dict[str, Any]:
    """The engine's settings for the pod's and the container's security contexts (the container's win)."""
    pod, own = spec.get("securityContext") or {}, box.get("securityContext") or {}
    both = pod | own
    settings: dict[str, Any] = {}
    uid, gid = both.get("runAsUser"), both.get("runAsGroup")
    if uid is not None or gid is not None:
        user = str(uid) if uid is not None else image_user.split(":")[0] or "0"
        settings["user"] = user if gid is None else f"{user}:{gid}"
    if both.get("runAsNonRoot") and (settings.get("user") or image_user or "0").split(":")[0] in ("0", "root"):
        raise NotReady("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")
    groups = [group for group in [pod.get("fsGroup"), *pod.get("supplementalGroups", [])] if group is not None]
    capabilities = own.get("capabilities") or {}
    options = ["no-new-privileges"] if own.get("allowPrivilegeEscalation") is False else []
    if (both.get("seccompProfile") or {}).get("type") == "Unconfined":  # RuntimeDefault is the engine's default
        options.append("seccomp=unconfined")
    wanted = {
        "group_add": [str(group) for group in groups],
        "read_only": bool(own.get("readOnlyRootFilesystem")),
        "privileged": bool(own.get("privileged")),
        "cap_drop": capabilities.get("drop"),
        "cap_add": capabilities.get("add"),
        "security_opt": options,
    }
    return settings | {key: value for key, value in wanted.items() if value}


def _limits(box: dict[str, Any]) -> dict[str, int]:
    limits = (box.get("resources") or {}).get("limits") or {}
    settings = {}
    if "memory" in limits:
        settings["mem_limit"] = int(quantity(limits["memory"]))
    if "cpu" in limits:
        settings["nano_cpus"] = int(quantity(limits["cpu"]) * 1e9)
    return settings


def _scheduled(pod: dict[str, Any], host_ip: str, ready: bool, phase: str) -> dict[str, Any]:
    """The status of a pod placed on the node, but for its container's."""
    previous = pod.get("status") or {}
    unready = {"reason": "ContainersNotReady", "message": "containers with unready status: [app]"}
    return {
        "phase": phase,
        "conditions": [
            _condition(previous, "PodScheduled", True),
            _condition(previous, "Initialized", True),
            _condition(previous, "ContainersReady", ready, **({} if ready else unready)),
            _condition(previous, "Ready", ready, **({} if ready else unready)),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": pod["metadata"]["creationTimestamp"],
    }


def _not_ready(pod: dict[str, Any], why: NotReady, host_ip: str) -> dict[str, Any]:
    previous = pod.get("status") or {}
    if why.unschedulable:
        return {
            "phase": "Pending",
            "conditions": [_condition(previous, "PodScheduled", False, why.reason, why.message)],
        }
    box = pod["spec"]["containers"][0]
    status = _scheduled(pod, host_ip, False, "Pending")
    waiting = {"waiting": {"reason": why.reason, "message": why.message}}
    status["containerStatuses"] = [
        {"name": box["name"], "image": box["image"], "imageID": "", "ready": False, "started": False}
        | {"restartCount": 0, "state": waiting, "lastState": {}}
    ]
    return status


def _condition(
    previous: dict[str, Any], kind: str, ok: bool, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """A pod condition, keeping its lastTransitionTime while its status stays (so a steady pod is not MODIFIED)."""
    status = "True" if ok else "False"
    before = next((c for c in previous.get("conditions", []) if c["type"] == kind), None)
    since = before["lastTransitionTime"] if before is not None and before["status"] == status else now()
    condition = {"type": kind, "status": status, "lastTransitionTime": since}
    return condition | ({"reason": reason, "message": message} if reason else {})


def _second(stamp: str) -> str:
    """Docker's nanosecond RFC 3339 time, to the second as the API writes it."""
    return stamp[:19] + "Z"


def _host_routes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The host's routes but the default one: the pod subnet must not shadow any."""
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, check=True, text=True).stdout)
    return [ipaddress.ip_network(route["dst"], strict=False) for route in routes if route["dst"] != "default"]
