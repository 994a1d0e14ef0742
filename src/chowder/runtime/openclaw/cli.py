"""Reading OpenClaw's CLI output: what it answered (`--json`), or why it failed, without colour codes."""

from __future__ import annotations

import json
import re
from typing import Any

from chowder.core.errors import BadRequest, ProviderError
from chowder.runtime.openclaw import rpc
from chowder.sandbox.base import ExecResult

TIMEOUT_S = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """CLI output as a client should read it: no colour codes, no trailing blank lines."""
    return _ANSI.sub("", text).strip()


def reason(result: ExecResult) -> str:
    """Why a CLI call failed: OpenClaw's `Reason:` line when it gives one, else the tail of its output."""
    text = plain(result.stderr or result.stdout)
    reasons = [line.split("Reason:", 1)[1].strip() for line in text.splitlines() if "Reason:" in line]
    return reasons[-1] if reasons else text[-1000:]


def json_answer(result: ExecResult, command: str) -> dict[str, Any]:
    """What `openclaw <command>` printed as JSON (an object, else empty); ProviderError with its reason when it
    printed no JSON at all."""
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"openclaw {command} failed (exit {result.exit_code}): {reason(result)}") from exc
    return parsed if isinstance(parsed, dict) else {}


def raise_unless_valid(result: ExecResult) -> None:
    """`openclaw config validate --json`: BadRequest listing each issue's path and message when invalid."""
    verdict = json_answer(result, "config validate")
    if verdict.get("valid") is True:
        return
    issues = rpc.listed_issues(verdict.get("issues") or [])
    raise BadRequest(f"OpenClaw refused the configuration: {issues or verdict.get('error', verdict)}")
