"""Chat: the OpenAI-Responses-compatible routes, on the main session or a named one."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from chowder.api.deps import State, require
from chowder.domain import chat
from chowder.domain.models import Permission, Principal
from chowder.proxy.cap_failures import cap_named
from chowder.proxy.responses import send_turn
from chowder.schemas.responses import ResponsesRequest

router = APIRouter(tags=["responses"])

CanInteract = Annotated[Principal, Depends(require(Permission.INTERACT))]


@router.post("/v1/instances/{instance_id}/responses")
async def create_response(instance_id: str, body: ResponsesRequest, principal: CanInteract, state: State) -> Response:
    """A turn in the instance's main session."""
    return await _turn(state, principal, instance_id, chat.MAIN_SESSION, body)


@router.post("/v1/instances/{instance_id}/session/{session_id}/responses")
async def create_session_response(
    instance_id: str, session_id: str, body: ResponsesRequest, principal: CanInteract, state: State
) -> Response:
    """A turn in a named session: created on first use, isolated from every other session."""
    return await _turn(state, principal, instance_id, chat.check_session_id(session_id), body)


async def _turn(
    state: State, principal: Principal, instance_id: str, session_id: str, body: ResponsesRequest
) -> Response:
    await state.power.ready(principal.organization_id, instance_id)
    turn = await state.chat.prepare_turn(principal.organization_id, instance_id, body.model, principal.key_id)
    answer = await send_turn(
        state.http,
        state.runtime,
        turn,
        session_id,
        body.model_dump(),
        state.settings.response_timeout_s,
        state.sessions.hold(turn.instance_id, session_id, principal.key_id),
    )
    return await cap_named(answer, partial(state.chat.cap_reached, principal.organization_id, principal.key_id))
