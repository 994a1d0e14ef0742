"""What a short command in a sandbox gives back: its output bounded, whatever the tenant prints, and one exit
code and note for a command that ran out of time. Every provider answers `exec` in these terms."""

from __future__ import annotations

EXEC_TIMEOUT_EXIT = 124
EXEC_OUTPUT_CAP = 4 << 20


class CappedOutput:
    """One output stream of a command, read to its end: its first `cap` bytes are kept, the rest only
    counted, so it never grows the control plane's memory past that."""

    def __init__(self, cap: int = EXEC_OUTPUT_CAP) -> None:
        self._cap = cap
        self._kept = bytearray()
        self._dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self._cap - len(self._kept)
        self._kept += chunk[:room]
        self._dropped += max(0, len(chunk) - room)

    def data(self) -> bytes:
        """What was kept, as bytes."""
        return bytes(self._kept)

    def text(self) -> str:
        text = bytes(self._kept).decode(errors="replace")
        if self._dropped:
            text += f"\n[chowder] output cut at {self._cap >> 20} MiB ({self._dropped} bytes more).\n"
        return text


def timeout_note(timeout_s: float) -> str:
    """Appended to stderr of a command killed at its timeout (exit code `EXEC_TIMEOUT_EXIT`)."""
    return f"\n[chowder] timed out after {timeout_s:g} s; the command's processes were killed.\n"
