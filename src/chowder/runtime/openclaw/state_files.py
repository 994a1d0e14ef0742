"""The files of an instance's OpenClaw state dir that the control plane reads and writes itself: `openclaw.json`
(and its last good and refused copies), AGENTS.md and the gateway's log. The tenant may have put anything
there, so every read is bounded and a file that is not a regular one of sane size is a ProviderError naming it."""

from __future__ import annotations

import json
from typing import Any

from chowder.core.errors import BadRequest, FileTooLarge, NotFound, ProviderError
from chowder.core.settings import MIB
from chowder.runtime.openclaw import config as oc_config
from chowder.sandbox.base import SandboxProvider

CONFIG_FILE = "openclaw.json"
LAST_GOOD_FILE = "openclaw.json.last-good"
REJECTED_FILE = "openclaw.json.rejected"
CANDIDATE_FILE = "openclaw.json.candidate"
AGENTS_FILE = "workspace/AGENTS.md"
GATEWAY_LOG = "logs/gateway.out"
# openclaw.json and AGENTS.md are kilobytes; the bound is what a tenant that makes them anything costs us.
_STATE_FILE_BYTES = 4 * MIB
# The last lines of a gateway that failed to start, for its error message; the log itself may be gigabytes.
_LOG_TAIL_BYTES = 64 * 1024


async def read_config(provider: SandboxProvider, sandbox_id: str) -> dict[str, Any] | None:
    """The instance's `openclaw.json` as it is now; None when there is none yet."""
    raw = await read_state(provider, sandbox_id, CONFIG_FILE)
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    return parsed if isinstance(parsed, dict) else None


async def write_json(provider: SandboxProvider, sandbox_id: str, path: str, data: dict[str, Any]) -> None:
    await provider.write_file(sandbox_id, path, (json.dumps(data, indent=2) + "\n").encode())


async def remember_good_config(provider: SandboxProvider, sandbox_id: str) -> None:
    current = await read_state(provider, sandbox_id, CONFIG_FILE)
    if current is not None:
        await provider.write_file(sandbox_id, LAST_GOOD_FILE, current)


async def restore_last_good_config(provider: SandboxProvider, sandbox_id: str) -> bool:
    """The refused file stays readable as `openclaw.json.rejected` (files API), to see what went wrong."""
    good = await read_state(provider, sandbox_id, LAST_GOOD_FILE)
    if good is None:
        return False
    current = await read_state(provider, sandbox_id, CONFIG_FILE)
    if current == good:
        return False
    if current is not None:
        await provider.write_file(sandbox_id, REJECTED_FILE, current)
    await provider.write_file(sandbox_id, CONFIG_FILE, good)
    return True


async def apply_system_prompt(
    provider: SandboxProvider, sandbox_id: str, patch: dict[str, Any], overrides: dict[str, Any]
) -> None:
    """When the patch touches `agent.system_prompt`, the managed AGENTS.md block follows the merged value."""
    if "system_prompt" in (patch.get("agent") or {}):
        _, prompt = oc_config.split_system_prompt(overrides)
        await write_system_prompt(provider, sandbox_id, prompt)


async def write_system_prompt(provider: SandboxProvider, sandbox_id: str, prompt: str | None) -> None:
    existing = (await read_state(provider, sandbox_id, AGENTS_FILE) or b"").decode()
    await provider.write_file(sandbox_id, AGENTS_FILE, oc_config.with_system_prompt(existing, prompt).encode())


async def last_words(provider: SandboxProvider, sandbox_id: str) -> str:
    """The end of the gateway's log, for the error of a gateway that did not start; empty when unreadable."""
    try:
        tail = await read_state(provider, sandbox_id, GATEWAY_LOG, max_bytes=_LOG_TAIL_BYTES, tail=True)
    except Exception:
        return ""
    lines = [line for line in (tail or b"").decode(errors="replace").splitlines() if line.strip()][-8:]
    return ("\nLast gateway output:\n" + "\n".join(lines)) if lines else ""


async def read_state(
    provider: SandboxProvider, sandbox_id: str, path: str, *, max_bytes: int = _STATE_FILE_BYTES, tail: bool = False
) -> bytes | None:
    """None when missing."""
    try:
        return await provider.read_file(sandbox_id, path, max_bytes=max_bytes, tail=tail)
    except NotFound:
        return None
    except (BadRequest, FileTooLarge) as exc:
        raise ProviderError(f"Cannot read {path}: {exc.detail}") from exc
