"""Which channels an instance has switched on, read from its live OpenClaw config."""

from __future__ import annotations

import json

from chowder.core.errors import ProviderError
from chowder.domain.files import Workspace
from chowder.runtime.openclaw.channels import CHANNELS, Channel

CONFIG_FILE = "openclaw.json"


async def channel_states(workspace: Workspace) -> list[tuple[Channel, bool]]:
    raw = await workspace.provider.read_file(workspace.sandbox_id, CONFIG_FILE)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    return [(channel, channel.enabled_in(config)) for channel in CHANNELS.values()]
