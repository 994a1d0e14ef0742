"""Reading token usage off model answers as they stream past, in any of the three wire protocols, and the
model a call asked for. Which session a call belongs to is the agent runtime's to tell."""

from __future__ import annotations

import json
from typing import Any

from chowder.core.bounded import MAX_ANSWER_BYTES, LineSplitter
from chowder.modelgw import echo


def model_of(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        return "unknown"
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return str(model) if model else "unknown"


def usage_requested(tail: str, body: bytes) -> bytes:
    """The request as sent upstream: a streamed Chat Completions call (OpenAI's, Gemini's) asks for its usage,
    which these APIs leave out of a stream unless `stream_options.include_usage` is set. Whether it is set is the
    sandbox's choice (OpenClaw does not set it for Gemini), so without this such calls went unmetered. The caller
    gets one more chunk, with no choices, before `[DONE]`, as OpenAI documents for that option."""
    parsed = echo.parse_body(body) if echo.protocol_for("/" + tail.strip("/")) == "chat" else None
    if parsed is None or not echo.wants_stream(parsed):
        return body
    options = parsed.get("stream_options")
    options = options if isinstance(options, dict) else {}
    if options.get("include_usage") is True:
        return body
    return json.dumps({**parsed, "stream_options": {**options, "include_usage": True}}).encode()


class UsageMeter:
    """Fed every chunk of an answer; keeps the largest input/output token counts reported, which is the
    final figure in every protocol (Anthropic reports output cumulatively, OpenAI once at the end).

    Input counts every token the provider read: Anthropic reports the tokens written to and read from its prompt
    cache apart from `input_tokens`, and they are input all the same (billed at their own rates); OpenAI's
    `prompt_tokens` already include its cached ones."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self._lines = LineSplitter(MAX_ANSWER_BYTES)
        self._saw_events = False
        self._whole = bytearray()

    def feed(self, chunk: bytes) -> None:
        """A line over MAX_ANSWER_BYTES is skipped (the answer itself passes on untouched); so is the whole of a
        larger non-streamed answer."""
        if len(self._whole) < MAX_ANSWER_BYTES:
            self._whole.extend(chunk)
        for line in self._lines.feed(chunk).split(b"\n"):
            if line.startswith(b"data:"):
                self._saw_events = True
                self._take_json(line[5:].strip())

    def finish(self) -> None:
        """A non-streamed answer is one JSON document."""
        if not self._saw_events:
            self._take_json(bytes(self._whole))

    def _take_json(self, raw: bytes) -> None:
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if isinstance(payload, dict):
            self._take(payload)

    def _take(self, payload: dict[str, Any]) -> None:
        for holder in (payload, payload.get("message"), payload.get("response")):
            usage = holder.get("usage") if isinstance(holder, dict) else None
            if isinstance(usage, dict):
                read = _count(usage, "input_tokens", "prompt_tokens") + sum(_count(usage, name) for name in _CACHED)
                self.input_tokens = max(self.input_tokens, read)
                self.output_tokens = max(self.output_tokens, _count(usage, "output_tokens", "completion_tokens"))


# Anthropic's prompt-cache input, reported beside `input_tokens` (which leaves it out).
_CACHED = ("cache_creation_input_tokens", "cache_read_input_tokens")


def _count(usage: dict[str, Any], *names: str) -> int:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int):
            return value
    return 0
