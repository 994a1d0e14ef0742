"""Reading what a tenant controls over HTTP (its gateway's answers, and the model answers they lead to) without
letting the sender choose how much memory that takes: bodies up to a bound, event streams in lines of bounded
length."""

from __future__ import annotations

import httpx

from chowder.core.settings import MIB

# One answer, or one line of an event stream (which may repeat a whole answer, as Responses' `response.completed`
# does). A model writes at most ~128k tokens (~0.5 MiB of text) per answer: with JSON escaping and tool calls,
# 4 MiB holds the largest real one several times over.
MAX_ANSWER_BYTES = 4 * MIB
# Bodies are read as sent (`read_body`), so they are asked for uncompressed: a few KiB of gzip can inflate to GiB.
IDENTITY = {"Accept-Encoding": "identity"}


class BodyTooLarge(Exception):
    """The sender sent more than its reader's bound."""


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """A gateway's streamed answer as sent, never decompressed; BodyTooLarge past `limit` bytes."""
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"The gateway's answer exceeds {limit / MIB:g} MiB.")
    return bytes(body)


class LineSplitter:
    """Cuts a byte stream into lines as it arrives, holding at most `limit` bytes of an unfinished line: a longer
    line is dropped, up to its newline, and counted in `dropped`. A sender that never ends its line costs `limit`
    bytes, not its whole stream; only new bytes are scanned, so tiny chunks cost no more than large ones."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._partial = bytearray()
        self._dropping = False

    def feed(self, chunk: bytes) -> bytes:
        """The whole lines this chunk completes, each with its newline; b"" when it completes none."""
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            self._hold(chunk)
            return b""
        if self._dropping:
            complete = chunk[chunk.find(b"\n") + 1 : cut]
        else:
            complete = bytes(self._partial) + chunk[:cut]
        self._partial.clear()
        self._dropping = False
        self._hold(chunk[cut:])
        return complete

    def rest(self) -> bytes:
        """The unfinished line at the end of the stream (none when it was dropped)."""
        return bytes(self._partial)

    def _hold(self, data: bytes) -> None:
        if self._dropping:
            return
        self._partial += data
        if len(self._partial) > self.limit:
            self._partial.clear()
            self._dropping = True
            self.dropped += 1
