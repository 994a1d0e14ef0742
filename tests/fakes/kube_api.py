"""A fake Kubernetes API server for tests: the real REST API on 127.0.0.1, enough for the official `kubernetes`
client to drive it unchanged, before a node that runs pods for real as Docker containers (tests/fakes/kube_pods.py).

It serves core/v1 pods, persistentvolumeclaims, services and secrets and networking.k8s.io/v1 networkpolicies, in the
fake's namespace and `default`: create, get, list and watch (label selectors `k=v`, `k!=v`, `k`, `!k`; field selectors
on any dotted path), and delete (graceful for pods; a claim stays until no pod uses it); a pod's status and log too.
Every request needs the bearer token. Errors are `Status` objects as the real server writes them, so the client raises
`ApiException`. Pod exec is a WebSocket (`v5.channel.k8s.io` or `v4.channel.k8s.io`). PATCH takes JSON merge
patches (a strategic one is read as such) and changes only what is stored: the node does not act on a patched pod or
Service. Not emulated: update (PUT answers 405), JSON patches, admission, defaulting and validation beyond names, RBAC
(the token may do anything), other resources and namespaces, port-forward. NetworkPolicies are stored and listed
only: there is no CNI to enforce them, so no test may count on one."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import docker
import docker.errors
import uvicorn
import yaml
from docker.models.containers import Container
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.kube_pods import ExecStream, Kubelet, ServiceProxy, now

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Matcher = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    api_version: str
    plural: str
    # DELETE answers with the object, else with a Success Status: as the real server does for each type.
    returns_object: bool

    @property
    def qualified(self) -> str:
        """The name errors give it: `pods`, `networkpolicies.networking.k8s.io`."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.plural}.{group}" if group else self.plural


RESOURCES = {
    f"{r.api_version}/{r.plural}": r
    for r in (
        Resource("Pod", "v1", "pods", True),
        Resource("PersistentVolumeClaim", "v1", "persistentvolumeclaims", True),
        Resource("Service", "v1", "services", True),
        Resource("Secret", "v1", "secrets", False),
        Resource("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", False),
    )
}
_POD = RESOURCES["v1/pods"]


