"""A session's JSONL export and its import's checks: what an export holds comes back on import, and an import
that is not one (or carries anything but conversation) is refused with the line at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chowder.core.errors import BadRequest
from chowder.domain import session_jsonl
from chowder.domain.ports.sessions import Message
from chowder.runtime.openclaw.sessions import _exported, _stored, _summary

HEADER = {"format": "chowder.session", "version": 1, "session_id": "s"}
USER = {"role": "user", "timestamp": "2026-12-04T18:34:14.172000+00:00", "content": [{"type": "text", "text": "hi"}]}


def _body(*lines: Any) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


def _refusal(body: bytes) -> str:
    with pytest.raises(BadRequest) as refused:
        session_jsonl.parse(body)
    return str(refused.value.detail)


# As OpenClaw 2026.9 records a turn with a client tool call (read from a real gateway's store).
OPENCLAW_TURN = [
    {"id": "e1", "message": {"role": "user", "content": "weather?", "timestamp": 1796409253828,
                             "__openclaw": {"senderIsOwner": True}, "idempotencyKey": "k:user"}},
    {"id": "e2", "message": {"role": "assistant", "api": "anthropic-messages", "provider": "anthropic",
                             "model": "claude-sonnet-4-20250514", "stopReason": "toolUse", "timestamp": 1796409259373,
                             "usage": {"input": 3915}, "responseId": "msg_1",
                             "content": [{"type": "thinking", "thinking": "hm", "thinkingSignature": "sig"},
                                         {"type": "toolCall", "id": "toolu_1", "name": "get_weather",
                                          "arguments": {"location": "SF"}}]}},
    {"id": "e3", "message": {"role": "toolResult", "toolCallId": "toolu_1", "toolName": "get_weather",
                             "isError": False, "timestamp": 1796409259627, "details": {"status": "pending"},
                             "content": [{"type": "text", "text": "sunny"}]}},
    {"id": "e4", "message": {"role": "assistant", "content": [{"type": "thinking", "thinking": "only this"}],
                             "timestamp": 1796409259700}},
]  # fmt: skip


def test_an_openclaw_transcript_exports_and_imports_back_to_what_openclaw_recorded() -> None:
    exported = [message for entry in OPENCLAW_TURN if (message := _exported(entry)) is not None]
    assert [m["id"] for m in exported] == ["e1", "e2", "e3"]  # a message of nothing but thinking is left out
    assert exported[0]["text"] == "weather?"
    assert exported[0]["content"] == [{"type": "text", "text": "weather?"}]
    assert exported[1]["content"] == [
        {"type": "toolCall", "id": "toolu_1", "name": "get_weather", "arguments": {"location": "SF"}}
    ]
    assert exported[2]["tool_call_id"] == "toolu_1" and exported[2]["is_error"] is False
    body = b"".join(session_jsonl.export_lines("s", exported))
    assert json.loads(body.splitlines()[0])["message_count"] == 3
    stored = [_stored(message) for message in session_jsonl.parse(body)]
    assert stored[0] == {"role": "user", "content": [{"type": "text", "text": "weather?"}], "timestamp": 1796409253828}
    assert stored[1]["content"] == exported[1]["content"] and stored[1]["stopReason"] == "toolUse"
    assert stored[1]["model"] == "claude-sonnet-4-20250514" and stored[1]["usage"]["input"] == 0
    assert {k: stored[2][k] for k in ("toolCallId", "toolName", "isError", "timestamp")} == {
        "toolCallId": "toolu_1",
        "toolName": "get_weather",
        "isError": False,
        "timestamp": 1796409259627,
    }
    # OpenClaw's internal fields never travel: neither in the export nor back into a store.
    assert all("__openclaw" not in line and "responseId" not in line for line in map(bytes.decode, body.splitlines()))


def test_a_naive_timestamp_is_utc_and_informative_fields_are_dropped() -> None:
    line = {**USER, "timestamp": "2026-12-04T18:34:14", "id": "x", "text": "hi"}
    parsed: list[Message] = session_jsonl.parse(_body(HEADER, line))
    assert parsed == [{"role": "user", "timestamp": "2026-12-04T18:34:14+00:00", "content": USER["content"]}]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "The export is empty; it must start with its header line."),
        (b"\xff\xfe", "The export is not UTF-8 text."),
        (_body(HEADER), "The export holds no messages."),
        (_body({"format": "chowder.session", "version": 2}, USER), "Line 1: must be the header"),
        (_body(USER, USER), "Line 1: must be the header"),
        (_body("[1]", USER), "Line 1: must be a JSON object."),
        (_body(HEADER, USER, "{oops"), "Line 3: not valid JSON"),
        (_body(HEADER, {**USER, "role": "system"}), "Line 2: role must be one of assistant, toolResult, user."),
        (_body(HEADER, {**USER, "timestamp": "yesterday"}), "Line 2: timestamp must be an ISO 8601 date-time."),
        (_body(HEADER, {**USER, "content": "hi"}), "Line 2: content must be a list of 1 to 1000 parts."),
        (_body(HEADER, {**USER, "content": []}), "Line 2: content must be a list of 1 to 1000 parts."),
        (_body(HEADER, {**USER, "__openclaw": {"senderIsOwner": True}}), "Line 2: unknown field(s) __openclaw."),
        (_body(HEADER, {**USER, "config": {}, "path": "../x"}), "Line 2: unknown field(s) config, path."),
        (
            _body(HEADER, {**USER, "content": [{"type": "text", "text": "a", "path": "/etc/passwd"}]}),
            "Line 2: a text part holds only type, text.",
        ),
        (
            _body(HEADER, {**USER, "content": [{"type": "thinking", "thinking": "a"}]}),
            "Line 2: each content part must be an object of type text, toolCall, image.",
        ),
        (
            _body(HEADER, {**USER, "content": [{"type": "toolCall", "id": "1", "name": "f", "arguments": "{}"}]}),
            "Line 2: a toolCall part needs arguments (object).",
        ),
        (_body(HEADER, {**USER, "model": 7}), "Line 2: model must be a string of 1 to 256 characters."),
        (_body(HEADER, {**USER, "is_error": "no"}), "Line 2: is_error must be true or false."),
        (
            _body(HEADER, {**USER, "role": "toolResult"}),
            "Line 2: a toolResult message needs tool_call_id and tool_name.",
        ),
        (
            _body(HEADER, USER, "", {**USER, "role": "toolResult", "tool_call_id": "t1", "tool_name": "f"}),
            "Line 4: tool_call_id 't1' answers no earlier toolCall.",
        ),
    ],
)
def test_an_import_that_is_not_an_export_is_refused_naming_the_line(body: bytes, detail: str) -> None:
    assert _refusal(body).startswith(detail)


def test_an_import_over_the_message_bound_is_refused_before_any_line_is_read() -> None:
    body = _body(HEADER, *[USER] * (session_jsonl.MAX_MESSAGES + 1))
    assert (
        _refusal(body) == f"The export holds {session_jsonl.MAX_MESSAGES + 1} messages; at most 10000 can be imported."
    )


def test_what_the_tenant_made_of_its_store_is_left_out_not_an_error() -> None:
    junk: list[Any] = [
        "text",
        {"id": 7, "message": "hi"},
        {"message": {"role": ["user"], "content": "hi"}},
        {"message": {"role": "system", "content": "hi"}},
        {"message": {"role": "user", "content": [{"type": "text", "text": 5}, {"type": ["x"]}, "part"]}},
    ]
    assert [_exported(entry) for entry in junk] == [None] * len(junk)
    odd = _exported({"id": 7, "message": {"role": "user", "content": "hi", "timestamp": "soon", "model": 3}})
    assert odd == {"id": None, "role": "user", "timestamp": "1970-01-01T00:00:00+00:00", "text": "hi",
                   "content": [{"type": "text", "text": "hi"}]}  # fmt: skip
    rows: list[Any] = [None, {"key": "agent:other:x", "message_count": 1}, {"key": "agent:main:x"}, "row"]
    assert [_summary(row) for row in rows] == [None] * len(rows)
    listed = _summary({"key": "agent:main:x", "message_count": 2, "created_at": 1796409254993})
    assert listed is not None and (listed.session_id, listed.message_count) == ("x", 2)
    assert listed.created_at.year == 2026 and listed.last_activity_at.year == 1970
