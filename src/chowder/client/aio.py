"""`AsyncChowder`: the async client (asyncio or trio: it sleeps through anyio, as httpx does), method for method
the same as `Chowder` (`sync.py`): its resources send the same `Call`s, awaited; only the sending, the streams and
the waiting are its own."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from chowder.client import agent_routes, backup_routes, routes
from chowder.client.calls import Call
from chowder.client.endpoints import AsyncResource
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
from chowder.client.streams import AsyncDownload, AsyncEventStream
from chowder.client.transport import DEFAULT_TIMEOUT_S, Retries, base, default_headers
from chowder.client.waiting import DEFAULT_WAIT_S, POLL_INTERVAL_S, Progress, Waiter
from chowder.schemas.instances import Instance

T = TypeVar("T")


class _Sender:
    def __init__(self, client: httpx.AsyncClient, retries: Retries) -> None:
        self.client = client
        self.retries = retries

    async def run(self, call: Call[T]) -> T:
        return call.parse(await self.open(call, stream=False))

    async def open(self, call: Call[Any], stream: bool = True) -> httpx.Response:
        """As `Chowder`'s: the answer once it is a success, else its `ChowderError` (after any retries)."""
        attempt = 0
        while True:
            request = self.client.build_request(call.method, call.path, **call.request_args())
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                outcome = exc
            else:
                if outcome.is_success:
                    return outcome
                await outcome.aread()
                await outcome.aclose()
            await anyio.sleep(self.retries.wait_or_raise(call, attempt, request.url, outcome))
            attempt += 1


class AsyncOrganizationApi(OrganizationRoutes, AsyncResource):
    pass


class AsyncSubscriptionApi(SubscriptionRoutes, AsyncResource):
    pass


class AsyncKeysApi(KeysRoutes, AsyncResource):
    pass


class AsyncInstancesApi(InstancesRoutes, AsyncResource):
    async def wait_until_running(
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
                instance = await self.get(instance_id)
            else:
                progress = await self.progress(instance_id, since=waiter.started)
                on_progress(progress)
                instance = progress.instance
            if waiter.done(instance):
                return instance
            await anyio.sleep(interval)

    async def progress(self, instance_id: str, *, since: float | None = None) -> Progress:
        """One look at the instance and its latest lifecycle step (None for a key that may not read the audit
        log); `since` is the `time.monotonic()` the elapsed time counts from (default: now)."""
        instance = await self.get(instance_id)
        try:
            events = (await self._sender.run(routes.audit_page(limit=1, instance_id=instance_id))).items
        except Forbidden:
            events = []
        return Progress.of(instance, events, since)


class AsyncResponsesApi(ResponsesRoutes, AsyncResource):
    async def stream(
        self, instance_id: str, input: str | list[Any], *, model: str, session: str | None = None, **fields: Any
    ) -> AsyncEventStream:
        """The turn's events as they arrive; an error answer raises here, before any event."""
        call = agent_routes.stream_response(instance_id, input, model=model, session=session, **fields)
        return AsyncEventStream(await self._sender.open(call))


class AsyncFilesApi(FilesRoutes, AsyncResource):
    async def open(self, instance_id: str, path: str) -> AsyncDownload:
        """The file as a stream (use it in a `with` block, or read it to the end)."""
        return AsyncDownload(await self._sender.open(agent_routes.download_file(instance_id, path)))

    async def download(self, instance_id: str, path: str) -> bytes:
        return await (await self.open(instance_id, path)).read()


class AsyncBackupsApi(BackupsRoutes, AsyncResource):
    async def open(self, backup_id: str, *, instance_id: str | None = None) -> AsyncDownload:
        """The archive as a stream (use it in an `async with` block, `save` it, or read it to the end)."""
        call = backup_routes.download_backup(backup_id, instance_id=instance_id)
        return AsyncDownload(await self._sender.open(call))


class AsyncChannelsApi(ChannelsRoutes, AsyncResource):
    pass


class AsyncSkillsApi(SkillsRoutes, AsyncResource):
    pass


class AsyncSessionsApi(SessionsRoutes, AsyncResource):
    pass


class AsyncWebhooksApi(WebhooksRoutes, AsyncResource):
    pass


class AsyncChowder:
    """As `Chowder`, with every call awaited. Use it in an `async with` block, or `await aclose()` it."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base(base_url), headers=default_headers(api_key), timeout=timeout, transport=transport
        )
        sender = _Sender(self._http, retries or Retries())
        self.organization = AsyncOrganizationApi(sender)
        self.subscription = AsyncSubscriptionApi(sender)
        self.keys = AsyncKeysApi(sender)
        self.instances = AsyncInstancesApi(sender)
        self.responses = AsyncResponsesApi(sender)
        self.files = AsyncFilesApi(sender)
        self.channels = AsyncChannelsApi(sender)
        self.skills = AsyncSkillsApi(sender)
        self.webhooks = AsyncWebhooksApi(sender)
        self.sessions = AsyncSessionsApi(sender)
        self.backups = AsyncBackupsApi(sender)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChowder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
