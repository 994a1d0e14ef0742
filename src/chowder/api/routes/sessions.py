"""An instance's chat sessions as its agent keeps them: list, transcript, delete, JSONL export and import
(interact permission: a key that may hold a conversation may read, move and forget it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse

from chowder.api.deps import State, require
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.sessions import SessionSummary
from chowder.schemas.sessions import SessionImported, SessionInfo, SessionMessage, SessionTranscript

router = APIRouter(tags=["sessions"])

CanInteract = Annotated[Principal, Depends(require(Permission.INTERACT))]
_SESSION = "/v1/instances/{instance_id}/sessions/{session_id}"


@router.get("/v1/instances/{instance_id}/sessions")
async def list_sessions(instance_id: str, principal: CanInteract, state: State) -> list[SessionInfo]:
    """Newest activity first; the control plane's own warm-up session is not listed."""
    return [_info(found) for found in await state.transcripts.sessions(principal, instance_id)]


@router.get(_SESSION)
async def get_session(instance_id: str, session_id: str, principal: CanInteract, state: State) -> SessionTranscript:
    """The transcript, oldest message first, read from the agent's own session store."""
    messages = await state.transcripts.transcript(principal, instance_id, session_id)
    listed = [SessionMessage.model_validate(message) for message in messages]
    return SessionTranscript(session_id=session_id, message_count=len(listed), messages=listed)


@router.delete(_SESSION, status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(instance_id: str, session_id: str, principal: CanInteract, state: State) -> Response:
    await state.transcripts.delete(principal, instance_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(f"{_SESSION}/export")
async def export_session(instance_id: str, session_id: str, principal: CanInteract, state: State) -> StreamingResponse:
    """JSON Lines: a header (`format`, `version`), then one message per line."""
    lines = await state.transcripts.export(principal, instance_id, session_id)
    disposition = f'attachment; filename="session-{session_id}.jsonl"'
    return StreamingResponse(lines, media_type="application/x-ndjson", headers={"Content-Disposition": disposition})


# The export as written (JSON Lines); any content type is read as such.
_EXPORT = {"type": "string", "format": "binary"}
_EXPORT_BODY = {"content": {"application/x-ndjson": {"schema": _EXPORT}, "text/plain": {"schema": _EXPORT}}}


@router.post(f"{_SESSION}/import", status_code=status.HTTP_201_CREATED, openapi_extra={"requestBody": _EXPORT_BODY})
async def import_session(
    instance_id: str, session_id: str, request: Request, principal: CanInteract, state: State
) -> SessionImported:
    """An export as the body becomes this session's history (409 if it already holds messages)."""
    count = await state.transcripts.import_(principal, instance_id, session_id, await request.body())
    return SessionImported(session_id=session_id, message_count=count)


def _info(found: SessionSummary) -> SessionInfo:
    return SessionInfo(
        session_id=found.session_id,
        message_count=found.message_count,
        created_at=found.created_at,
        last_activity_at=found.last_activity_at,
    )
