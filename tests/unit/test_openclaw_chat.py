"""OpenClaw's side of chat: how a turn is addressed to its gateway, and what its model calls carry."""

from __future__ import annotations

import json

from chowder.domain.ports.runtime import GatewayAccess
from chowder.runtime.openclaw.chat import chat_request
from chowder.runtime.openclaw.model_calls import session_of_model_call, user_words


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


def test_the_session_comes_from_the_newest_runtime_marker() -> None:
    body = json.dumps(
        {
            "model": "claude-x",
            "messages": [
                {"role": "user", "content": "old\n\nRuntime: agent=main | session=agent:main:alice | x"},
                {"role": "user", "content": "new\n\nRuntime: agent=main | session=agent:main:user:42 | model=m"},
            ],
        }
    ).encode()
    assert session_of_model_call(body) == "user:42"
    assert session_of_model_call(b'{"model": "x"}') is None


def test_user_words_drop_what_openclaw_wraps_around_them() -> None:
    wrapped = "[Mon 2026-11-23 00:22 UTC] hello there\n\nRuntime: agent=main | session=agent:main:main"
    assert user_words(wrapped) == "hello there"
    context = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nActive exec sessions: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"
    assert user_words(context) == ""
    assert user_words("[x] y") == "[x] y", "only a timestamp prefix is dropped"
