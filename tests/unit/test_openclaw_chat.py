"""OpenClaw's side of chat: how a turn is addressed to its gateway."""

from __future__ import annotations

from chowder.domain.ports.runtime import GatewayAccess
from chowder.runtime.openclaw.chat import chat_request


def test_a_turn_goes_to_the_agent_target_with_model_and_session_in_headers() -> None:
    body = {"model": "claude-x", "input": "hi", "stream": True}
    request = chat_request(GatewayAccess("http://10.231.0.2:18789", "gw-token"), "user:42", "anthropic/claude-x", body)
    assert request.url == "http://10.231.0.2:18789/v1/responses"
    assert request.headers == {
        "Authorization": "Bearer gw-token",
        "x-openclaw-session-key": "user:42",
        "x-openclaw-model": "anthropic/claude-x",
    }
    assert request.body == {"model": "openclaw", "input": "hi", "stream": True}
    assert body["model"] == "claude-x", "the caller's body is left as it was"
    assert "gw-token" not in repr(request)
