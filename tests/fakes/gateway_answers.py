"""A gateway's Responses answers as OpenClaw (2026.9) writes them on its `/v1/responses` endpoint, recorded for
tests: required fields left out (`completed_at`, `instructions`, `tools`, content `annotations`, …), events without
sequence numbers, a function call item without its status, placeholder zero usage while the turn runs."""

from __future__ import annotations

import json
from typing import Any

NOW = 1_764_760_000
USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 17,
}
ZERO_USAGE = {**USAGE, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
MESSAGE_ID = "msg_5c0b2a36-3f0e-4d2b-9a53-0c8e5a3f1d11"
RESPONSE_ID = "resp_0e7f4e5c-8d7b-4b8e-a1a4-7f6f4b2f9c21"
TEXT = "ECHO turns=1 last=hello there"
# What the gateway answers to a non-streamed turn: no completed_at, instructions, tools, annotations, …
ANSWER: dict[str, Any] = {
    "id": RESPONSE_ID,
    "object": "response",
    "created_at": NOW - 2,
    "status": "completed",
    "model": "openclaw",
    "output": [
        {
            "type": "message",
            "id": MESSAGE_ID,
            "role": "assistant",
            "content": [{"type": "output_text", "text": TEXT}],
            "phase": "final_answer",
            "status": "completed",
        }
    ],
    "usage": USAGE,
}
# A turn that ended in a client tool call: the call's item has no status.
TOOL_ANSWER: dict[str, Any] = {
    **ANSWER,
    "output": [
        {
            "type": "function_call",
            "id": "call_1",
            "call_id": "toolu_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        }
    ],
}
_IN_PROGRESS = {
    "id": RESPONSE_ID,
    "object": "response",
    "created_at": NOW - 2,
    "status": "in_progress",
    "model": "openclaw",
    "output": [],
    "usage": ZERO_USAGE,
}
_PART = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
# What the gateway streams for one turn, event by event.
EVENTS: list[dict[str, Any]] = [
    {"type": "response.created", "response": _IN_PROGRESS},
    {"type": "response.in_progress", "response": _IN_PROGRESS},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "message", "id": MESSAGE_ID, "role": "assistant", "content": [], "status": "in_progress"},
    },
    {"type": "response.content_part.added", **_PART, "part": {"type": "output_text", "text": ""}},
    {"type": "response.output_text.delta", **_PART, "delta": "ECHO turns=1 "},
    {"type": "response.output_text.delta", **_PART, "delta": "last=hello there"},
    {"type": "response.output_text.done", **_PART, "text": TEXT},
    {"type": "response.content_part.done", **_PART, "part": {"type": "output_text", "text": TEXT}},
    {"type": "response.output_item.done", "output_index": 0, "item": ANSWER["output"][0]},
    {"type": "response.completed", "response": ANSWER},
]

_CALL = TOOL_ANSWER["output"][0]
# What the gateway streams for a turn that ended in a client tool call: an empty commentary message, then the
# call announced whole (its arguments already in `output_item.added`, no `function_call_arguments` events).
_COMMENTARY = {**ANSWER["output"][0], "content": [{"type": "output_text", "text": ""}], "phase": "commentary"}
TOOL_EVENTS: list[dict[str, Any]] = [
    *EVENTS[:4],
    {"type": "response.output_text.done", **_PART, "text": ""},
    {"type": "response.content_part.done", **_PART, "part": {"type": "output_text", "text": ""}},
    {"type": "response.output_item.done", "output_index": 0, "item": _COMMENTARY},
    {"type": "response.output_item.added", "output_index": 1, "item": {**_CALL, "status": "in_progress"}},
    {"type": "response.output_item.done", "output_index": 1, "item": {**_CALL, "status": "completed"}},
    {"type": "response.completed", "response": {**ANSWER, "output": [_COMMENTARY, {**_CALL, "status": "completed"}]}},
]


def sse(events: list[dict[str, Any]]) -> bytes:
    """The events as the gateway streams them, ending with `[DONE]`."""
    return (
        b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in events)
        + b"data: [DONE]\n\n"
    )
