"""What a short command in a sandbox gives back: its output bounded, whatever the tenant prints, and one exit
code and note for a command that ran out of time. Every provider answers `exec` in these terms."""

from __future__ import annotations

EXEC_TIMEOUT_EXIT = 124
EXEC_OUTPUT_CAP = 4 << 20


class CappedOutput:
    """One output stream of a command, read to its end: its first `EXEC_OUTPUT_CAP` bytes are kept, the rest only
    counted, so it never grows the control plane's memory past that."""

    def __init__(self) -> None:
        self._kept = bytearray()
        self._dropped = 0

    def add(self, chunk: bytes) -> None:
        room = EXEC_OUTPUT_CAP - len(self._kept)
        self._kept += chunk[:room]
        self._dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        text = bytes(self._kept).decode(errors="replace")
        if self._dropped:
            text += f"\n[chowder] output cut at {EXEC_OUTPUT_CAP >> 20} MiB ({self._dropped} bytes more).\n"
        return text


def timeout_note(timeout_s: float) -> str:
    """Appended to stderr of a command killed at its timeout (exit code `EXEC_TIMEOUT_EXIT`)."""
    return f"\n[chowder] timed out after {timeout_s:g} s; the command's processes were killed.\n"
