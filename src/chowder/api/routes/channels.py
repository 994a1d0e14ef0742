"""Messaging channels: the catalog (no key needed) and what an instance has switched on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from chowder.api.deps import State, require
from chowder.core.errors import NotFound
from chowder.domain.channels import channel_states, connect, disconnect, live_status, start_login
from chowder.domain.models import Permission, Principal
from chowder.runtime.openclaw.channels import CHANNELS, Channel
from chowder.schemas.channels import (
    ChannelConnect,
    ChannelConnected,
    ChannelInfo,
    ChannelStatus,
    ChannelSummary,
    Paired,
    PairRequest,
)

router = APIRouter(tags=["channels"])

CanManageChannels = Annotated[Principal, Depends(require(Permission.CHANNELS))]


@router.get("/v1/instances/{instance_id}/channels")
async def list_channels(instance_id: str, principal: CanManageChannels, state: State) -> list[ChannelSummary]:
    """Every supported channel, with whether the instance's live config has it switched on."""
    workspace = await state.instances.workspace(principal, instance_id)
    return [
        ChannelSummary(channel=channel.id, connection_type=channel.connection_type, enabled=enabled)
        for channel, enabled in await channel_states(workspace)
    ]


@router.get("/v1/instances/{instance_id}/channels/{channel}/status")
async def channel_status(instance_id: str, channel: str, principal: CanManageChannels, state: State) -> ChannelStatus:
    """Live, from the gateway itself: whether the channel is switched on and actually connected."""
    found = _channel(channel)
    gateway = await state.instances.gateway(principal, instance_id)
    enabled, connected, details = await live_status(state.http, gateway, found)
    return ChannelStatus(channel=found.id, enabled=enabled, connected=connected, details=details)


@router.post("/v1/instances/{instance_id}/channels/{channel}/connect", response_model_exclude_unset=True)
async def connect_channel(
    instance_id: str, channel: str, body: ChannelConnect, principal: CanManageChannels, state: State
) -> ChannelConnected:
    """Writes the channel (DM policy `pairing`) into the live config; answers once the gateway applied it
    (the first connect of a plugin channel restarts the gateway, ~20 s). Whether it actually reached the
    service shows in /status. WhatsApp answers with the gateway's login QR."""
    found = _channel(channel)
    agent = await state.instances.agent(principal, instance_id)
    if await connect(agent, found, body.config):
        await state.instances.restart(principal, instance_id)
    if found.connection_type == "interactive":
        gateway = await state.instances.gateway(principal, instance_id)  # a restart gave it a new token
        qr = await start_login(state.http, gateway, found)
        return ChannelConnected(
            channel=found.id,
            status="awaiting_scan",
            message=qr.message,
            qr_data=qr.data,
            qr_image_base64=qr.image_base64,
        )
    return ChannelConnected(channel=found.id, status="connected", message="Channel connected successfully.")


@router.post("/v1/instances/{instance_id}/channels/{channel}/disconnect", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect_channel(instance_id: str, channel: str, principal: CanManageChannels, state: State) -> Response:
    """Switched off; credentials are kept."""
    found = _channel(channel)
    await disconnect(await state.instances.agent(principal, instance_id), found)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/instances/{instance_id}/channels/{channel}/pair")
async def pair_channel(
    instance_id: str, channel: str, body: PairRequest, principal: CanManageChannels, state: State
) -> Paired:
    """Approves the code the bot sent an unknown sender (DM policy `pairing`), with OpenClaw's own pairing
    command inside the sandbox; 404 with OpenClaw's reason for a code it has no request for."""
    found = _channel(channel)
    agent = await state.instances.agent(principal, instance_id)
    output = await agent.approve_pairing(found.id, body.code)
    return Paired(channel=found.id, code=body.code, status="paired", output=output)


@router.get("/v1/instances/{instance_id}/channels/{channel}")
def channel_info(instance_id: str, channel: str) -> ChannelInfo:
    """What connecting a channel asks for, to build a setup form. Needs no key and reveals nothing about the
    instance: the answer is the same for every instance id."""
    found = _channel(channel)
    return ChannelInfo(channel=found.id, connection_type=found.connection_type, required_fields=found.required_fields)


def _channel(name: str) -> Channel:
    found = CHANNELS.get(name)
    if found is None:
        raise NotFound(f"Unknown channel '{name}'. Supported: {', '.join(CHANNELS)}.")
    return found
