"""`Chowder`: the blocking client. Every method sends one `Call` from `routes.py` (the async client sends the
same ones), so this module holds only signatures and the loop that sends with retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from chowder.client import routes
from chowder.client.calls import Call, Page
from chowder.client.errors import Forbidden
from chowder.client.routes import NOT_GIVEN, MaybeAutoStop
from chowder.client.streams import Download, EventStream
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
            try:
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retries.delay(call, attempt, None)
                if delay is None:
                    raise unreachable(exc, request.url) from exc
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                delay = self.retries.delay(call, attempt, response)
                if delay is None:
                    raise failure(response)
            time.sleep(delay)
            attempt += 1


class _Resource:
    def __init__(self, sender: _Sender) -> None:
        self._sender = sender
        self._run = sender.run


class OrganizationApi(_Resource):
    def signup(self, name: str, *, idempotency_key: str | None = None) -> SignupResponse:
        """A new organization and its org key (`api_key`, shown only here); needs no key."""
        return self._run(routes.signup(name, idempotency_key))

    def get(self) -> Organization:
        return self._run(routes.get_organization())

    def update(self, *, name: str | None = None, model_api_keys: Mapping[str, str] | None = None) -> Organization:
        """`model_api_keys` is merged into the stored ones; an empty string deletes a provider's key."""
        return self._run(routes.update_organization(name, model_api_keys))

    def usage(self, *, since: datetime | None = None, until: datetime | None = None) -> OrganizationUsage:
        return self._run(routes.organization_usage(since, until))

    def audit(self, *, instance_id: str | None = None, action: str | None = None) -> list[AuditEvent]:
        """The whole audit log (newest first), or the part about one instance or action."""
        return self._run(routes.audit_page(None, None, instance_id, action)).items

    def audit_page(
        self, *, limit: int, cursor: str | None = None, instance_id: str | None = None, action: str | None = None
    ) -> Page[AuditEvent]:
        return self._run(routes.audit_page(limit, cursor, instance_id, action))


class SubscriptionApi(_Resource):
    def get(self) -> Subscription:
        return self._run(routes.get_subscription())

    def checkout(self, tier: str, *, idempotency_key: str | None = None) -> BillingUrl:
        return self._run(routes.checkout(tier, idempotency_key))

    def portal(self, *, idempotency_key: str | None = None) -> BillingUrl:
        return self._run(routes.portal(idempotency_key))


