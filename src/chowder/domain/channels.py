"""Which channels an instance has switched on, read from its live OpenClaw config."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from chowder.core.errors import ProviderError, Unprocessable
from chowder.domain.agent import RunningAgent
from chowder.domain.files import Workspace
from chowder.domain.ports.runtime import GatewayAccess
from chowder.runtime.openclaw import rpc
from chowder.runtime.openclaw.channels import CHANNELS, Channel, connect_patch, disconnect_patch, missing_fields
from chowder.runtime.openclaw.runtime import read_config

_PLUGIN_LOAD_S = 30.0
_LOGIN_TIMEOUT_S = 90.0


async def channel_states(workspace: Workspace) -> list[tuple[Channel, bool]]:
    config = await read_config(workspace.provider, workspace.sandbox_id) or {}
    return [(channel, channel.enabled_in(config)) for channel in CHANNELS.values()]


def status_of(channel: Channel, payload: dict[str, Any]) -> tuple[bool, bool, dict[str, Any]]:
    """(enabled, connected, details) of one channel from the gateway's `channels.status` payload."""
    accounts = [a for a in payload.get("channelAccounts", {}).get(channel.id, []) if isinstance(a, dict)]
    if not accounts:
        return False, False, {}
    enabled = any(a.get("enabled", True) and a.get("configured", True) for a in accounts)
    connected = any(a.get("connected") is True for a in accounts)
    first = accounts[0]
    details = {key: first[key] for key in _DETAIL_KEYS if first.get(key) is not None}
    return enabled, connected, details


_DETAIL_KEYS = (
    "accountId",
    "lifecycle",
    "running",
    "mode",
    "stateReason",
    "lastError",
    "lastConnectedAt",
    "lastInboundAt",
    "lastOutboundAt",
    "reconnectAttempts",
    "healthState",
)


async def live_status(
    http: httpx.AsyncClient, gateway: GatewayAccess, channel: Channel
) -> tuple[bool, bool, dict[str, Any]]:
    """Asked of the gateway itself (admin RPC `channels.status`, ~0.1 s), not read from our records."""
    payload = await rpc.call(http, gateway.url, gateway.token, "channels.status", {"probe": False})
    return status_of(channel, payload)


async def connect(agent: RunningAgent, channel: Channel, fields: dict[str, Any]) -> bool:
    """Writes the channel into the live config; returns once the gateway has applied it. A missing required
    field, or a field OpenClaw's schema refuses, is a 422 naming it; nothing is written then. True when the
    channel's plugin loads only after a restart (the first connect of a plugin channel)."""
    if missing := missing_fields(channel, fields):
        raise Unprocessable(f"Missing required field(s) for channel '{channel.id}': {', '.join(missing)}.")
    try:
        return await agent.patch_config(connect_patch(channel, fields))
    except rpc.ConfigRefused as exc:
        raise Unprocessable(f"OpenClaw refused the channel settings: {exc.detail}") from exc


@dataclass(frozen=True, slots=True)
class LoginQr:
    image_base64: str
    data: str | None
    message: str | None


async def start_login(http: httpx.AsyncClient, gateway: GatewayAccess, channel: Channel) -> LoginQr:
    """An interactive channel's (WhatsApp's) login QR, from the gateway. It exists only once the service
    answered the gateway; when it cannot (no egress), a 502 with the gateway's words."""
    deadline = time.monotonic() + _PLUGIN_LOAD_S
    while True:
        try:
            payload = await rpc.call(
                http, gateway.url, gateway.token, "web.login.start", {"channel": channel.id}, _LOGIN_TIMEOUT_S
            )
            break
        except ProviderError as exc:
            # The plugin loads by hot reload just after the patch; until then it offers no login provider.
            if "provider is not available" not in str(exc.detail) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    data_url = str(payload.get("qrDataUrl") or "")
    message = payload.get("message")
    if "base64," not in data_url:
        raise ProviderError(str(message or f"The gateway produced no {channel.id} login QR."))
    return LoginQr(data_url.partition("base64,")[2], payload.get("qrData"), message)


async def disconnect(agent: RunningAgent, channel: Channel) -> None:
    """Switched off (a hot reload); its plugin stays trusted, so connecting again needs no restart."""
    await agent.patch_config(disconnect_patch(channel))
