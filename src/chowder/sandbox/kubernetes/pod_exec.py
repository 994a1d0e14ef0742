"""Commands in a pod through the Kubernetes API's exec subresource (a WebSocket of channels: stdin, stdout,
stderr, and a last status carrying the exit code), as the official client speaks it. Blocking: the provider runs
these in threads."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast

import websocket
from kubernetes.client import CoreV1Api
from kubernetes.stream import stream
from kubernetes.stream.ws_client import STDIN_CHANNEL

from chowder.core.errors import ProviderError
from chowder.sandbox.output import CappedOutput

_STDIN_CHUNK = 1 << 20
# The client's exec swaps its ApiClient's request function while it connects: one connection set up at a time.
_SETUP = threading.Lock()
# The client sets no timeout on its WebSocket: without one, a server that never finishes the handshake (or stalls
# mid-frame) holds a thread forever. Reads wait for data with poll() first, so this bounds only a stalled server.
websocket.setdefaulttimeout(60)
_POLL_S = 0.5
# How long a read of a command's output waits for its next byte: a command that stalls (or a server that stops
# forwarding) fails the read instead of holding its thread, and whatever awaits it, forever.
_STALL_S = 60.0


class ExecSession(Protocol):
    """What is used of the client's `WSClient` (with `binary=True`), typed."""

    def write_stdin(self, data: bytes) -> None: ...

    def close_channel(self, channel: int) -> None: ...

    def update(self, timeout: float = 0) -> None: ...

    def read_stdout(self, timeout: float | None = None) -> bytes: ...

    def read_stderr(self, timeout: float | None = None) -> bytes: ...

    def is_open(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PodCommand:
    """Where a command runs: a pod (its one container) of a namespace."""

    api: CoreV1Api
    namespace: str
    pod: str

    def open(self, command: list[str], stdin: bytes | None) -> ExecSession:
        """The command started, its input (if any) sent and closed; its output still to read."""
        with _SETUP:
            session = cast(
                ExecSession,
                stream(
                    self.api.connect_get_namespaced_pod_exec,
                    self.pod,
                    self.namespace,
                    command=command,
                    stdin=stdin is not None,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    binary=True,
                    _preload_content=False,
                ),
            )
        one_frame_per_update(session)
        if stdin is not None:
            for offset in range(0, len(stdin), _STDIN_CHUNK):
                session.write_stdin(stdin[offset : offset + _STDIN_CHUNK])
            session.close_channel(STDIN_CHANNEL)  # EOF (v5 channels); older servers: the tools read a given length
        return session

    def run(
        self, command: list[str], stdin: bytes | None, timeout_s: float, stdout: CappedOutput, stderr: CappedOutput
    ) -> int:
        """Its exit code, its output read to the end into `stdout` and `stderr`; ProviderError past `timeout_s`."""
        session = self.open(command, stdin)
        deadline = time.monotonic() + timeout_s
        try:
            while session.is_open():
                if time.monotonic() > deadline:
                    raise ProviderError(f"A command in pod {self.pod} did not end within {timeout_s:g} s.")
                session.update(timeout=_POLL_S)
                stdout.add(session.read_stdout())
                stderr.add(session.read_stderr())
            stdout.add(session.read_stdout())
            stderr.add(session.read_stderr())
            return exit_code(session)
        finally:
            session.close()


def one_frame_per_update(session: ExecSession) -> None:
    """The client's `update()` takes every frame already waiting, and keeps taking them while more arrive: a command
    writing faster than it is read (a 20 GiB file's download, or a tenant's shell printing without end) grew its
    buffer without bound, copying it whole for each frame, and held the reading thread. One frame per call keeps
    the buffer to what the caller has not read yet (the pinned client's private hook; a unit test checks it)."""
    setattr(session, "_frames_immediately_available", _no_more_frames)  # noqa: B010 (an instance's method, shadowed)


def _no_more_frames() -> bool:
    return False


def exit_code(session: ExecSession) -> int:
    """From the status the server sends last; ProviderError if the connection ended without one."""
    try:
        code: Any = session.returncode
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise ProviderError("The pod's command ended without an exit status (connection lost?).") from exc
    return int(code)


class ExecReader(io.RawIOBase):
    """A command's stdout as a file, read as it arrives (its stderr kept for the error if it fails)."""

    def __init__(self, session: ExecSession) -> None:
        self._session = session
        self._pending = b""
        self._stderr = CappedOutput()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        deadline = time.monotonic() + _STALL_S
        while not self._pending:
            if time.monotonic() > deadline:
                raise ProviderError(f"A command in a pod sent nothing for {_STALL_S:g} s.")
            self._session.update(timeout=_POLL_S)
            self._pending = self._session.read_stdout()
            self._stderr.add(self._session.read_stderr())
            if not self._pending and not self._session.is_open():
                self._pending = self._session.read_stdout()
                if not self._pending:
                    return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def stderr(self) -> str:
        return self._stderr.text()

    def close(self) -> None:
        self._session.close()
        super().close()
