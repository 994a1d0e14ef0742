"""An instance's chat sessions, read from and written to its agent's own session store (`SessionStore`): list,
transcript, delete, export and import. The store is a file in the instance's sandbox, reached with or without its
gateway, so a running or a stopped instance serves them (409 otherwise: a sandbox provisioning or in error may be
missing or about to change). Writes hold the session's turn (`SessionTurns`) so no chat turn of this API runs in
that session meanwhile; the engine's warm-up session is the control plane's own and never shown."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chowder.core.errors import BadRequest, InvalidState, NotFound
from chowder.domain import session_jsonl
from chowder.domain.chat import check_session_id
from chowder.domain.instances import Instances
from chowder.domain.model_calls import warm_up_session
from chowder.domain.models import Principal
from chowder.domain.ports.runtime import InstanceRuntimeSpec
from chowder.domain.ports.sessions import Message, SessionStore, SessionSummary
from chowder.domain.ports.turns import SessionTurns
from chowder.sandbox.base import SandboxProvider


@dataclass(frozen=True, slots=True)
class Transcript:
    session: SessionSummary | None
    messages: list[Message]


class SessionTranscripts:
    def __init__(self, instances: Instances, store: SessionStore, turns: SessionTurns) -> None:
        self._instances = instances
        self._store = store
        self._turns = turns

    async def sessions(self, principal: Principal, instance_id: str) -> list[SessionSummary]:
        """Newest activity first; only sessions the chat routes can name, never the warm-up session."""
        provider, spec = await self._instances.sandbox(principal, instance_id)
        found = await self._store.sessions(provider, spec)
        shown = [s for s in found if _addressable(s.session_id) and not _internal(spec, s.session_id)]
        return sorted(shown, key=lambda session: (session.last_activity_at, session.session_id), reverse=True)

    async def transcript(self, principal: Principal, instance_id: str, session_id: str) -> list[Message]:
        """NotFound for a session the agent does not keep."""
        provider, spec = await self._sandbox(principal, instance_id, session_id)
        messages = await self._store.messages(provider, spec, session_id)
        if messages is None:
            raise NotFound(_NO_SESSION)
        return messages

    async def export(self, principal: Principal, instance_id: str, session_id: str) -> Iterator[bytes]:
        return session_jsonl.export_lines(session_id, await self.transcript(principal, instance_id, session_id))

    async def delete(self, principal: Principal, instance_id: str, session_id: str) -> None:
        provider, spec = await self._sandbox(principal, instance_id, session_id)
        async with self._turns.hold(instance_id, session_id):
            if not await self._store.delete(provider, spec, session_id):
                raise NotFound(_NO_SESSION)

    async def import_(self, principal: Principal, instance_id: str, session_id: str, body: bytes) -> int:
        """The export's messages as the session's history, which its next turn continues; BadRequest for a
        malformed export, InvalidState when the session already holds messages. Returns how many."""
        provider, spec = await self._sandbox(principal, instance_id, session_id)
        messages = session_jsonl.parse(body)
        async with self._turns.hold(instance_id, session_id):
            if not await self._store.write(provider, spec, session_id, messages):
                raise InvalidState(
                    f"Session '{session_id}' already holds messages; delete it first or import into another session."
                )
        return len(messages)

    async def _sandbox(
        self, principal: Principal, instance_id: str, session_id: str
    ) -> tuple[SandboxProvider, InstanceRuntimeSpec]:
        check_session_id(session_id)
        provider, spec = await self._instances.sandbox(principal, instance_id)
        if _internal(spec, session_id):
            raise NotFound(_NO_SESSION)
        return provider, spec


_NO_SESSION = "Session not found."


def _addressable(session_id: str) -> bool:
    """A session the chat routes can name: not the agent's own subagent, cron or ACP sessions."""
    try:
        check_session_id(session_id)
    except BadRequest:
        return False
    return True


def _internal(spec: InstanceRuntimeSpec, session_id: str) -> bool:
    return session_id in {warm_up_session(spec.instance_id), warm_up_session(spec.sandbox_id)}
