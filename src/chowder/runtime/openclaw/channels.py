"""The messaging channels an instance can connect, as the public API names them, where each one's settings
live in OpenClaw's config, and how the gateway reports them and logs one in (chowder-api.md 7.6/7.6a,
openclaw-runtime.md 13.1)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from chowder.core.errors import ProviderError
from chowder.domain.ports.runtime import ChannelSpec, ChannelStatus, GatewayAccess, LoginQr
from chowder.runtime.openclaw import rpc

_PLUGIN_LOAD_S = 30.0
_LOGIN_TIMEOUT_S = 90.0
# What `channels.status` says of an account that a client may see.
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


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel of the catalog, with OpenClaw's name for each public field and whether it is a plugin."""

    id: str
    connection_type: Literal["token", "interactive"]
    required_fields: dict[str, str]
    field_names: dict[str, str]
    external_plugin: bool = True

    def enabled_in(self, config: dict[str, Any]) -> bool:
        """On when its section exists and is not switched off, and (for plugins) the plugin is trusted."""
        section = config.get("channels", {}).get(self.id)
        if not isinstance(section, dict) or section.get("enabled") is False:
            return False
        if not self.external_plugin:
            return True
        entry = config.get("plugins", {}).get("entries", {}).get(self.id, {})
        return isinstance(entry, dict) and entry.get("enabled") is True


CHANNELS: dict[str, Channel] = {
    channel.id: channel
    for channel in (
        Channel(
            "telegram",
            "token",
            {"token": "Your Telegram bot token from @BotFather."},
            {"token": "botToken"},
            external_plugin=False,
        ),
        Channel("discord", "token", {"token": "Your Discord bot token from the Developer Portal."}, {"token": "token"}),
        Channel(
            "slack",
            "token",
            {"bot_token": "Your Slack bot token (xoxb-…).", "app_token": "Your Slack app-level token (xapp-…)."},
            {"bot_token": "botToken", "app_token": "appToken"},
        ),
        Channel("whatsapp", "interactive", {}, {}),
        Channel(
            "googlechat",
            "token",
            {
                "audience_type": "How Google Chat addresses the app: app-url or project-number.",
                "audience": "The app URL or project number matching audience_type.",
            },
            {"audience_type": "audienceType", "audience": "audience", "service_account": "serviceAccount"},
        ),
        Channel(
            "signal",
            "token",
            {"account": "The Signal account's phone number, in E.164 form (+15551234567)."},
            {"account": "account"},
        ),
        Channel(
            "matrix",
            "token",
            {
                "homeserver": "Your Matrix homeserver URL (https://matrix.example.org).",
                "user_id": "The bot's Matrix user id (@bot:example.org).",
                "access_token": "An access token for that user.",
            },
            {"homeserver": "homeserver", "user_id": "userId", "access_token": "accessToken"},
        ),
        Channel(
            "msteams",
            "token",
            {
                "app_id": "The Azure bot's application (client) id.",
                "app_password": "The Azure bot's client secret.",
                "tenant_id": "Your Microsoft Entra tenant id.",
            },
            {"app_id": "appId", "app_password": "appPassword", "tenant_id": "tenantId"},
        ),
        Channel(
            "mattermost",
            "token",
            {
                "bot_token": "A Mattermost bot account's access token.",
                "base_url": "Your Mattermost server URL (https://chat.example.org).",
            },
            {"bot_token": "botToken", "base_url": "baseUrl"},
        ),
        Channel("nostr", "token", {}, {"private_key": "privateKey"}),
        Channel(
            "line",
            "token",
            {
                "channel_access_token": "The LINE channel's access token.",
                "channel_secret": "The LINE channel's secret.",
            },
            {"channel_access_token": "channelAccessToken", "channel_secret": "channelSecret"},
        ),
    )
}
CATALOG: Mapping[str, ChannelSpec] = {
    channel.id: ChannelSpec(channel.id, channel.connection_type, channel.required_fields)
    for channel in CHANNELS.values()
}


def connect_patch(channel: Channel, fields: dict[str, Any]) -> dict[str, Any]:
    """The config patch that switches a channel on with the given settings (public names mapped to
    OpenClaw's, other keys passed as written), DM policy `pairing`, and its plugin trusted."""
    section: dict[str, Any] = {"enabled": True}
    for name, value in fields.items():
        section[channel.field_names.get(name, name)] = value
    if channel.id == "matrix":
        section["dm"] = {"policy": "pairing"}
    else:
        section["dmPolicy"] = "pairing"
    if channel.id == "nostr" and "privateKey" not in section:
        section["privateKey"] = secrets.token_hex(32)
    patch: dict[str, Any] = {"channels": {channel.id: section}}
    if channel.external_plugin:
        patch["plugins"] = {"entries": {channel.id: {"enabled": True}}}
    return patch


def disconnect_patch(channel: Channel) -> dict[str, Any]:
    """Switched off; its credentials stay, so connecting again needs none."""
    return {"channels": {channel.id: {"enabled": False}}}


def status_of(channel_id: str, payload: dict[str, Any]) -> ChannelStatus:
    """One channel, from the gateway's `channels.status` payload: on if any account is, connected if any is,
    and the first account's details."""
    accounts = [a for a in payload.get("channelAccounts", {}).get(channel_id, []) if isinstance(a, dict)]
    if not accounts:
        return ChannelStatus(False, False, {})
    enabled = any(a.get("enabled", True) and a.get("configured", True) for a in accounts)
    connected = any(a.get("connected") is True for a in accounts)
    first = accounts[0]
    return ChannelStatus(enabled, connected, {key: first[key] for key in _DETAIL_KEYS if first.get(key) is not None})


async def live_status(http: httpx.AsyncClient, gateway: GatewayAccess, channel_id: str) -> ChannelStatus:
    """Admin RPC `channels.status` without probing the services (~0.1 s)."""
    payload = await rpc.call(http, gateway.url, gateway.token, "channels.status", {"probe": False})
    return status_of(channel_id, payload)


async def start_login(http: httpx.AsyncClient, gateway: GatewayAccess, channel_id: str) -> LoginQr:
    """`web.login.start`, retried while the channel's plugin is still loading (a hot reload just after the
    connect patch); ProviderError with the gateway's words when it produced no QR."""
    deadline = time.monotonic() + _PLUGIN_LOAD_S
    while True:
        try:
            payload = await rpc.call(
                http, gateway.url, gateway.token, "web.login.start", {"channel": channel_id}, _LOGIN_TIMEOUT_S
            )
            break
        except ProviderError as exc:
            if "provider is not available" not in str(exc.detail) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    data_url = str(payload.get("qrDataUrl") or "")
    message = payload.get("message")
    if "base64," not in data_url:
        raise ProviderError(str(message or f"The gateway produced no {channel_id} login QR."))
    return LoginQr(data_url.partition("base64,")[2], payload.get("qrData"), message)
