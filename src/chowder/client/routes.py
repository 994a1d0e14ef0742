"""Every route of the API as a `Call`: the public ones and the extensions (pagination, recover, usage, audit,
files delete/mkdir, egress and auto_stop). Request bodies are built with the server's own schemas, so a field
the server would refuse is refused here first, with pydantic's message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

from chowder.client.calls import LONG_TIMEOUT_S, Call, Page, body, call, many, nothing, one, page, raw
from chowder.schemas.audit import AuditEvent
from chowder.schemas.channels import (
    ChannelConnect,
    ChannelConnected,
    ChannelInfo,
    ChannelStatus,
    ChannelSummary,
    Paired,
    PairRequest,
)
from chowder.schemas.files import DirectoryCreate, DirectoryListing, FileContent, FileMove
from chowder.schemas.instances import AutoStop, Egress, Instance, InstanceCreate, InstanceStatus, InstanceUpdate
from chowder.schemas.keys import Key, KeyCreate, KeyCreated, KeyDetail, PermissionName
from chowder.schemas.organization import (
    BillingUrl,
    CheckoutRequest,
    Organization,
    OrganizationUpdate,
    SignupRequest,
    SignupResponse,
    Subscription,
)
from chowder.schemas.responses import ResponseObject, ResponsesRequest
from chowder.schemas.skills import SkillInfo, SkillInstall, SkillInstalled, SkillSummary, SkillUpdate
from chowder.schemas.usage import InstanceUsage, OrganizationUsage


class NotGiven(Enum):
    """Tells "leave it to the server" from an explicit null where null means something (`auto_stop: null` is
    "never sleep")."""

    NOT_GIVEN = "NOT_GIVEN"


NOT_GIVEN = NotGiven.NOT_GIVEN
MaybeAutoStop = AutoStop | None | Literal[NotGiven.NOT_GIVEN]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None and value is not NOT_GIVEN}


def _with_auto_stop(fields: dict[str, Any], auto_stop: MaybeAutoStop) -> dict[str, Any]:
    return fields if auto_stop is NOT_GIVEN else {**fields, "auto_stop": auto_stop}


# Organization and subscription.


def signup(name: str, idempotency_key: str | None = None) -> Call[SignupResponse]:
    payload = body(SignupRequest(name=name))
    return call("POST", "/v1/organization/signup", one(SignupResponse), json=payload, idempotency_key=idempotency_key)


def get_organization() -> Call[Organization]:
    return call("GET", "/v1/organization", one(Organization))


def update_organization(name: str | None, model_api_keys: Mapping[str, str] | None) -> Call[Organization]:
    update = OrganizationUpdate.model_validate(_given(name=name, model_api_keys=model_api_keys))
    return call("PATCH", "/v1/organization", one(Organization), json=body(update))


def get_subscription() -> Call[Subscription]:
    return call("GET", "/v1/subscription", one(Subscription))


def checkout(tier: str, idempotency_key: str | None = None) -> Call[BillingUrl]:
    payload = body(CheckoutRequest(tier=tier))
    return call("POST", "/v1/subscription/checkout", one(BillingUrl), json=payload, idempotency_key=idempotency_key)


def portal(idempotency_key: str | None = None) -> Call[BillingUrl]:
    return call("POST", "/v1/subscription/portal", one(BillingUrl), idempotency_key=idempotency_key)


def organization_usage(since: datetime | None, until: datetime | None) -> Call[OrganizationUsage]:
    return call("GET", "/v1/organization/usage", one(OrganizationUsage), params={"since": since, "until": until})


def audit_page(
    limit: int | None,
    cursor: str | None,
    instance_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Call[Page[AuditEvent]]:
    params = {"limit": limit, "cursor": cursor, "instance_id": instance_id, "action": action}
    return call("GET", "/v1/organization/audit", page(AuditEvent), params={**params, "since": since, "until": until})


# Keys.


def create_key(
    name: str,
    instance_ids: Sequence[str],
    permissions: Sequence[PermissionName],
    expires_at: datetime | None,
    idempotency_key: str | None = None,
) -> Call[KeyCreated]:
    fields = _given(name=name, instance_ids=list(instance_ids), permissions=list(permissions), expires_at=expires_at)
    payload = body(KeyCreate.model_validate(fields))
    return call("POST", "/v1/keys", one(KeyCreated), json=payload, idempotency_key=idempotency_key)


def keys_page(limit: int | None, cursor: str | None) -> Call[Page[Key]]:
    return call("GET", "/v1/keys", page(Key), params={"limit": limit, "cursor": cursor})


def get_key(key_id: str) -> Call[KeyDetail]:
    return call("GET", f"/v1/keys/{_seg(key_id)}", one(KeyDetail))


def revoke_key(key_id: str) -> Call[None]:
    return call("DELETE", f"/v1/keys/{_seg(key_id)}", nothing)


# Instances.


def _instance(instance_id: str, tail: str = "") -> str:
    return f"/v1/instances/{_seg(instance_id)}{tail}"


def create_instance(fields: dict[str, Any], auto_stop: MaybeAutoStop, idempotency_key: str | None) -> Call[Instance]:
    payload = body(InstanceCreate.model_validate(_with_auto_stop(_given(**fields), auto_stop)))
    return call("POST", "/v1/instances", one(Instance), json=payload, idempotency_key=idempotency_key)


def instances_page(limit: int | None, cursor: str | None) -> Call[Page[Instance]]:
    return call("GET", "/v1/instances", page(Instance), params={"limit": limit, "cursor": cursor})


def get_instance(instance_id: str) -> Call[Instance]:
    return call("GET", _instance(instance_id), one(Instance))


def update_instance(
    instance_id: str,
    name: str | None,
    openclaw_config: Mapping[str, Any] | None,
    egress: Egress | None,
    auto_stop: MaybeAutoStop,
) -> Call[Instance]:
    fields = _with_auto_stop(_given(name=name, openclaw_config=openclaw_config, egress=egress), auto_stop)
    return call("PATCH", _instance(instance_id), one(Instance), json=body(InstanceUpdate.model_validate(fields)))


def delete_instance(instance_id: str) -> Call[None]:
    return call("DELETE", _instance(instance_id), nothing)


def instance_action(
    instance_id: str, action: Literal["start", "stop", "recover"], idempotency_key: str | None
) -> Call[Instance]:
    """Each answers with the final state, once the gateway is ready (or gone): hence the long timeout."""
    path = _instance(instance_id, f"/{action}")
    return call("POST", path, one(Instance), timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


def instance_status(instance_id: str) -> Call[InstanceStatus]:
    return call("GET", _instance(instance_id, "/status"), one(InstanceStatus))


def instance_usage(instance_id: str, since: datetime | None, until: datetime | None) -> Call[InstanceUsage]:
    params = {"since": since, "until": until}
    return call("GET", _instance(instance_id, "/usage"), one(InstanceUsage), params=params)


# Chat.


def respond(
    instance_id: str, request: ResponsesRequest, session: str | None, idempotency_key: str | None
) -> Call[ResponseObject]:
    """A turn in the main session, or in `session` (created on first use)."""
    payload = request.model_dump(mode="json", exclude_unset=True)
    path = _chat_path(instance_id, session)
    return call(
        "POST", path, one(ResponseObject), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def stream_response(instance_id: str, request: ResponsesRequest, session: str | None) -> Call[httpx.Response]:
    """The same turn answered as server-sent events (never retried: a stream is not replayable)."""
    payload = {**request.model_dump(mode="json", exclude_unset=True), "stream": True}
    return call("POST", _chat_path(instance_id, session), raw, json=payload, timeout=LONG_TIMEOUT_S)


def _chat_path(instance_id: str, session: str | None) -> str:
    return _instance(instance_id, "/responses" if session is None else f"/session/{_seg(session)}/responses")


# Files.


def list_files(instance_id: str, path: str) -> Call[DirectoryListing]:
    return call("GET", _instance(instance_id, "/files"), one(DirectoryListing), params={"path": path})


def read_file(instance_id: str, path: str) -> Call[FileContent]:
    return call("GET", _instance(instance_id, "/files/content"), one(FileContent), params={"path": path})


def write_file(instance_id: str, path: str, content: str) -> Call[None]:
    payload = body(FileContent(path=path, content=content))
    return call("PUT", _instance(instance_id, "/files/content"), nothing, json=payload)


def upload_file(instance_id: str, path: str, data: bytes | IO[bytes], idempotency_key: str | None) -> Call[None]:
    """Multipart, the file part streamed from `data` in chunks when it is a file object."""
    name = path.rsplit("/", 1)[-1] or "file"
    return call(
        "POST",
        _instance(instance_id, "/files/upload"),
        nothing,
        files={"file": (name, data, "application/octet-stream")},
        data={"path": path},
        timeout=LONG_TIMEOUT_S,
        idempotency_key=idempotency_key,
    )


def download_file(instance_id: str, path: str) -> Call[httpx.Response]:
    return call("GET", _instance(instance_id, "/files/download"), raw, params={"path": path}, timeout=LONG_TIMEOUT_S)


def move_file(instance_id: str, source: str, destination: str, idempotency_key: str | None) -> Call[None]:
    payload = body(FileMove(source=source, destination=destination))
    path = _instance(instance_id, "/files/move")
    return call("POST", path, nothing, json=payload, idempotency_key=idempotency_key)


def delete_file(instance_id: str, path: str) -> Call[None]:
    return call("DELETE", _instance(instance_id, "/files"), nothing, params={"path": path})


def make_directory(instance_id: str, path: str, idempotency_key: str | None) -> Call[None]:
    payload = body(DirectoryCreate(path=path))
    return call("POST", _instance(instance_id, "/files/mkdir"), nothing, json=payload, idempotency_key=idempotency_key)


# Channels.


def _channel(instance_id: str, channel: str, tail: str = "") -> str:
    return _instance(instance_id, f"/channels/{_seg(channel)}{tail}")


def list_channels(instance_id: str) -> Call[list[ChannelSummary]]:
    return call("GET", _instance(instance_id, "/channels"), many(ChannelSummary))


def channel_info(instance_id: str, channel: str) -> Call[ChannelInfo]:
    return call("GET", _channel(instance_id, channel), one(ChannelInfo))


def channel_status(instance_id: str, channel: str) -> Call[ChannelStatus]:
    return call("GET", _channel(instance_id, channel, "/status"), one(ChannelStatus))


def connect_channel(
    instance_id: str, channel: str, config: Mapping[str, Any], idempotency_key: str | None
) -> Call[ChannelConnected]:
    payload = body(ChannelConnect(config=dict(config)))
    path = _channel(instance_id, channel, "/connect")
    return call(
        "POST", path, one(ChannelConnected), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def disconnect_channel(instance_id: str, channel: str, idempotency_key: str | None) -> Call[None]:
    path = _channel(instance_id, channel, "/disconnect")
    return call("POST", path, nothing, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


def pair_channel(instance_id: str, channel: str, code: str, idempotency_key: str | None) -> Call[Paired]:
    payload = body(PairRequest(code=code))
    path = _channel(instance_id, channel, "/pair")
    return call("POST", path, one(Paired), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


# Skills.


def list_skills(instance_id: str, eligible_only: bool) -> Call[list[SkillSummary]]:
    params = {"eligible_only": eligible_only}
    return call("GET", _instance(instance_id, "/skills"), many(SkillSummary), params=params)


def skill_info(instance_id: str, skill: str) -> Call[SkillInfo]:
    return call("GET", _instance(instance_id, f"/skills/{_seg(skill)}"), one(SkillInfo))


def install_skill(
    instance_id: str, slug: str, env: Mapping[str, str] | None, idempotency_key: str | None
) -> Call[SkillInstalled]:
    payload = body(SkillInstall.model_validate(_given(slug=slug, env=None if env is None else dict(env))))
    path = _instance(instance_id, "/skills/install")
    return call(
        "POST", path, one(SkillInstalled), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def update_skill(instance_id: str, skill: str, changes: Mapping[str, Any]) -> Call[None]:
    """`changes` holds only what changes (`enabled`, `apiKey`, `env`, `config`); a null value removes it."""
    payload = body(SkillUpdate.model_validate(dict(changes)))
    return call("PATCH", _instance(instance_id, f"/skills/{_seg(skill)}"), nothing, json=payload)
