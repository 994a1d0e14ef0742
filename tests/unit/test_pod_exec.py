"""Reading a pod command's output: the client's session takes one frame per update, however fast the command
writes (its own update took every frame arriving, without bound); a command that stops sending fails the read
within its bound instead of holding the reading thread (and the download awaiting it) forever."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kubernetes.stream.ws_client import WSClient
from websocket import ABNF

from chowder.core.errors import ProviderError
from chowder.sandbox.kubernetes import pod_exec
from chowder.sandbox.kubernetes.pod_exec import ExecReader, ExecSession, one_frame_per_update


class _Session:
    """An exec session that stays open: `chunks` of stdout, one per update, then nothing."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)
        self._out = b""
        self.closed = False

    def write_stdin(self, data: bytes) -> None:
        raise AssertionError("no input here")

    def close_channel(self, channel: int) -> None:
        raise AssertionError("no input here")

    @property
    def returncode(self) -> int | None:
        return None

    def update(self, timeout: float = 0) -> None:
        if self._chunks:
            self._out += self._chunks.pop(0)
        else:
            time.sleep(min(timeout, 0.01))

    def read_stdout(self, timeout: float | None = None) -> bytes:
        out, self._out = self._out, b""
        return out

    def read_stderr(self, timeout: float | None = None) -> bytes:
        return b""

    def is_open(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def test_a_command_that_stops_sending_fails_the_read_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pod_exec, "_STALL_S", 0.2)
    session = _Session(b"first ", b"second")
    reader = io.BufferedReader(ExecReader(session))
    assert reader.read1(64) == b"first "
    assert reader.read1(64) == b"second"
    started = time.monotonic()
    with pytest.raises(ProviderError, match="sent nothing for 0.2 s"):
        reader.read(64)
    assert time.monotonic() - started < 2
    reader.close()
    assert session.closed


@pytest.fixture
def endless() -> Iterator[WSClient]:
    """The pinned client's session over a socket that always has more: a command that writes without end."""
    ours, theirs = socket.socketpair()
    theirs.sendall(b"more")  # stays unread: the socket polls readable for ever

    taken = iter(range(100))

    def frame(_control: bool) -> tuple[int, Any]:
        if next(taken, None) is None:
            raise AssertionError("an update kept taking frames while more arrived")
        return ABNF.OPCODE_BINARY, SimpleNamespace(data=b"\x01" + b"x" * 10)

    session = WSClient.__new__(WSClient)
    session.__dict__.update(
        _connected=True, _channels={}, _closed_channels=set(), subprotocol=None, binary=True, _all=io.BytesIO()
    )
    session.sock = SimpleNamespace(connected=True, sock=ours, recv_data_frame=frame)
    yield session
    ours.close()
    theirs.close()


def test_a_session_takes_one_frame_per_update_however_fast_the_command_writes(endless: WSClient) -> None:
    assert callable(getattr(WSClient, "_frames_immediately_available", None)), "the pinned client's hook is gone"
    session = cast(ExecSession, endless)
    one_frame_per_update(session)
    for _ in range(3):
        session.update(timeout=0)
    assert session.read_stdout() == b"x" * 30, "one frame each (else the first update never returns)"
