"""`AsyncChowder`: the async client (asyncio or trio: it sleeps through anyio, as httpx does), method for method
the same as `Chowder` (`sync.py`) and sending the same `Call`s from `routes.py`; only the sending and the waiting
are its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, Any, TypeVar

import anyio
import httpx

from chowder.client import routes
from chowder.client.calls import Call, Page
from chowder.client.errors import Forbidden
from chowder.client.routes import NOT_GIVEN, MaybeAutoStop
from chowder.client.streams import AsyncDownload, AsyncEventStream
from chowder.client.transport import DEFAULT_TIMEOUT_S, Retries, base, default_headers, failure, unreachable
from chowder.client.waiting import DEFAULT_WAIT_S, POLL_INTERVAL_S, Progress, Waiter
from chowder.schemas.audit import AuditEvent
from chowder.schemas.channels import ChannelConnected, ChannelInfo, ChannelStatus, ChannelSummary, Paired
from chowder.schemas.files import DirectoryListing
from chowder.schemas.instances import Egress, Instance, InstanceStatus
from chowder.schemas.keys import Key, KeyCreated, KeyDetail, PermissionName
from chowder.schemas.organization import BillingUrl, Organization, SignupResponse, Subscription
from chowder.schemas.responses import ResponseObject, ResponsesRequest
from chowder.schemas.skills import SkillInfo, SkillInstalled, SkillSummary
from chowder.schemas.usage import InstanceUsage, OrganizationUsage

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
            try:
                response = await self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retries.delay(call, attempt, None)
                if delay is None:
                    raise unreachable(exc, request.url) from exc
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                delay = self.retries.delay(call, attempt, response)
                if delay is None:
                    raise failure(response)
            await anyio.sleep(delay)
            attempt += 1


class _Resource:
    def __init__(self, sender: _Sender) -> None:
        self._sender = sender
        self._run = sender.run


class AsyncOrganizationApi(_Resource):
    async def signup(self, name: str, *, idempotency_key: str | None = None) -> SignupResponse:
        """A new organization and its org key (`api_key`, shown only here); needs no key."""
        return await self._run(routes.signup(name, idempotency_key))

    async def get(self) -> Organization:
        return await self._run(routes.get_organization())

    async def update(self, *, name: str | None = None, model_api_keys: Mapping[str, str] | None = None) -> Organization:
        """`model_api_keys` is merged into the stored ones; an empty string deletes a provider's key."""
        return await self._run(routes.update_organization(name, model_api_keys))

    async def usage(self, *, since: datetime | None = None, until: datetime | None = None) -> OrganizationUsage:
        return await self._run(routes.organization_usage(since, until))

    async def audit(self, *, instance_id: str | None = None, action: str | None = None) -> list[AuditEvent]:
        """The whole audit log (newest first), or the part about one instance or action."""
        return (await self._run(routes.audit_page(None, None, instance_id, action))).items

    async def audit_page(
        self, *, limit: int, cursor: str | None = None, instance_id: str | None = None, action: str | None = None
    ) -> Page[AuditEvent]:
        return await self._run(routes.audit_page(limit, cursor, instance_id, action))


class AsyncSubscriptionApi(_Resource):
    async def get(self) -> Subscription:
        return await self._run(routes.get_subscription())

    async def checkout(self, tier: str, *, idempotency_key: str | None = None) -> BillingUrl:
        return await self._run(routes.checkout(tier, idempotency_key))

    async def portal(self, *, idempotency_key: str | None = None) -> BillingUrl:
        return await self._run(routes.portal(idempotency_key))