class KeysApi(_Resource):
    def create(
        self,
        name: str,
        *,
        instance_ids: Sequence[str],
        permissions: Sequence[PermissionName],
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> KeyCreated:
        """A scoped key; its `raw_key` is in this answer only."""
        return self._run(routes.create_key(name, instance_ids, permissions, expires_at, idempotency_key))

    def list(self) -> list[Key]:
        return self._run(routes.keys_page(None, None)).items

    def list_page(self, *, limit: int, cursor: str | None = None) -> Page[Key]:
        return self._run(routes.keys_page(limit, cursor))

    def get(self, key_id: str) -> KeyDetail:
        return self._run(routes.get_key(key_id))

    def revoke(self, key_id: str) -> None:
        self._run(routes.revoke_key(key_id))


class InstancesApi(_Resource):
    def create(
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
        return self._run(routes.create_instance(fields, auto_stop, idempotency_key))

    def list(self) -> list[Instance]:
        return self._run(routes.instances_page(None, None)).items

    def list_page(self, *, limit: int, cursor: str | None = None) -> Page[Instance]:
        return self._run(routes.instances_page(limit, cursor))

    def get(self, instance_id: str) -> Instance:
        return self._run(routes.get_instance(instance_id))

    def status(self, instance_id: str) -> InstanceStatus:
        return self._run(routes.instance_status(instance_id))

    def update(
        self,
        instance_id: str,
        *,
        name: str | None = None,
        openclaw_config: Mapping[str, Any] | None = None,
        egress: Egress | None = None,
        auto_stop: MaybeAutoStop = NOT_GIVEN,
    ) -> Instance:
        return self._run(routes.update_instance(instance_id, name, openclaw_config, egress, auto_stop))

    def delete(self, instance_id: str) -> None:
        self._run(routes.delete_instance(instance_id))

    def start(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        """Blocks until the gateway is ready (the server answers with `running`)."""
        return self._run(routes.instance_action(instance_id, "start", idempotency_key))

    def stop(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        return self._run(routes.instance_action(instance_id, "stop", idempotency_key))

    def recover(self, instance_id: str, *, idempotency_key: str | None = None) -> Instance:
        """From `error`: boots it again with the same id and files."""
        return self._run(routes.instance_action(instance_id, "recover", idempotency_key))

    def usage(self, instance_id: str, *, since: datetime | None = None, until: datetime | None = None) -> InstanceUsage:
        return self._run(routes.instance_usage(instance_id, since, until))

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
            events = (self._run(routes.audit_page(1, None, instance_id))).items
        except Forbidden:
            events = []
        elapsed = 0.0 if since is None else time.monotonic() - since
        return Progress(instance, elapsed, events[0].action if events else None)


class ResponsesApi(_Resource):
    def create(
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
        return self._run(routes.respond(instance_id, request, session, idempotency_key))

    def stream(
        self, instance_id: str, input: str | list[Any], *, model: str, session: str | None = None, **fields: Any
    ) -> EventStream:
        """The turn's events as they arrive; an error answer raises here, before any event."""
        request = ResponsesRequest(model=model, input=input, **fields)
        return EventStream(self._sender.open(routes.stream_response(instance_id, request, session)))


class FilesApi(_Resource):
    def list(self, instance_id: str, path: str = ".") -> DirectoryListing:
        return self._run(routes.list_files(instance_id, path))

    def read(self, instance_id: str, path: str) -> str:
        """A UTF-8 text file (up to 10 MiB); others raise and are read with `open` or `download`."""
        return self._run(routes.read_file(instance_id, path)).content

    def write(self, instance_id: str, path: str, content: str) -> None:
        """Creates or overwrites, with missing parent directories."""
        self._run(routes.write_file(instance_id, path, content))

    def upload(
        self, instance_id: str, path: str, data: bytes | IO[bytes], *, idempotency_key: str | None = None
    ) -> None:
        """Any file; a file object is streamed, not read whole."""
        self._run(routes.upload_file(instance_id, path, data, idempotency_key))

    def open(self, instance_id: str, path: str) -> Download:
        """The file as a stream (use it in a `with` block, or read it to the end)."""
        return Download(self._sender.open(routes.download_file(instance_id, path)))

    def download(self, instance_id: str, path: str) -> bytes:
        return self.open(instance_id, path).read()

    def move(self, instance_id: str, source: str, destination: str, *, idempotency_key: str | None = None) -> None:
        self._run(routes.move_file(instance_id, source, destination, idempotency_key))

    def delete(self, instance_id: str, path: str) -> None:
        """A file, or a directory with everything in it."""
        self._run(routes.delete_file(instance_id, path))

    def mkdir(self, instance_id: str, path: str, *, idempotency_key: str | None = None) -> None:
        self._run(routes.make_directory(instance_id, path, idempotency_key))


class ChannelsApi(_Resource):
    def list(self, instance_id: str) -> list[ChannelSummary]:
        return self._run(routes.list_channels(instance_id))

    def info(self, instance_id: str, channel: str) -> ChannelInfo:
        """The fields connecting asks for (needs no key)."""
        return self._run(routes.channel_info(instance_id, channel))

    def status(self, instance_id: str, channel: str) -> ChannelStatus:
        return self._run(routes.channel_status(instance_id, channel))

    def connect(
        self,
        instance_id: str,
        channel: str,
        config: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> ChannelConnected:
        return self._run(routes.connect_channel(instance_id, channel, config or {}, idempotency_key))

    def disconnect(self, instance_id: str, channel: str, *, idempotency_key: str | None = None) -> None:
        self._run(routes.disconnect_channel(instance_id, channel, idempotency_key))

    def pair(self, instance_id: str, channel: str, code: str, *, idempotency_key: str | None = None) -> Paired:
        return self._run(routes.pair_channel(instance_id, channel, code, idempotency_key))


class SkillsApi(_Resource):
    def list(self, instance_id: str, *, eligible_only: bool = False) -> list[SkillSummary]:
        return self._run(routes.list_skills(instance_id, eligible_only))

    def info(self, instance_id: str, skill: str) -> SkillInfo:
        return self._run(routes.skill_info(instance_id, skill))

    def install(
        self,
        instance_id: str,
        slug: str,
        *,
        env: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> SkillInstalled:
        return self._run(routes.install_skill(instance_id, slug, env, idempotency_key))

    def update(self, instance_id: str, skill: str, **changes: Any) -> None:
        """`enabled`, `apiKey`, `env`, `config`: only those given change; None removes a setting."""
        self._run(routes.update_skill(instance_id, skill, changes))


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

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Chowder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
