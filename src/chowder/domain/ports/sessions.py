"""An agent's chat sessions as its runtime stores them: listed, read, deleted and written from an export. The
messages are plain JSON objects in the export's message form (`domain/session_jsonl.py`), so the runtime's own
record of a turn reaches the client without a copy of ours in between."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chowder.domain.ports.runtime import InstanceRuntimeSpec
from chowder.sandbox.base import SandboxProvider

Message = dict[str, Any]
ROLES = frozenset({"user", "assistant", "toolResult"})
# The content parts a message may carry, with their fields and types.
PART_FIELDS: dict[str, dict[str, type]] = {
    "text": {"text": str},
    "toolCall": {"id": str, "name": str, "arguments": dict},
    "image": {"data": str, "mimeType": str},
}


def text_of(content: list[dict[str, Any]]) -> str:
    """A message's text parts, joined."""
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    message_count: int
    created_at: datetime
    last_activity_at: datetime


class SessionStore(Protocol):
    async def sessions(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[SessionSummary]:
        """Every session the agent keeps, in no particular order."""
        ...

    async def messages(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str
    ) -> list[Message] | None:
        """The session's messages, oldest first; None when the agent has no such session."""
        ...

    async def delete(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str) -> bool:
        """False when there was no such session."""
        ...

    async def write(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str, messages: list[Message]
    ) -> bool:
        """A new session holding `messages` (already validated), which the agent's next turn in it continues;
        False, with nothing written, when the session already holds messages."""
        ...