class AsyncKeysApi(_Resource):
    async def create(
        self,
        name: str,
        *,
        instance_ids: Sequence[str],
        permissions: Sequence[PermissionName],
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> KeyCreated:
        """A scoped key; its `raw_key` is in this answer only."""
        return await self._run(routes.create_key(name, instance_ids, permissions, expires_at, idempotency_key))

    async def list(self) -> list[Key]:
        return (await self._run(routes.keys_page(None, None))).items

    async def list_page(self, *, limit: int, cursor: str | None = None) -> Page[Key]:
        return await self._run(routes.keys_page(limit, cursor))

    async def get(self, key_id: str) -> KeyDetail:
        return await self._run(routes.get_key(key_id))

    async def revoke(self, key_id: str) -> None:
        await self._run(routes.revoke_key(key_id))


class AsyncInstancesApi(_Resource):
    async def create(
        self,
        name: str,
        *,
        model_provider: str | None = None,
        openclaw_version: str | None = None,
        openclaw_config: Mapping[str, Any] | None = None,
        region: str | None = None,
        egress: Egress | None = None,
        auto_stop: MaybeAutoStop = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Instance:
        """Answers at once with `provisioning`; see `wait_until_running`."""
        fields: dict[str, Any] = {"name": name, "model_provider": model_provider, "openclaw_version": openclaw_version}
        fields |= {"openclaw_config": openclaw_config, "region": region, "egress": egress}
        return await self._run(routes.create_instance(fields, auto_stop, idempotency_key))

    async def list(self) -> list[Instance]:
        return (await self._run(routes.instances_page(None, None))).items

    async def list_page(self, *, limit: int, cursor: str | None = None) -> Page[Instance]:
        return await self._run(routes.instances_page(limit, cursor))

    async def get(self, instance_id: str) -> Instance:
        return await self._run(routes.get_instance(instance_id))

    async def status(self, instance_id: str) -> InstanceStatus:
        return await self._run(routes.instance_status(instance_id))

    async def update(
        self,
        instance_id: str,
        *,
        name: str | None = None,
        openclaw_config: Mapping[str, Any] | None = None,
        egress: Egress | None = None,
        auto_stop: MaybeAutoStop = NOT_GIVEN,
    ) -> Instance:
        return await self._run(routes.update_instance(instance_id, name, openclaw_config, egress, auto_stop))

    async def delete(self, instance_id: str) -> None:
        await self._run(routes.delete_instance(instance_id))

    async def start(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        """Blocks until the gateway is ready (the server answers with `running`)."""
        return await self._run(routes.instance_action(instance_id, "start", idempotency_key))

    async def stop(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        return await self._run(routes.instance_action(instance_id, "stop", idempotency_key))

    async def recover(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        """From `error`: boots it again with the same id and files."""
        return await self._run(routes.instance_action(instance_id, "recover", idempotency_key))

    async def usage(
        self, instance_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> InstanceUsage:
        return await self._run(routes.instance_usage(instance_id, since, until))

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
            events = (await self._run(routes.audit_page(1, None, instance_id))).items
        except Forbidden:
            events = []
        elapsed = 0.0 if since is None else time.monotonic() - since
        return Progress(instance, elapsed, events[0].action if events else None)


class AsyncResponsesApi(_Resource):
    async def create(
        self,
        instance_id: str,
        input: str | list[Any],
        *,
        model: str,
        session: str | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> ResponseObject:
        """One turn, in the main session or `session`; `fields` are other Responses fields, sent unchanged."""
        request = ResponsesRequest(model=model, input=input, **fields)
        return await self._run(routes.respond(instance_id, request, session, idempotency_key))

    async def stream(
        self, instance_id: str, input: str | list[Any], *, model: str, session: str | None = None, **fields: Any
    ) -> AsyncEventStream:
        """The turn's events as they arrive; an error answer raises here, before any event."""
        request = ResponsesRequest(model=model, input=input, **fields)
        return AsyncEventStream(await self._sender.open(routes.stream_response(instance_id, request, session)))


class AsyncFilesApi(_Resource):
    async def list(self, instance_id: str, path: str = ".") -> DirectoryListing:
        return await self._run(routes.list_files(instance_id, path))

    async def read(self, instance_id: str, path: str) -> str:
        """A UTF-8 text file (up to 10 MiB); others raise and are read with `open` or `download`."""
        return (await self._run(routes.read_file(instance_id, path))).content

    async def write(self, instance_id: str, path: str, content: str) -> None:
        """Creates or overwrites, with missing parent directories."""
        await self._run(routes.write_file(instance_id, path, content))

    async def upload(
        self, instance_id: str, path: str, data: bytes | IO[bytes], *, idempotency_key: str | None = None
    ) -> None:
        """Any file; a file object is streamed, not read whole."""
        await self._run(routes.upload_file(instance_id, path, data, idempotency_key))

    async def open(self, instance_id: str, path: str) -> AsyncDownload:
        """The file as a stream (use it in a `with` block, or read it to the end)."""
        return AsyncDownload(await self._sender.open(routes.download_file(instance_id, path)))

    async def download(self, instance_id: str, path: str) -> bytes:
        return await (await self.open(instance_id, path)).read()

    async def move(
        self, instance_id: str, source: str, destination: str, *, idempotency_key: str | None = None
    ) -> None:
        await self._run(routes.move_file(instance_id, source, destination, idempotency_key))

    async def delete(self, instance_id: str, path: str) -> None:
        """A file, or a directory with everything in it."""
        await self._run(routes.delete_file(instance_id, path))

    async def mkdir(self, instance_id: str, path: str, *, idempotency_key: str | None = None) -> None:
        await self._run(routes.make_directory(instance_id, path, idempotency_key))


class AsyncChannelsApi(_Resource):
    async def list(self, instance_id: str) -> list[ChannelSummary]:
        return await self._run(routes.list_channels(instance_id))

    async def info(self, instance_id: str, channel: str) -> ChannelInfo:
        """The fields connecting asks for (needs no key)."""
        return await self._run(routes.channel_info(instance_id, channel))

    async def status(self, instance_id: str, channel: str) -> ChannelStatus:
        return await self._run(routes.channel_status(instance_id, channel))

    async def connect(
        self,
        instance_id: str,
        channel: str,
        config: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> ChannelConnected:
        return await self._run(routes.connect_channel(instance_id, channel, config or {}, idempotency_key))

    async def disconnect(self, instance_id: str, channel: str, *, idempotency_key: str | None = None) -> None:
        await self._run(routes.disconnect_channel(instance_id, channel, idempotency_key))

    async def pair(self, instance_id: str, channel: str, code: str, *, idempotency_key: str | None = None) -> Paired:
        return await self._run(routes.pair_channel(instance_id, channel, code, idempotency_key))


class AsyncSkillsApi(_Resource):
    async def list(self, instance_id: str, *, eligible_only: bool = False) -> list[SkillSummary]:
        return await self._run(routes.list_skills(instance_id, eligible_only))

    async def info(self, instance_id: str, skill: str) -> SkillInfo:
        return await self._run(routes.skill_info(instance_id, skill))

    async def install(
        self,
        instance_id: str,
        slug: str,
        *,
        env: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> SkillInstalled:
        return await self._run(routes.install_skill(instance_id, slug, env, idempotency_key))

    async def update(self, instance_id: str, skill: str, **changes: Any) -> None:
        """`enabled`, `apiKey`, `env`, `config`: only those given change; None removes a setting."""
        await self._run(routes.update_skill(instance_id, skill, changes))


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

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChowder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
