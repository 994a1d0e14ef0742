"""Sessions wire models: an instance's chat sessions and their transcripts (messages in the export's form,
`domain/session_jsonl.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chowder.schemas.common import Timestamp


class SessionInfo(BaseModel):
    session_id: str
    message_count: int
    created_at: Timestamp
    last_activity_at: Timestamp


class SessionMessage(BaseModel):
    """`content` parts keep the agent's own form: `text` {text}, `toolCall` {id, name, arguments}, `image`
    {data, mimeType}; `text` joins the text parts."""

    id: str | None = None
    role: str
    timestamp: Timestamp
    text: str
    content: list[dict[str, Any]]
    model: str | None = None
    provider: str | None = None
    api: str | None = None
    stop_reason: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool | None = None


class SessionTranscript(BaseModel):
    session_id: str
    message_count: int
    messages: list[SessionMessage]


class SessionImported(BaseModel):
    session_id: str
    message_count: int
