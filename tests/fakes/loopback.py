"""A Starlette app served on an ephemeral port from a background thread: what every fake upstream (model provider,
Telegram Bot API) is, so each one only writes its routes. On 127.0.0.1 for what the control plane calls; in the
tests' outside namespace (`outside=True`) for what agents call from their sandboxes, as they would the internet."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette

from tests.fakes.outside import ADDRESS as OUTSIDE_ADDRESS
from tests.fakes.outside import bind_outside


class LoopbackServer:
    """Subclasses implement `app()`; use as `with Fake() as fake: fake.url`. `pause()` lets handlers wait in
    short steps, so `stop()` is never held up by a long delay or a long poll."""

    thread_name = "fake-upstream"

    def __init__(self, *, outside: bool = False) -> None:
        self.outside = outside
        self.host = OUTSIDE_ADDRESS if outside else "127.0.0.1"
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> Starlette:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> Self:
        """Bind an ephemeral port ourselves (so `port` is known at once) and return once uvicorn is serving."""
        if self._server is not None:
            raise RuntimeError(f"{self.thread_name} already running")
        if self.outside:
            sock = bind_outside()
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            log_config=None,  # never reconfigure the test process's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._stopping.clear()
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.thread_name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Pauses end at once, so in-flight requests finish within a tick; forced after 3 s."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=3)
        self._server = self._thread = None

    async def pause(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Sleep in short steps (ending early once `until()` holds); False if the server is stopping."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if until is not None and until():
                break
            await asyncio.sleep(min(left, 0.05))
        return not self._stopping.is_set()
