"""What OpenClaw writes into the model calls its agent makes: the user's words wrapped in a timestamp, injected
context and a `Runtime:` trailer that names the session the call belongs to."""

from __future__ import annotations

import re

# "Runtime: agent=main | session=agent:main:<session key> | …", appended to each user message.
_SESSION_MARKER = re.compile(r"session=agent:[^:|\s\\]+:([^|\s\\]+)")
RUNTIME_SUFFIX = "\n\nRuntime:"
INTERNAL_CONTEXT = re.compile(
    r"<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>.*?(?:<<<END_OPENCLAW_INTERNAL_CONTEXT>>>|\Z)", re.DOTALL
)
# OpenClaw prefixes user text with e.g. "[Mon 2026-11-23 00:22 UTC] "; requiring a date keeps "[x] y" intact.
TIMESTAMP_PREFIX = re.compile(r"^\[[^\]\n]*\d{4}-\d{2}-\d{2}[^\]\n]*\] ")


def session_of_model_call(body: bytes) -> str | None:
    """The session key of the newest user message in a model request, if OpenClaw marked it."""
    matches = _SESSION_MARKER.findall(body.decode(errors="replace"))
    return matches[-1] if matches else None


def user_words(text: str) -> str:
    """Drop the injected internal context, the `[<timestamp>] ` prefix and the `\\n\\nRuntime:` trailer."""
    text = INTERNAL_CONTEXT.sub("", text).split(RUNTIME_SUFFIX, 1)[0].strip()
    return TIMESTAMP_PREFIX.sub("", text, count=1).strip()
