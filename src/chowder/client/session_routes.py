"""An instance's chat sessions as `Call`s (extension): list, transcript, delete, and the JSONL export that
`import_session` takes back, on this instance or another, to carry a conversation over."""

from __future__ import annotations

import httpx

from chowder.client.calls import Call, call, many, nothing, one
from chowder.client.routes import instance_path, segment
from chowder.schemas.sessions import SessionImported, SessionInfo, SessionTranscript


def _session(instance_id: str, session_id: str, tail: str = "") -> str:
    return instance_path(instance_id, f"/sessions/{segment(session_id)}{tail}")


def list_sessions(instance_id: str) -> Call[list[SessionInfo]]:
    """Newest activity first."""
    return call("GET", instance_path(instance_id, "/sessions"), many(SessionInfo))


def get_session(instance_id: str, session_id: str) -> Call[SessionTranscript]:
    return call("GET", _session(instance_id, session_id), one(SessionTranscript))


def delete_session(instance_id: str, session_id: str) -> Call[None]:
    return call("DELETE", _session(instance_id, session_id), nothing)


def export_session(instance_id: str, session_id: str) -> Call[bytes]:
    """The session as JSON Lines (a header line, then one message per line)."""
    return call("GET", _session(instance_id, session_id, "/export"), _content)


def import_session(
    instance_id: str, session_id: str, export: bytes, *, idempotency_key: str | None = None
) -> Call[SessionImported]:
    """`export` (as `export_session` gave it) becomes the history of this session, which must hold no messages."""
    headers = {"Content-Type": "application/x-ndjson"}
    path = _session(instance_id, session_id, "/import")
    parse = one(SessionImported)
    return call("POST", path, parse, content=export, headers=headers, idempotency_key=idempotency_key)


def _content(response: httpx.Response) -> bytes:
    return response.content
