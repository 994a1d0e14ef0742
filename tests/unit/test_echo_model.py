"""The echo model's answers, as encoded for the wire, carry exactly the usage the gateway's meter reads off
them (the wire shapes themselves are checked through the fake upstream in tests/fakes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chowder.modelgw import echo
from chowder.modelgw.usage import UsageMeter

CONVERSATIONS: dict[echo.WireProtocol, dict[str, Any]] = {
    "anthropic": {"model": "claude-x", "system": "be brief", "messages": [{"role": "user", "content": "hi there"}]},
    "responses": {"model": "gpt-x", "instructions": "be brief", "input": "hi there"},
    "chat": {
        "model": "gemini-x",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}],
        "stream_options": {"include_usage": True},
    },
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", list(CONVERSATIONS))
def test_the_meter_reads_the_echo_models_usage_off_its_answer(protocol: echo.WireProtocol, stream: bool) -> None:
    body = {**CONVERSATIONS[protocol], "stream": stream}
    result = echo.answer(protocol, body, str.strip)
    assert result.text == f"ECHO[{body['model']}] turns=1 msgs=1 last=hi there history="
    assert (result.input_tokens, result.output_tokens) == (4, len(result.text.split()))
    assert echo.wants_stream(body) is stream
    chunks = (
        list(echo.sse_answer(protocol, body, result))
        if stream
        else [json.dumps(echo.json_answer(protocol, result)).encode()]
    )
    meter = UsageMeter()
    for chunk in chunks:
        meter.feed(chunk)
    meter.finish()
    assert (meter.input_tokens, meter.output_tokens) == (result.input_tokens, result.output_tokens)


@pytest.mark.parametrize(
    ("path", "protocol"),
    [
        ("/anthropic/v1/messages", "anthropic"),
        ("/openai/v1/responses", "responses"),
        ("/gemini/chat/completions", "chat"),
        ("/openai/v1/models", None),
    ],
)
def test_protocol_is_told_by_the_paths_suffix(path: str, protocol: str | None) -> None:
    assert echo.protocol_for(path) == protocol


def test_only_a_json_object_is_a_body() -> None:
    assert echo.parse_body(b'{"model": "m"}') == {"model": "m"}
    assert echo.parse_body(b"[1]") is None
    assert echo.parse_body(b"{oops") is None
