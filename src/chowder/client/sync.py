"""`Chowder`: the blocking client. Its resources send the `Call`s that `resources.py` names (the async client
sends the same ones); this module holds the loop that sends with retries, and what reads as it arrives or polls."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from chowder.client import agent_routes, backup_routes, routes
from chowder.client.calls import Call
from chowder.client.endpoints import SyncResource
from chowder.client.errors import Forbidden
from chowder.client.resources import (
    BackupsRoutes,
    ChannelsRoutes,
    FilesRoutes,
    InstancesRoutes,
    KeysRoutes,
    OrganizationRoutes,
    ResponsesRoutes,
    SessionsRoutes,
    SkillsRoutes,
    SubscriptionRoutes,
    WebhooksRoutes,
)
from chowder.client.streams import Download, EventStream
from chowder.client.transport import DEFAULT_TIMEOUT_S, Retries, base, default_headers
from chowder.client.waiting import DEFAULT_WAIT_S, POLL_INTERVAL_S, Progress, Waiter
from chowder.schemas.instances import Instance

T = TypeVar("T")


class _Sender:
    def __init__(self, client: httpx.Client, retries: Retries) -> None:
        self.client = client
        self.retries = retries

    def run(self, call: Call[T]) -> T:
        return call.parse(self.open(call, stream=False))

    def open(self, call: Call[Any], stream: bool = True) -> httpx.Response:
        """The answer once it is a success; an error answer raises its `ChowderError` (after any retries)."""
        attempt = 0
        while True:
            request = self.client.build_request(call.method, call.path, **call.request_args())
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                outcome = exc
            else:
                if outcome.is_success:
                    return outcome
                outcome.read()
                outcome.close()
            time.sleep(self.retries.wait_or_raise(call, attempt, request.url, outcome))
            attempt += 1


class OrganizationApi(OrganizationRoutes, SyncResource):
    pass


class SubscriptionApi(SubscriptionRoutes, SyncResource):
    pass


class KeysApi(KeysRoutes, SyncResource):
    pass


class InstancesApi(InstancesRoutes, SyncResource):
    def wait_until_running(
        self,
        instance_id: str,
        timeout: float = DEFAULT_WAIT_S,
        on_progress: Callable[[Progress], None] | None = None,
        *,
        interval: float = POLL_INTERVAL_S,
    ) -> Instance:
        """Polls until `running`, calling `on_progress` after each look; raises `InstanceFailed` if it goes to
        `error`, `WaitTimeout` after `timeout` seconds."""
        waiter = Waiter(timeout)
        while True:
            if on_progress is None:
                instance = self.get(instance_id)
            else:
                progress = self.progress(instance_id, since=waiter.started)
                on_progress(progress)
                instance = progress.instance
            if waiter.done(instance):
                return instance
            time.sleep(interval)

    def progress(self, instance_id: str, *, since: float | None = None) -> Progress:
        """One look at the instance and its latest lifecycle step (None for a key that may not read the audit
        log); `since` is the `time.monotonic()` the elapsed time counts from (default: now)."""
        instance = self.get(instance_id)
        try:
            events = self._sender.run(routes.audit_page(limit=1, instance_id=instance_id)).items
        except Forbidden:
            events = []
        return Progress.of(instance, events, since)


class ResponsesApi(ResponsesRoutes, SyncResource):
    def stream(
        self, instance_id: str, input: str | list[Any], *, model: str, session: str | None = None, **fields: Any
    ) -> EventStream:
        """The turn's events as they arrive; an error answer raises here, before any event."""
        call = agent_routes.stream_response(instance_id, input, model=model, session=session, **fields)
        return EventStream(self._sender.open(call))


class FilesApi(FilesRoutes, SyncResource):
    def open(self, instance_id: str, path: str) -> Download:
        """The file as a stream (use it in a `with` block, or read it to the end)."""
        return Download(self._sender.open(agent_routes.download_file(instance_id, path)))

    def download(self, instance_id: str, path: str) -> bytes:
        return self.open(instance_id, path).read()


class BackupsApi(BackupsRoutes, SyncResource):
    def open(self, backup_id: str, *, instance_id: str | None = None) -> Download:
        """The archive as a stream (use it in a `with` block, `save` it, or read it to the end)."""
        return Download(self._sender.open(backup_routes.download_backup(backup_id, instance_id=instance_id)))


class ChannelsApi(ChannelsRoutes, SyncResource):
    pass


class SkillsApi(SkillsRoutes, SyncResource):
    pass


class SessionsApi(SessionsRoutes, SyncResource):
    pass


class WebhooksApi(WebhooksRoutes, SyncResource):
    pass


class Chowder:
    """A Chowder server at `base_url` (e.g. `http://127.0.0.1:8000`), as the holder of `api_key` (an org key
    `chd_org_…` or a scoped key `chd_sk_…`; None for signup only). Use it in a `with` block, or `close()` it."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: Retries | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base(base_url), headers=default_headers(api_key), timeout=timeout, transport=transport
        )
        sender = _Sender(self._http, retries or Retries())
        self.organization = OrganizationApi(sender)
        self.subscription = SubscriptionApi(sender)
        self.keys = KeysApi(sender)
        self.instances = InstancesApi(sender)
        self.responses = ResponsesApi(sender)
        self.files = FilesApi(sender)
        self.channels = ChannelsApi(sender)
        self.skills = SkillsApi(sender)
        self.webhooks = WebhooksApi(sender)
        self.sessions = SessionsApi(sender)
        self.backups = BackupsApi(sender)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Chowder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
