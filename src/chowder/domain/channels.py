"""Connecting an instance's agent to messaging channels: which channel a name means, what connecting requires,
and the restart or login that connecting may take."""

from __future__ import annotations

from typing import Any

from chowder.core.errors import NotFound, Unprocessable
from chowder.domain.agent import RunningAgent
from chowder.domain.instances import Instances
from chowder.domain.models import Principal
from chowder.domain.ports.runtime import AgentRuntime, ChannelSpec, LoginQr


def channel_named(runtime: AgentRuntime, name: str) -> ChannelSpec:
    """NotFound listing the supported channels for a name the runtime does not offer."""
    catalog = runtime.channels()
    found = catalog.get(name)
    if found is None:
        raise NotFound(f"Unknown channel '{name}'. Supported: {', '.join(catalog)}.")
    return found


async def channel_states(agent: RunningAgent) -> list[tuple[ChannelSpec, bool]]:
    """Every channel of the catalog, with whether the agent's current config has it switched on."""
    enabled = await agent.enabled_channels()
    return [(channel, channel.id in enabled) for channel in agent.runtime.channels().values()]


async def connect(
    instances: Instances, principal: Principal, instance_id: str, channel: ChannelSpec, fields: dict[str, Any]
) -> LoginQr | None:
    """Written into the running agent's settings, which it applies before this returns, restarted when the
    channel works only after a restart (~20 s); an interactive channel then answers with its login QR. A
    missing required field is a 422 naming it, and nothing is written."""
    agent = await instances.agent(principal, instance_id)
    if missing := [name for name in channel.required_fields if fields.get(name) in (None, "")]:
        raise Unprocessable(f"Missing required field(s) for channel '{channel.id}': {', '.join(missing)}.")
    if await agent.connect_channel(channel, fields):
        await instances.restart(principal, instance_id)
    if channel.connection_type != "interactive":
        return None
    agent = await instances.agent(principal, instance_id)  # a restart gave its gateway a new token
    return await agent.start_login(channel)
