"""Messaging channels: the catalog (no key needed) and what an instance has switched on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from chowder.api.deps import State, require
from chowder.domain.channels import channel_named, channel_states, connect
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.runtime import ChannelSpec, LoginQr
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
    agent = await state.instances.agent(principal, instance_id)
    return [
        ChannelSummary(channel=channel.id, connection_type=channel.connection_type, enabled=enabled)
        for channel, enabled in await channel_states(agent)
    ]


@router.get("/v1/instances/{instance_id}/channels/{channel}/status")
async def channel_status(instance_id: str, channel: str, principal: CanManageChannels, state: State) -> ChannelStatus:
    """Live, from the gateway itself: whether the channel is switched on and actually connected."""
    found = channel_named(state.runtime, channel)
    live = await (await state.instances.agent(principal, instance_id)).channel_status(found)
    return ChannelStatus(channel=found.id, enabled=live.enabled, connected=live.connected, details=live.details)


@router.post("/v1/instances/{instance_id}/channels/{channel}/connect", response_model_exclude_unset=True)
async def connect_channel(
    instance_id: str, channel: str, body: ChannelConnect, principal: CanManageChannels, state: State
) -> ChannelConnected:
    """Writes the channel (direct messages only from paired senders) into the live config; answers once the
    gateway applied it (the first connect of a plugin channel restarts the gateway, ~20 s). Whether it actually
    reached the service shows in /status. WhatsApp answers with the gateway's login QR."""
    found = channel_named(state.runtime, channel)
    return _connected(found, await connect(state.instances, principal, instance_id, found, body.config))


@router.post("/v1/instances/{instance_id}/channels/{channel}/disconnect", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect_channel(instance_id: str, channel: str, principal: CanManageChannels, state: State) -> Response:
    """Switched off; credentials are kept."""
    found = channel_named(state.runtime, channel)
    await (await state.instances.agent(principal, instance_id)).disconnect_channel(found)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/instances/{instance_id}/channels/{channel}/pair")
async def pair_channel(
    instance_id: str, channel: str, body: PairRequest, principal: CanManageChannels, state: State
) -> Paired:
    """Approves the code the bot sent an unknown sender, with the agent's own pairing command inside the
    sandbox; 404 with the agent's reason for a code it has no request for."""
    found = channel_named(state.runtime, channel)
    agent = await state.instances.agent(principal, instance_id)
    output = await agent.approve_pairing(found.id, body.code)
    return Paired(channel=found.id, code=body.code, status="paired", output=output)


@router.get("/v1/instances/{instance_id}/channels/{channel}")
async def channel_info(instance_id: str, channel: str, state: State) -> ChannelInfo:
    """What connecting a channel asks for, to build a setup form. Needs no key and reveals nothing about the
    instance: the answer is the same for every instance id."""
    found = channel_named(state.runtime, channel)
    return ChannelInfo(channel=found.id, connection_type=found.connection_type, required_fields=found.required_fields)


def _connected(channel: ChannelSpec, qr: LoginQr | None) -> ChannelConnected:
    """An interactive channel waits for its QR to be scanned; any other is connected once written."""
    if qr is None:
        return ChannelConnected(channel=channel.id, status="connected", message="Channel connected successfully.")
    return ChannelConnected(
        channel=channel.id,
        status="awaiting_scan",
        message=qr.message,
        qr_data=qr.data,
        qr_image_base64=qr.image_base64,
    )
