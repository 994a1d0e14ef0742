"""A chat turn as an OpenClaw gateway takes it, on its OpenAI-compatible Responses endpoint.

The gateway's `model` names an agent target (`openclaw`), so the model the caller chose travels as
`x-openclaw-model: <provider>/<model>`, and the session as `x-openclaw-session-key`. The body is translated to
OpenClaw's forms (`chat_inputs`)."""

from __future__ import annotations

from typing import Any

from chowder.domain.ports.runtime import ChatRequest, GatewayAccess
from chowder.runtime.openclaw.chat_inputs import gateway_body

AGENT_TARGET = "openclaw"
RESPONSES_PATH = "/v1/responses"


def chat_request(gateway: GatewayAccess, session_id: str, model_ref: str, body: dict[str, Any]) -> ChatRequest:
    """BadRequest or PayloadTooLarge for a body OpenClaw would refuse for its inputs (`chat_inputs.gateway_body`)."""
    return ChatRequest(
        url=f"{gateway.url}{RESPONSES_PATH}",
        headers={
            "Authorization": f"Bearer {gateway.token}",
            "x-openclaw-session-key": session_id,
            "x-openclaw-model": model_ref,
        },
        body={**gateway_body(body), "model": AGENT_TARGET},
    )