class Failure(Exception):
    """An error answered as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        self.status |= {"message": message, "reason": reason, "code": code} | ({"details": details} if details else {})

    def response(self) -> JSONResponse:
        return JSONResponse(self.status, status_code=self.status["code"])


def not_found(resource: Resource, name: str) -> Failure:
    details = {"name": name, "kind": resource.plural}
    return Failure(404, "NotFound", f'{resource.qualified} "{name}" not found', details)


@dataclass(eq=False)
class _Watcher:
    kind: str
    namespace: str
    matches: Matcher
    loop: asyncio.AbstractEventLoop
    events: deque[dict[str, Any]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Store:
    """Every object by kind, namespace and name, a global resourceVersion, and the history of every change (a watch
    from a resourceVersion replays what came after it). Thread-safe: the node's threads write pod statuses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self._version = 0
        self._history: list[tuple[int, str, dict[str, Any]]] = []
        self._watchers: list[_Watcher] = []

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored copy (the caller made sure the name is free)."""
        with self._lock:
            self._objects[kind][(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj = copy.deepcopy(obj)
            self._changed("ADDED", kind, obj)
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._objects[kind].get((namespace, name)))

    def all_in(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return self.matching(kind, namespace, lambda _: True)[1]

    def matching(self, kind: str, namespace: str, matches: Matcher) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            found = [obj for (ns, _), obj in self._objects[kind].items() if ns == namespace and matches(obj)]
            return self._version, copy.deepcopy(found)

    def everything(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._objects[kind].values()))

    def set_status(self, kind: str, namespace: str, name: str, uid: str, status: dict[str, Any]) -> None:
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
            if obj is not None and obj["metadata"]["uid"] == uid and obj.get("status") != status:
                obj["status"] = copy.deepcopy(status)
                self._changed("MODIFIED", kind, obj)

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """RFC 7386 merge patch; the object's identity (name, namespace, uid, kind) stays."""
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
            if obj is None:
                return None
            patched: dict[str, Any] = _merged(obj, patch)
            keep = ("name", "namespace", "uid", "creationTimestamp")
            patched["metadata"] |= {key: obj["metadata"][key] for key in keep}
            patched |= {"kind": obj["kind"], "apiVersion": obj["apiVersion"]}
            self._objects[kind][(namespace, name)] = patched
            self._changed("MODIFIED", kind, patched)
            return copy.deepcopy(patched)

    def mark_deleted(self, kind: str, namespace: str, name: str, grace_s: int) -> dict[str, Any] | None:
        """Set the deletionTimestamp (kept if set already): the owner removes the object when done with it."""
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
            if obj is not None and "deletionTimestamp" not in obj["metadata"]:
                obj["metadata"] |= {"deletionTimestamp": now(), "deletionGracePeriodSeconds": grace_s}
                self._changed("MODIFIED", kind, obj)
            return copy.deepcopy(obj)

    def remove(self, kind: str, namespace: str, name: str, uid: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
            if obj is None or uid not in (None, obj["metadata"]["uid"]):
                return None
            del self._objects[kind][(namespace, name)]
            self._changed("DELETED", kind, obj)
            return copy.deepcopy(obj)

    def watch(self, kind: str, namespace: str, matches: Matcher, since: int | None) -> _Watcher:
        """A watcher on the running loop, holding first the objects as ADDED (no `since`) or the changes after
        `since`, then every change as it happens."""
        watcher = _Watcher(kind, namespace, matches, asyncio.get_running_loop())
        with self._lock:
            if since is None:
                objects = self._objects[kind].values()
                backlog = [{"type": "ADDED", "object": obj} for obj in objects if self._concerns(watcher, obj)]
            else:
                backlog = [e for v, k, e in self._history if v > since and self._concerns(watcher, e["object"], k)]
            watcher.events.extend(copy.deepcopy(backlog))
            self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: _Watcher) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._watchers.remove(watcher)

    def _concerns(self, watcher: _Watcher, obj: dict[str, Any], kind: str | None = None) -> bool:
        same = (kind or watcher.kind) == watcher.kind and obj["metadata"]["namespace"] == watcher.namespace
        return same and watcher.matches(obj)

    def _changed(self, kind_of_change: str, kind: str, obj: dict[str, Any]) -> None:
        """With the lock held: a new resourceVersion, into the history and to every watcher concerned."""
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        event = {"type": kind_of_change, "object": copy.deepcopy(obj)}
        self._history.append((self._version, kind, event))
        for watcher in list(self._watchers):
            if watcher.kind == kind and self._concerns(watcher, obj):
                watcher.events.append(event)
                try:
                    watcher.loop.call_soon_threadsafe(watcher.ready.set)
                except RuntimeError:  # its loop is gone (the server stopped)
                    self._watchers.remove(watcher)


