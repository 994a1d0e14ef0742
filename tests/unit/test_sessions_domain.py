"""The sessions use cases over an agent store held in memory: what the list shows and hides, and that an import
is checked before the store is touched, refused over messages, and held against chat turns of its session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from chowder.core.errors import BadRequest, InvalidState, NotFound
from chowder.domain.model_calls import warm_up_session
from chowder.domain.models import KeyKind, Principal
from chowder.domain.ports.runtime import InstanceRuntimeSpec
from chowder.domain.ports.sessions import Message, SessionSummary
from chowder.domain.session_jsonl import export_lines
from chowder.domain.sessions import SessionTranscripts
from chowder.domain.turns import SessionLocks

ORG = Principal("org-1", "key-1", KeyKind.ORG)
SPEC = InstanceRuntimeSpec("inst-1", "org-1", "sb-1", "anthropic", "2026.9.6", {}, "open", "token", "model-token")
HI: Message = {"role": "user", "timestamp": "2026-12-05T00:00:00+00:00", "content": [{"type": "text", "text": "hi"}]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the turn queue (`SessionLocks`) is asyncio's


class MemoryStore:
    """A `SessionStore` keeping sessions as lists of messages, stamped with the order they were last written."""

    def __init__(self, **sessions: list[Message]) -> None:
        self.held: dict[str, list[Message]] = dict(sessions)
        self.written: list[str] = []

    async def sessions(self, provider: Any, spec: InstanceRuntimeSpec) -> list[SessionSummary]:
        return [
            SessionSummary(sid, len(messages), datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1 + n, tzinfo=UTC))
            for n, (sid, messages) in enumerate(self.held.items())
        ]

    async def messages(self, provider: Any, spec: InstanceRuntimeSpec, session_id: str) -> list[Message] | None:
        return self.held.get(session_id)

    async def delete(self, provider: Any, spec: InstanceRuntimeSpec, session_id: str) -> bool:
        return self.held.pop(session_id, None) is not None

    async def write(self, provider: Any, spec: InstanceRuntimeSpec, session_id: str, messages: list[Message]) -> bool:
        if self.held.get(session_id):
            return False
        self.written.append(session_id)
        self.held[session_id] = messages
        return True


class OneInstance:
    async def sandbox(self, principal: Principal, instance_id: str) -> tuple[object, InstanceRuntimeSpec]:
        if instance_id != SPEC.instance_id:
            raise NotFound("Instance not found.")
        return object(), SPEC


def _service(store: MemoryStore, turns: SessionLocks | None = None) -> SessionTranscripts:
    return SessionTranscripts(OneInstance(), store, turns or SessionLocks())  # type: ignore[arg-type]


def _export(*messages: Message) -> bytes:
    return b"".join(export_lines("s", list(messages)))


@pytest.mark.anyio
async def test_the_list_is_newest_first_without_the_warm_up_or_the_agents_own_sessions() -> None:
    store = MemoryStore(
        old=[HI],
        **{warm_up_session(SPEC.instance_id): [HI], "subagent:1": [HI], "cron:nightly": [HI]},
        new=[HI, HI],
    )
    service = _service(store)
    assert [(s.session_id, s.message_count) for s in await service.sessions(ORG, "inst-1")] == [("new", 2), ("old", 1)]
    with pytest.raises(NotFound, match="Session not found."):
        await service.transcript(ORG, "inst-1", warm_up_session(SPEC.instance_id))
    with pytest.raises(NotFound, match="Session not found."):
        await service.delete(ORG, "inst-1", warm_up_session(SPEC.sandbox_id))
    with pytest.raises(NotFound, match="Instance not found."):
        await service.sessions(ORG, "inst-2")


@pytest.mark.anyio
async def test_an_import_is_checked_before_the_store_and_refused_over_messages() -> None:
    store = MemoryStore(taken=[HI])
    service = _service(store)
    with pytest.raises(BadRequest, match="Line 2: role must be one of"):
        await service.import_(ORG, "inst-1", "fresh", _export({**HI, "role": "system"}))
    with pytest.raises(BadRequest, match="Invalid session_id"):
        await service.import_(ORG, "inst-1", "acp:x", _export(HI))
    assert store.written == []
    with pytest.raises(InvalidState, match="Session 'taken' already holds messages; delete it first"):
        await service.import_(ORG, "inst-1", "taken", _export(HI))
    assert await service.import_(ORG, "inst-1", "fresh", _export(HI, HI)) == 2
    assert await service.transcript(ORG, "inst-1", "fresh") == [HI, HI]
    await service.delete(ORG, "inst-1", "fresh")
    with pytest.raises(NotFound, match="Session not found."):
        await service.delete(ORG, "inst-1", "fresh")


@pytest.mark.anyio
async def test_an_import_waits_for_the_chat_turn_holding_its_session() -> None:
    turns = SessionLocks()
    store = MemoryStore()
    service = _service(store, turns)
    async with turns.hold("inst-1", "busy"):
        importing = asyncio.create_task(service.import_(ORG, "inst-1", "busy", _export(HI)))
        await asyncio.sleep(0.05)
        assert store.written == [] and not importing.done()
    assert await importing == 1 and store.written == ["busy"]
