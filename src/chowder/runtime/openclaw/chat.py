"""A chat turn as an OpenClaw gateway takes it, on its OpenAI-compatible Responses endpoint.

The gateway's `model` names an agent target (`openclaw`), so the model the caller chose travels as
`x-openclaw-model: <provider>/<model>`, and the session as `x-openclaw-session-key`. The body is translated to
OpenClaw's forms (`chat_inputs`)."""

from __future__ import annotations

from typing import Any

import httpx

from chowder.core.bounded import IDENTITY
from chowder.core.errors import GATEWAY_UNAVAILABLE, GatewayUnavailable, ProviderError
from chowder.domain.ports.runtime import ChatRequest, GatewayAccess
from chowder.runtime.openclaw.chat_inputs import gateway_body

AGENT_TARGET = "openclaw"
RESPONSES_PATH = "/v1/responses"
_WARM_UP_S = 120.0


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


async def warm_up(http: httpx.AsyncClient, gateway: GatewayAccess, model_ref: str, session_id: str) -> None:
    """One short turn on `session_id`: OpenClaw loads most of its agent runtime on a gateway's first turn, which a
    user's first turn would otherwise wait for. The model calls it causes must be answered without a provider (the
    control plane knows the session). Raises GatewayUnavailable or ProviderError."""
    chat = chat_request(gateway, session_id, model_ref, {"input": "ping"})
    try:
        answer = await http.post(chat.url, json=chat.body, headers={**chat.headers, **IDENTITY}, timeout=_WARM_UP_S)
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(GATEWAY_UNAVAILABLE) from exc
    if answer.status_code != 200:
        raise ProviderError(f"The warm-up turn failed ({answer.status_code}): {answer.text[:200]}")
