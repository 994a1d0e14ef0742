"""The routes that reach an instance's agent as `Call`s: chat (main session or a named one, whole or streamed),
files, channels and skills. As in `routes.py`, each builder's signature is the SDK method's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import httpx

from chowder.client.calls import LONG_TIMEOUT_S, Call, body, call, many, nothing, one, raw
from chowder.client.routes import given, instance_path, segment
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
from chowder.schemas.responses import ResponseObject, ResponsesRequest
from chowder.schemas.skills import SkillInfo, SkillInstall, SkillInstalled, SkillSummary, SkillUpdate

# Chat.


def respond(
    instance_id: str,
    input: str | list[Any],
    *,
    model: str,
    session: str | None = None,
    idempotency_key: str | None = None,
    **fields: Any,
) -> Call[ResponseObject]:
    """One turn, in the main session or `session` (created on first use); `fields` are other Responses fields
    (`instructions`, `tools`, `previous_response_id`...), sent unchanged."""
    payload = _request(model, input, fields)
    path = _chat_path(instance_id, session)
    return call(
        "POST", path, one(ResponseObject), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def stream_response(
    instance_id: str, input: str | list[Any], *, model: str, session: str | None = None, **fields: Any
) -> Call[httpx.Response]:
    """The same turn answered as server-sent events (never retried: a stream is not replayable)."""
    payload = {**_request(model, input, fields), "stream": True}
    return call("POST", _chat_path(instance_id, session), raw, json=payload, timeout=LONG_TIMEOUT_S)


def _request(model: str, input: str | list[Any], fields: Mapping[str, Any]) -> Any:
    request = ResponsesRequest.model_validate({"model": model, "input": input, **fields})
    return request.model_dump(mode="json", exclude_unset=True)


def _chat_path(instance_id: str, session: str | None) -> str:
    return instance_path(instance_id, "/responses" if session is None else f"/session/{segment(session)}/responses")


# Files.


def list_files(instance_id: str, path: str = ".") -> Call[DirectoryListing]:
    return call("GET", instance_path(instance_id, "/files"), one(DirectoryListing), params={"path": path})


def read_file(instance_id: str, path: str) -> Call[str]:
    """A UTF-8 text file (up to 10 MiB); others raise and are read with `open` or `download`."""
    parse = one(FileContent)
    return call("GET", instance_path(instance_id, "/files/content"), parse, params={"path": path}).then(_content)


def write_file(instance_id: str, path: str, content: str) -> Call[None]:
    """Creates or overwrites, with missing parent directories."""
    payload = body(FileContent(path=path, content=content))
    return call("PUT", instance_path(instance_id, "/files/content"), nothing, json=payload)


def upload_file(
    instance_id: str, path: str, data: bytes | IO[bytes], *, idempotency_key: str | None = None
) -> Call[None]:
    """Any file, as multipart; a file object is streamed in chunks, not read whole."""
    name = path.rsplit("/", 1)[-1] or "file"
    return call(
        "POST",
        instance_path(instance_id, "/files/upload"),
        nothing,
        files={"file": (name, data, "application/octet-stream")},
        data={"path": path},
        timeout=LONG_TIMEOUT_S,
        idempotency_key=idempotency_key,
    )


def download_file(instance_id: str, path: str) -> Call[httpx.Response]:
    params = {"path": path}
    return call("GET", instance_path(instance_id, "/files/download"), raw, params=params, timeout=LONG_TIMEOUT_S)


def move_file(instance_id: str, source: str, destination: str, *, idempotency_key: str | None = None) -> Call[None]:
    """`mv` semantics, for files and directories."""
    payload = body(FileMove(source=source, destination=destination))
    path = instance_path(instance_id, "/files/move")
    return call("POST", path, nothing, json=payload, idempotency_key=idempotency_key)


def delete_file(instance_id: str, path: str) -> Call[None]:
    """A file, or a directory with everything in it."""
    return call("DELETE", instance_path(instance_id, "/files"), nothing, params={"path": path})


def make_directory(instance_id: str, path: str, *, idempotency_key: str | None = None) -> Call[None]:
    payload = body(DirectoryCreate(path=path))
    path_ = instance_path(instance_id, "/files/mkdir")
    return call("POST", path_, nothing, json=payload, idempotency_key=idempotency_key)


def _content(found: FileContent) -> str:
    return found.content


# Channels.


def _channel(instance_id: str, channel: str, tail: str = "") -> str:
    return instance_path(instance_id, f"/channels/{segment(channel)}{tail}")


def list_channels(instance_id: str) -> Call[list[ChannelSummary]]:
    return call("GET", instance_path(instance_id, "/channels"), many(ChannelSummary))


def channel_info(instance_id: str, channel: str) -> Call[ChannelInfo]:
    """The fields connecting asks for (needs no key)."""
    return call("GET", _channel(instance_id, channel), one(ChannelInfo))


def channel_status(instance_id: str, channel: str) -> Call[ChannelStatus]:
    return call("GET", _channel(instance_id, channel, "/status"), one(ChannelStatus))


def connect_channel(
    instance_id: str,
    channel: str,
    config: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> Call[ChannelConnected]:
    """Answers once the gateway applied it; WhatsApp answers `awaiting_scan` with its login QR."""
    payload = body(ChannelConnect(config=dict(config or {})))
    path = _channel(instance_id, channel, "/connect")
    return call(
        "POST", path, one(ChannelConnected), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def disconnect_channel(instance_id: str, channel: str, *, idempotency_key: str | None = None) -> Call[None]:
    """Switched off; its credentials are kept."""
    path = _channel(instance_id, channel, "/disconnect")
    return call("POST", path, nothing, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


def pair_channel(instance_id: str, channel: str, code: str, *, idempotency_key: str | None = None) -> Call[Paired]:
    """Approves the code the bot sent an unknown sender."""
    payload = body(PairRequest(code=code))
    path = _channel(instance_id, channel, "/pair")
    return call("POST", path, one(Paired), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


# Skills.


def list_skills(instance_id: str, *, eligible_only: bool = False) -> Call[list[SkillSummary]]:
    params = {"eligible_only": eligible_only}
    return call("GET", instance_path(instance_id, "/skills"), many(SkillSummary), params=params)


def skill_info(instance_id: str, skill: str) -> Call[SkillInfo]:
    return call("GET", instance_path(instance_id, f"/skills/{segment(skill)}"), one(SkillInfo))


def install_skill(
    instance_id: str, slug: str, *, env: Mapping[str, str] | None = None, idempotency_key: str | None = None
) -> Call[SkillInstalled]:
    """From ClawHub, inside the sandbox, then `env` applied."""
    payload = body(SkillInstall.model_validate(given(slug=slug, env=None if env is None else dict(env))))
    path = instance_path(instance_id, "/skills/install")
    return call(
        "POST", path, one(SkillInstalled), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key
    )


def update_skill(instance_id: str, skill: str, **changes: Any) -> Call[None]:
    """`enabled`, `apiKey`, `env`, `config`: only those given change; None removes a setting."""
    payload = body(SkillUpdate.model_validate(changes))
    return call("PATCH", instance_path(instance_id, f"/skills/{segment(skill)}"), nothing, json=payload)
