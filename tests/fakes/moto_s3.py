"""A local S3-compatible server for the backup store's tests: moto in server mode on 127.0.0.1, from its own
virtual environment (`./dev test` makes it: moto needs botocore, which cannot be installed beside the pinned
kubernetes client). It speaks S3's real protocol; the tests only make the bucket."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOTO_SERVER = Path(
    os.environ.get("CHOWDER_TEST_MOTO_SERVER", REPO / ".chowder" / "tools" / "moto" / "bin" / "moto_server")
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """The server's URL, for the block; skips (saying how to get it) when moto is not installed."""
    if not MOTO_SERVER.exists():
        pytest.skip(f"moto_server not found at {MOTO_SERVER}; `./dev test` installs it")
    port = _free_port()
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
