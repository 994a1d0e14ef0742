"""Blocking work (syscalls, engine and storage clients) runs in threads, never on the event loop; OS and client
failures become a ProviderError named after the provider, our own errors pass through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any, BinaryIO, TypeVar

from chowder.core.errors import ChowderError, ProviderError

T = TypeVar("T")
_CHUNK = 256 * 1024


async def off_loop(label: str, failures: tuple[type[Exception], ...], function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a thread; an exception of `failures` becomes `ProviderError("<label>: ...")`."""
    try:
        return await asyncio.to_thread(function, *args)
    except ChowderError:
        raise
    except failures as exc:
        raise ProviderError(f"{label}: {exc}") from exc


async def file_chunks(file: BinaryIO, size: int) -> AsyncGenerator[bytes, None]:
    """Exactly `size` bytes of an open file, each chunk read in a thread, then the file closed. A file that shrank
    meanwhile is a ProviderError: its size was promised (Content-Length) and cannot be kept."""
    with file:
        left = size
        while left:
            chunk = await off_loop("Reading a file", (OSError,), file.read, min(left, _CHUNK))
            if not chunk:
                raise ProviderError("The file shrank while it was being read.")
            left -= len(chunk)
            yield chunk
