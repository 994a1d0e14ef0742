"""The messaging channels an instance can connect, as the public API names them, and where each one's
settings live in OpenClaw's config (chowder-api.md 7.6/7.6a, openclaw-runtime.md 13.1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    connection_type: str
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


def missing_fields(channel: Channel, fields: dict[str, Any]) -> list[str]:
    return [name for name in channel.required_fields if fields.get(name) in (None, "")]
