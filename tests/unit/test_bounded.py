"""Cutting a stream into lines when the sender decides their length: whole lines out as they complete, a line
over the bound dropped up to its newline (and counted), cost linear in the bytes however small the chunks."""

from __future__ import annotations

import time

from chowder.core.bounded import LineSplitter


def test_lines_come_out_whole_however_the_stream_is_cut() -> None:
    lines = LineSplitter(limit=16)
    stream = b"data: one\n\ndata: two\nrest"
    out = b"".join(lines.feed(stream[i : i + 1]) for i in range(len(stream)))
    assert (out, lines.rest(), lines.dropped) == (b"data: one\n\ndata: two\n", b"rest", 0)


def test_a_line_over_the_bound_is_dropped_up_to_its_newline_and_counted() -> None:
    lines = LineSplitter(limit=4)
    assert lines.feed(b"ok\n0123") == b"ok\n"
    assert lines.feed(b"456789") == b"" and lines.dropped == 1
    assert lines.feed(b"still the long one") == b""
    assert lines.feed(b"...end\nnext\nta") == b"next\n"
    assert (lines.rest(), lines.dropped) == (b"ta", 1)


def test_tiny_chunks_of_a_long_line_cost_linear_time() -> None:
    lines, started = LineSplitter(limit=4 * 1024 * 1024), time.monotonic()
    for _ in range(200_000):  # 3 MiB in 16-byte chunks: re-scanning what is held would take minutes
        lines.feed(b"x" * 16)
    assert lines.feed(b"\n") == b"x" * 3_200_000 + b"\n"
    assert time.monotonic() - started < 5
