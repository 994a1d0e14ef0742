"""A session's export: JSON Lines, a header line naming the format, then one message per line, oldest first.

    {"format": "chowder.session", "version": 1, "session_id": "...", "exported_at": "...", "message_count": 2}
    {"role": "user", "timestamp": "...", "content": [{"type": "text", "text": "hi"}], ...}

A message is what `GET .../sessions/{id}` lists: `role` (`user`, `assistant`, `toolResult`), `timestamp`,
`content` parts (`text`; `toolCall` with `id`, `name`, `arguments`; `image` with base64 `data` and `mimeType`)
and, where they apply, `model`, `provider`, `api`, `stop_reason`, `tool_call_id`, `tool_name`, `is_error`; `id`
and `text` (the text parts joined) are informative and ignored on import.

An import is untrusted: every line is checked against this form and only its known fields are kept (so nothing
but conversation reaches the agent's store), its bounds hold, and any failure is a BadRequest naming the line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest
from chowder.domain.ports.sessions import PART_FIELDS, ROLES, Message

FORMAT = "chowder.session"
VERSION = 1
MAX_MESSAGES = 10_000
_MAX_PARTS = 1_000
_MAX_NAME_CHARS = 256
_NAMES = ("model", "provider", "api", "stop_reason", "tool_call_id", "tool_name")
_INFORMATIVE = frozenset({"id", "text"})
_MESSAGE_FIELDS = frozenset({"role", "timestamp", "content", "is_error", *_NAMES}) | _INFORMATIVE


def export_lines(session_id: str, messages: list[Message]) -> Iterator[bytes]:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "session_id": session_id,
        "exported_at": utcnow().isoformat(),
        "message_count": len(messages),
    }
    for line in (header, *messages):
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def parse(body: bytes) -> list[Message]:
    """The export's messages, each reduced to its known fields; BadRequest naming the first line at fault."""
    try:
        lines = [(n, line) for n, line in enumerate(body.decode("utf-8").splitlines(), start=1) if line.strip()]
    except UnicodeDecodeError:
        raise BadRequest("The export is not UTF-8 text.") from None
    if not lines:
        raise BadRequest("The export is empty; it must start with its header line.")
    first, header = lines[0]
    _check_header(_object(header, first), first)
    if len(lines) == 1:
        raise BadRequest("The export holds no messages.")
    if len(lines) - 1 > MAX_MESSAGES:
        raise BadRequest(f"The export holds {len(lines) - 1} messages; at most {MAX_MESSAGES} can be imported.")
    messages: list[Message] = []
    calls: set[str] = set()
    for number, line in lines[1:]:
        message = _message(_object(line, number), number)
        calls.update(part["id"] for part in message["content"] if part["type"] == "toolCall")
        # A tool result the model never asked for is one its provider refuses: every later turn would fail.
        if message["role"] == "toolResult" and message["tool_call_id"] not in calls:
            raise BadRequest(f"Line {number}: tool_call_id {message['tool_call_id']!r} answers no earlier toolCall.")
        messages.append(message)
    return messages


def _object(line: str, number: int) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"Line {number}: not valid JSON ({exc.msg}).") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"Line {number}: must be a JSON object.")
    return parsed


def _check_header(header: dict[str, Any], number: int) -> None:
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise BadRequest(f'Line {number}: must be the header {{"format": "{FORMAT}", "version": {VERSION}, ...}}.')


def _message(line: dict[str, Any], number: int) -> Message:
    def fail(reason: str) -> BadRequest:
        return BadRequest(f"Line {number}: {reason}")

    if unknown := sorted(set(line) - _MESSAGE_FIELDS):
        raise fail(f"unknown field(s) {', '.join(unknown)}.")
    if line.get("role") not in ROLES:
        raise fail(f"role must be one of {', '.join(sorted(ROLES))}.")
    message: Message = {"role": line["role"], "timestamp": _timestamp(line.get("timestamp"), fail)}
    content = line.get("content")
    if not isinstance(content, list) or not content or len(content) > _MAX_PARTS:
        raise fail(f"content must be a list of 1 to {_MAX_PARTS} parts.")
    message["content"] = [_part(part, fail) for part in content]
    for name in _NAMES:
        value = line.get(name)
        if value is not None:
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_NAME_CHARS:
                raise fail(f"{name} must be a string of 1 to {_MAX_NAME_CHARS} characters.")
            message[name] = value
    if (is_error := line.get("is_error")) is not None:
        if not isinstance(is_error, bool):
            raise fail("is_error must be true or false.")
        message["is_error"] = is_error
    if message["role"] == "toolResult" and not ("tool_call_id" in message and "tool_name" in message):
        raise fail("a toolResult message needs tool_call_id and tool_name.")
    return message


def _timestamp(value: Any, fail: Callable[[str], BadRequest]) -> str:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise fail("timestamp must be an ISO 8601 date-time.")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _part(part: Any, fail: Callable[[str], BadRequest]) -> dict[str, Any]:
    fields = PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
    if fields is None:
        raise fail(f"each content part must be an object of type {', '.join(PART_FIELDS)}.")
    if set(part) - {"type", *fields}:
        raise fail(f"a {part['type']} part holds only {', '.join(['type', *fields])}.")
    for name, kind in fields.items():
        if not isinstance(part.get(name), kind):
            raise fail(f"a {part['type']} part needs {name} ({'object' if kind is dict else 'string'}).")
    return dict(part)
