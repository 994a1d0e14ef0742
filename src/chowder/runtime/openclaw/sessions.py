"""OpenClaw's own session store, read and written where the gateway keeps it: the agent database
`agents/main/agent/openclaw-agent.sqlite` in the instance's state dir.

The gateway's admin HTTP RPC offers no session method (its allowlist has none) and its WebSocket RPC needs a
paired device, so `session_store.mjs` runs in the sandbox on the runtime's own Node (`node:sqlite`, the engine
OpenClaw uses), as the gateway's user and under SQLite's locking, with or without the gateway: ~0.2 s a call,
and no file of the store is ever opened by the control plane. A Chowder session `S` is OpenClaw's
`agent:main:s` (`x-openclaw-session-key`, see `chat.py`; OpenClaw lowercases the key, so `Trip` and `trip` are
one session, listed as `trip`). Messages are translated here between OpenClaw's transcript form and the
export's (`domain/session_jsonl.py`)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from chowder.core.errors import ProviderError
from chowder.core.settings import MIB
from chowder.domain.ports.runtime import InstanceRuntimeSpec
from chowder.domain.ports.sessions import PART_FIELDS, ROLES, Message, SessionSummary, text_of
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.state_files import read_state
from chowder.sandbox.base import SandboxProvider

KEY_PREFIX = "agent:main:"
STORE = "agents/main/agent/openclaw-agent.sqlite"
# A transcript is read whole into one JSON answer; a session past this is one no model context holds anyway.
MAX_TRANSCRIPT_BYTES = 64 * MIB
_TIMEOUT_S = 60.0
_SCRIPT = files("chowder.runtime.openclaw").joinpath("session_store.mjs").read_text()
# Export field ↔ OpenClaw message field.
_FIELDS = {
    "model": "model",
    "provider": "provider",
    "api": "api",
    "stop_reason": "stopReason",
    "tool_call_id": "toolCallId",
    "tool_name": "toolName",
    "is_error": "isError",
}
_NO_COST = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}
_NO_USAGE = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 0, "cost": _NO_COST}


class OpenClawSessions:
    def __init__(self, cache: RuntimeCache) -> None:
        self._cache = cache

    async def sessions(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[SessionSummary]:
        rows = (await self._run(provider, spec, "list")).get("sessions")
        return [summary for row in rows if (summary := _summary(row))] if isinstance(rows, list) else []

    async def messages(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str
    ) -> list[Message] | None:
        """Only the parts the export carries: thinking (signed by its provider) and custom parts are left out."""
        out = f"tmp/chowder-session-{secrets.token_hex(8)}.json"
        try:
            await self._run(provider, spec, "read", _key(session_id), out)
            raw = await read_state(provider, spec.sandbox_id, out, max_bytes=MAX_TRANSCRIPT_BYTES)
        finally:
            await provider.delete_path(spec.sandbox_id, out)
        listed = json.loads(raw or b"{}").get("messages")
        if listed is None:
            return None
        return [message for entry in listed if (message := _exported(entry)) is not None]

    async def delete(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str) -> bool:
        return bool((await self._run(provider, spec, "delete", _key(session_id))).get("deleted"))

    async def write(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, session_id: str, messages: list[Message]
    ) -> bool:
        source = f"tmp/chowder-import-{secrets.token_hex(8)}.json"
        info = await provider.info(spec.sandbox_id)
        await provider.write_file(spec.sandbox_id, source, json.dumps([_stored(m) for m in messages]).encode())
        try:
            args = (_key(session_id), f"{info.root}/{source}", f"{info.root}/workspace")
            answer = await self._run(provider, spec, "import", *args)
        finally:
            await provider.delete_path(spec.sandbox_id, source)
        return bool(answer.get("imported"))

    async def _run(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, op: str, *args: str) -> dict[str, Any]:
        info = await provider.info(spec.sandbox_id)
        node = info.inside(self._cache.node)
        argv = [node, "--no-warnings", "--input-type=module", "-e", _SCRIPT, op, f"{info.root}/{STORE}"]
        if op == "read":
            args = (args[0], f"{info.root}/{args[1]}")
        env = {"HOME": info.home, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
        result = await provider.exec(spec.sandbox_id, [*argv, *args], env, _TIMEOUT_S)
        try:
            answer = json.loads(result.stdout) if result.exit_code == 0 else None
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            reason = (result.stderr or result.stdout).strip()[-1000:]
            raise ProviderError(f"OpenClaw's session store could not be used ({op}, exit {result.exit_code}): {reason}")
        return answer


def _key(session_id: str) -> str:
    return KEY_PREFIX + session_id.lower()


# The store is in the tenant's sandbox, so whatever it holds is read defensively: a row or a field not of
# OpenClaw's form is left out, never an error of ours.


def _moment(ms: Any) -> datetime:
    """OpenClaw's milliseconds since the epoch; the epoch itself for anything else."""
    try:
        return datetime.fromtimestamp(float(ms) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _summary(row: Any) -> SessionSummary | None:
    key, count = (row.get("key"), row.get("message_count")) if isinstance(row, dict) else (None, None)
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or not isinstance(count, int):
        return None
    return SessionSummary(
        session_id=key.removeprefix(KEY_PREFIX),
        message_count=count,
        created_at=_moment(row.get("created_at")),
        last_activity_at=_moment(row.get("last_activity_at")),
    )


def _exported(entry: Any) -> Message | None:
    """OpenClaw's message (`role`, `content` as a string or parts, `timestamp` in ms, …) in the export's form."""
    stored = entry.get("message") if isinstance(entry, dict) else None
    if not isinstance(stored, dict) or not isinstance(stored.get("role"), str) or stored["role"] not in ROLES:
        return None
    content = stored.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    kept = [part for part in (_part(part) for part in parts) if part] if isinstance(parts, list) else []
    if not kept:
        return None
    message: Message = {
        "id": entry["id"] if isinstance(entry.get("id"), str) else None,
        "role": stored["role"],
        "timestamp": _moment(stored.get("timestamp")).isoformat(),
        "text": text_of(kept),
        "content": kept,
    }
    for ours, theirs in _FIELDS.items():
        if isinstance(stored.get(theirs), bool if ours == "is_error" else str):
            message[ours] = stored[theirs]
    return message


def _part(part: Any) -> dict[str, Any] | None:
    """A part the export carries, with only its fields; None for any other (thinking, custom, malformed)."""
    kind = part.get("type") if isinstance(part, dict) else None
    fields = PART_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None or not all(isinstance(part.get(name), kind) for name, kind in fields.items()):
        return None
    return {"type": part["type"], **{name: part[name] for name in fields}}


def _stored(message: Message) -> dict[str, Any]:
    """The export's message as OpenClaw records one; an assistant turn gets the zero usage and `stop` reason, a
    tool result its `isError`, that OpenClaw's context builder expects of each."""
    stored: dict[str, Any] = {
        "role": message["role"],
        "content": message["content"],
        "timestamp": int(datetime.fromisoformat(message["timestamp"]).timestamp() * 1000),
    }
    stored.update({theirs: message[ours] for ours, theirs in _FIELDS.items() if ours in message})
    if message["role"] == "assistant":
        stored.setdefault("stopReason", "stop")
        stored["usage"] = _NO_USAGE
    if message["role"] == "toolResult":
        stored.setdefault("isError", False)
    return stored