class FakeKubernetes:
    """The API server on a random port, its node on `engine`; a context manager that removes all it made."""

    def __init__(self, engine: docker.DockerClient, namespace: str = "chowder-sandboxes") -> None:
        self.engine = engine
        self.namespace = namespace
        self.token = secrets.token_urlsafe(24)
        self.id = hashlib.sha256(uuid.uuid4().bytes).hexdigest()[:8]
        self.port = 0
        self.store = Store()
        self.kubelet = Kubelet(engine, self.store, self.id)
        self.proxy = ServiceProxy(self.store)
        self._namespaces = {namespace, "default"}
        self._creating = asyncio.Lock()  # from the name check until stored, across the node's part
        self._execs: set[ExecStream] = set()
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.kubelet.start()
        try:
            self._serve()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for `kubernetes.config.load_kube_config(config_file=path)`: this server, token, namespace."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": self.namespace}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """What is stored of `kind` ("Pod", "Service", ...), in every namespace."""
        return self.store.everything(kind)

    def container_of(self, pod_name: str) -> Container | None:
        """The container the kubelet made for a pod of the fake's namespace (still there while it stops)."""
        return self.kubelet.container(self.namespace, pod_name)

    def close(self) -> None:
        """Stop serving (watches end, exec streams are cut), then remove every container, volume and network."""
        self._stopping.set()
        logging.getLogger("uvicorn.error").removeFilter(_quiet_denials)
        for stream in list(self._execs):
            stream.abort()
        try:
            self.proxy.close_all()
            if self._server is not None and self._thread is not None:
                self._server.should_exit = True
                self._thread.join(timeout=5)
                if self._thread.is_alive():
                    self._server.force_exit = True
                    self._thread.join(timeout=5)
                self._server = self._thread = None
        finally:
            self.kubelet.close()

    def _serve(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            _BearerAuth(self._app(), self.token),
            log_config=None,  # never reconfigure the test process's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="websockets-sansio",
            ws_max_size=1 << 28,  # a file written through exec's stdin comes as one frame
            ws_ping_interval=None,  # an exec client reads only when it wants output: a ping timeout would cut it
            ws_per_message_deflate=False,
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        logging.getLogger("uvicorn.error").addFilter(_quiet_denials)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-kube", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Kubernetes API did not start")
            time.sleep(0.01)

    def _app(self) -> Starlette:
        namespaced = "/namespaces/{namespace}/{plural}"
        routes = [
            Route("/version", self._version),
            Route("/api", self._api_versions),
            Route("/api/v1/namespaces/{namespace}/pods/{name}/exec", _exec_not_upgraded, methods=["GET", "POST"]),
            Route("/api/{version}/namespaces/{namespace}/{plural}/{name}/status", self._item),
            Route("/api/v1/namespaces/{namespace}/pods/{name}/log", self._log),
            WebSocketRoute("/api/v1/namespaces/{namespace}/pods/{name}/exec", self._exec),
            Route("/api/{version}" + namespaced, self._collection, methods=_METHODS),
            Route("/api/{version}" + namespaced + "/{name}", self._item, methods=_METHODS),
            Route("/apis/{group}/{version}" + namespaced, self._collection, methods=_METHODS),
            Route("/apis/{group}/{version}" + namespaced + "/{name}", self._item, methods=_METHODS),
        ]
        return Starlette(routes=routes, exception_handlers={Failure: _failure, HTTPException: _http_error})

    # --- discovery -------------------------------------------------------------------------------------------------

    async def _version(self, request: Request) -> JSONResponse:
        version = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake", "gitCommit": "", "gitTreeState": ""}
        build = {"buildDate": "", "goVersion": "", "compiler": "gc", "platform": "linux/amd64"}
        return JSONResponse(version | build)

    async def _api_versions(self, request: Request) -> JSONResponse:
        address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
        return JSONResponse({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [address]})

    # --- objects ---------------------------------------------------------------------------------------------------

    async def _collection(self, request: Request) -> Response:
        resource, namespace = _resource(request), request.path_params["namespace"]
        if request.method == "POST":
            return await self._create(request, resource, namespace)
        if request.method != "GET":
            raise _not_allowed(request)
        query = request.query_params
        matches = _selector(query.get("labelSelector", ""), query.get("fieldSelector", ""))
        if query.get("watch", "").lower() in ("true", "1"):
            return self._watch(request, resource, namespace, matches)
        version, items = self.store.matching(resource.kind, namespace, matches)
        meta = {"resourceVersion": str(version)}
        return JSONResponse(
            {"kind": f"{resource.kind}List", "apiVersion": resource.api_version} | {"metadata": meta, "items": items}
        )

    async def _create(self, request: Request, resource: Resource, namespace: str) -> JSONResponse:
        try:
            obj = await request.json()
        except ValueError:
            raise Failure(400, "BadRequest", "the request body is not a JSON object") from None
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            message = "metadata.name: Required value: name or generateName is required"
            raise Failure(422, "Invalid", f'{resource.kind} "" is invalid: {message}', {"kind": resource.kind})
        if meta.setdefault("namespace", namespace) != namespace:
            message = "the namespace of the provided object does not match the namespace sent on the request"
            raise Failure(400, "BadRequest", message)
        if namespace not in self._namespaces:
            raise Failure(
                404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
            )
        obj |= {"kind": resource.kind, "apiVersion": resource.api_version}
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": now()}
        async with self._creating:
            if self.store.get(resource.kind, namespace, meta["name"]) is not None:
                raise _exists(resource, meta["name"])
            await self._prepare(resource.kind, obj)
            created = self.store.create(resource.kind, obj)
        if resource.kind == "Pod":
            self.kubelet.add_pod(created)
        return JSONResponse(created, status_code=201)

    async def _prepare(self, kind: str, obj: dict[str, Any]) -> None:
        """What the control plane fills in as it stores a new object, and the node's part for claims and services."""
        spec = obj.setdefault("spec", {}) if kind != "Secret" else {}
        if kind == "Pod":
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            obj["status"] = {"phase": "Pending"}
        elif kind == "Secret":
            strings = obj.pop("stringData", None) or {}
            encoded = {key: base64.b64encode(value.encode()).decode() for key, value in strings.items()}
            obj["data"] = (obj.get("data") or {}) | encoded
            obj.setdefault("type", "Opaque")
        elif kind == "PersistentVolumeClaim":
            spec["volumeName"] = f"pvc-{obj['metadata']['uid']}"
            size = (spec.get("resources") or {}).get("requests", {}).get("storage")
            obj["status"] = {
                "phase": "Bound",
                "accessModes": spec.get("accessModes", []),
                "capacity": {"storage": size},
            }
            await asyncio.to_thread(self.kubelet.add_claim, obj)
        elif kind == "Service":
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            await self.proxy.open(obj)
            obj["status"] = {"loadBalancer": {}}

    async def _item(self, request: Request) -> JSONResponse:
        resource, namespace, name = _resource(request), request.path_params["namespace"], request.path_params["name"]
        if request.method == "GET":
            obj = self.store.get(resource.kind, namespace, name)
            if obj is None:
                raise not_found(resource, name)
            return JSONResponse(obj)
        if request.method == "PATCH":
            return await self._patch(request, resource, namespace, name)
        if request.method != "DELETE":
            raise _not_allowed(request)
        if resource.kind == "Pod":
            obj = await self._delete_pod(request, namespace, name)
        elif resource.kind == "PersistentVolumeClaim":
            obj = self.store.mark_deleted(resource.kind, namespace, name, 0)
            if obj is not None:
                self.kubelet.release_claim(obj)
        else:
            obj = self.store.remove(resource.kind, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        if resource.kind == "Service":
            self.proxy.close(obj["metadata"]["uid"])
        if resource.returns_object:
            return JSONResponse(obj)
        details = {"name": name, "kind": resource.plural, "uid": obj["metadata"]["uid"]}
        return JSONResponse(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    async def _patch(self, request: Request, resource: Resource, namespace: str, name: str) -> JSONResponse:
        media = request.headers.get("content-type", "").partition(";")[0].strip()
        if media not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise Failure(415, "UnsupportedMediaType", f"the fake applies merge patches only, not {media!r}")
        patched = self.store.patch(resource.kind, namespace, name, await request.json())
        if patched is None:
            raise not_found(resource, name)
        return JSONResponse(patched)

    async def _delete_pod(self, request: Request, namespace: str, name: str) -> dict[str, Any] | None:
        """Graceful: the pod is marked at once, and goes once the kubelet has stopped its container."""
        options = json.loads(await request.body() or b"{}")
        grace = request.query_params.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        pod = self.store.get("Pod", namespace, name)
        if pod is None:
            return None
        if grace is None:
            grace = pod["spec"]["terminationGracePeriodSeconds"]
        pod = self.store.mark_deleted("Pod", namespace, name, int(grace))
        if pod is not None:
            self.kubelet.wake(pod["metadata"]["uid"])
        return pod

    async def _log(self, request: Request) -> Response:
        """The container's output, stdout and stderr together (`tailLines` honoured, never followed)."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        if self.store.get("Pod", namespace, name) is None:
            raise not_found(_POD, name)
        container = await asyncio.to_thread(self.kubelet.container, namespace, name)
        if container is None:
            raise Failure(400, "BadRequest", f'container "app" in pod "{name}" is waiting to start: ContainerCreating')
        tail = request.query_params.get("tailLines")
        return Response(
            await asyncio.to_thread(container.logs, tail=int(tail) if tail else "all"), media_type="text/plain"
        )

    def _watch(self, request: Request, resource: Resource, namespace: str, matches: Matcher) -> StreamingResponse:
        query = request.query_params
        timeout_s = float(query.get("timeoutSeconds") or 1800)
        since = query.get("resourceVersion") or "0"
        watcher = self.store.watch(resource.kind, namespace, matches, None if since == "0" else int(since))

        async def events() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout_s
            try:
                while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                    watcher.ready.clear()
                    while watcher.events:
                        yield json.dumps(watcher.events.popleft()).encode() + b"\n"
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(watcher.ready.wait(), timeout=min(left, 0.2))
            finally:
                self.store.unwatch(watcher)

        return StreamingResponse(events(), media_type="application/json")

    # --- exec ------------------------------------------------------------------------------------------------------

    async def _exec(self, ws: WebSocket) -> None:
        """Run a command in the pod's container: channel 0 in, 1 and 2 out, 3 the final Status; then close."""
        namespace, name, query = ws.path_params["namespace"], ws.path_params["name"], ws.query_params
        command = query.getlist("command")
        streams = {
            key: query.get(key, "false").lower() in ("true", "1") for key in ("stdin", "stdout", "stderr", "tty")
        }
        try:
            _check_exec(self.store.get("Pod", namespace, name), name, query.get("container"))
            protocol = next((p for p in CHANNEL_PROTOCOLS if p in ws.scope.get("subprotocols", [])), None)
            if protocol is None:
                raise Failure(400, "BadRequest", f"exec needs one of the subprotocols {', '.join(CHANNEL_PROTOCOLS)}")
            try:
                stream = await asyncio.to_thread(self.kubelet.open_exec, namespace, name, command, streams)
            except docker.errors.APIError as error:
                raise Failure(500, "InternalError", str(error.explanation or error)) from None
        except Failure as failure:
            await ws.send_denial_response(failure.response())
            return
        self._execs.add(stream)
        await ws.accept(subprotocol=protocol)
        feeding = asyncio.create_task(_feed(ws, stream, protocol == CHANNEL_PROTOCOLS[0]))
        try:
            async for channel, data in stream.output():
                await ws.send_bytes(bytes([channel]) + data)
            code = await asyncio.to_thread(stream.exit_code)
            if code is not None:
                await ws.send_bytes(b"\x03" + json.dumps(_exec_status(command, code)).encode())
            await ws.close()
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            self._execs.discard(stream)
            feeding.cancel()
            stream.close()


class _BearerAuth:
    """Every request, plain or WebSocket, must carry the token: else 401, before any routing."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and dict(scope["headers"]).get(b"authorization") != self.expected:
            response = Failure(401, "Unauthorized", "Unauthorized").response()
            if scope["type"] == "http":
                await response(scope, receive, send)
            else:
                await WebSocket(scope, receive, send).send_denial_response(response)
            return
        await self.app(scope, receive, send)


async def _feed(ws: WebSocket, stream: ExecStream, v5: bool) -> None:
    """The client's frames: channel 0 into the process's stdin; on v5, [255, 0] closes stdin. Leaving cuts the exec."""
    writable = True
    while (message := await ws.receive())["type"] != "websocket.disconnect":
        data = message.get("bytes") or (message.get("text") or "").encode()
        if data[:1] == b"\x00" and len(data) > 1 and writable:
            try:
                await stream.write(data[1:])
            except OSError:  # the process closed its stdin or exited: what is left of the input is dropped
                writable = False
        elif v5 and data == b"\xff\x00":
            stream.close_stdin()
    stream.abort()


def _check_exec(pod: dict[str, Any] | None, name: str, container: str | None) -> None:
    if pod is None:
        raise not_found(_POD, name)
    box = pod["spec"]["containers"][0]["name"]
    if container not in (None, box):
        raise Failure(400, "BadRequest", f"container {container} is not valid for pod {name}")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise Failure(400, "BadRequest", f"cannot exec into a container in a completed pod; current phase is {phase}")
    if phase != "Running" or "running" not in pod["status"]["containerStatuses"][0]["state"]:
        raise Failure(400, "BadRequest", f'unable to upgrade connection: container not found ("{box}")')


def _exec_status(command: list[str], code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    message = (
        f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], exit code {code}"
    )
    causes = [{"reason": "ExitCode", "message": str(code)}]
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "NonZeroExitCode",
        "details": {"causes": causes},
    }


async def _exec_not_upgraded(request: Request) -> Response:
    raise Failure(400, "BadRequest", "Upgrade request required")


def _resource(request: Request) -> Resource:
    params = request.path_params
    api_version = f"{params['group']}/{params['version']}" if "group" in params else params["version"]
    resource = RESOURCES.get(f"{api_version}/{params['plural']}")
    if resource is None:
        raise Failure(404, "NotFound", "the server could not find the requested resource")
    return resource


def _exists(resource: Resource, name: str) -> Failure:
    details = {"name": name, "kind": resource.plural}
    return Failure(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', details)


def _not_allowed(request: Request) -> Failure:
    return Failure(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({request.method}; the fake only patches)",
    )


def _merged(target: Any, patch: Any) -> Any:
    """`patch` merged into `target` as RFC 7386 says: objects key by key, a null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merged(merged.get(key), value)
    return merged


def _selector(labels: str, fields: str) -> Matcher:
    """Label terms `k=v`, `k==v`, `k!=v`, `k`, `!k` and field terms `path=v`, `path!=v` (a dotted path), ANDed."""
    tests = [_label_term(term.strip()) for term in labels.split(",") if term.strip()]
    tests += [_field_term(term.strip()) for term in fields.split(",") if term.strip()]
    return lambda obj: all(test(obj) for test in tests)


def _label_term(term: str) -> Matcher:
    if any(char in term for char in " ()"):
        raise Failure(400, "BadRequest", f"unable to parse requirement {term!r}: the fake knows k=v, k!=v, k and !k")
    key, op, value = _split(term)

    def test(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        if op is None:
            return (key.lstrip("!") in labels) != key.startswith("!")
        return (labels.get(key) == value) != (op == "!=")

    return test


def _field_term(term: str) -> Matcher:
    path, op, value = _split(term)
    if op is None:
        raise Failure(400, "BadRequest", f"invalid field selector {term!r}")

    def test(obj: dict[str, Any]) -> bool:
        found: Any = obj
        for part in path.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return (str("" if found is None else found) == value) != (op == "!=")

    return test


def _split(term: str) -> tuple[str, str | None, str]:
    for op in ("!=", "==", "="):
        key, found, value = term.partition(op)
        if found:
            return key.strip(), op, value.strip()
    return term, None, ""


def _quiet_denials(record: logging.LogRecord) -> bool:
    """uvicorn (sansio WebSockets) logs every answer refusing an upgrade (a 404 exec) as a failed handshake."""
    return "returned without completing handshake" not in record.getMessage()


async def _failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Failure)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no route, no method), as Status objects."""
    assert isinstance(exc, HTTPException)
    reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
    return Failure(exc.status_code, reason, "the server could not find the requested resource").response()
