"""Backup archives in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...), under `<prefix><key>`, through the
`minio` client (SigV4, multipart, retries): the field's own client rather than botocore, which cannot be installed
beside the pinned kubernetes client. Its calls block, so each runs in a thread. An archive is streamed up by
`put_object` in parts of `PART_BYTES` (a multipart upload, which the client aborts if the stream fails, so a failed
put leaves no object; one PUT when it is smaller than one part), and streamed down as it arrives."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from chowder.core.errors import NotFound, ProviderError
from chowder.core.offload import file_chunks, off_loop
from chowder.sandbox.base import FileStream

T = TypeVar("T")
PART_BYTES = 8 * 1024 * 1024  # S3's smallest part is 5 MiB (except the last)
# The client's failures other than S3's own answers (S3Error, named with its HTTP status below).
_FAILURES = (ServerError, InvalidResponseError, urllib3.exceptions.HTTPError)


class S3BackupStore:
    def __init__(self, endpoint: str, bucket: str, prefix: str, region: str, access_key: str, secret_key: str) -> None:
        """ValueError for an endpoint that is not `http(s)://host[:port]` (the client takes no path)."""
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc or url.path.strip("/"):
            raise ValueError(f"CHOWDER_BACKUP_S3_ENDPOINT must be http(s)://host[:port], not {endpoint!r}.")
        # The region is given, so the client never asks the bucket's location first.
        self._client = Minio(url.netloc, access_key, secret_key, secure=url.scheme == "https", region=region)
        self._bucket = bucket
        self._prefix = prefix

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        source = _Source(chunks, asyncio.get_running_loop())
        data = io.BufferedReader(source)
        name = self._prefix + key
        upload = asyncio.ensure_future(
            _off_loop("PUT", key, lambda: self._client.put_object(self._bucket, name, data, -1, part_size=PART_BYTES))
        )
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            # The thread cannot be cancelled: its next read fails instead, and the client aborts its multipart
            # upload; the put ends only once that is done, so no object appears after it.
            source.stop()
            with contextlib.suppress(Exception):
                await upload
            raise
        return source.size

    async def open(self, key: str) -> FileStream:
        response = await _off_loop("GET", key, lambda: self._client.get_object(self._bucket, self._prefix + key))
        size = int(response.headers["content-length"])
        return FileStream(size, file_chunks(io.BufferedReader(response), size))

    async def delete(self, key: str) -> None:
        await _off_loop("DELETE", key, lambda: self._client.remove_object(self._bucket, self._prefix + key))

    async def size(self, key: str) -> int | None:
        try:
            stat = await _off_loop("HEAD", key, lambda: self._client.stat_object(self._bucket, self._prefix + key))
        except NotFound:
            return None
        return stat.size


async def _off_loop(action: str, key: str, function: Callable[[], T]) -> T:
    """`function()` in a thread; a missing object is NotFound, the client's failures a ProviderError (S3's own
    answers with their HTTP status)."""
    try:
        return await off_loop(f"S3 {action} {key} failed", _FAILURES, function)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise NotFound("Backup archive not found.") from None
        raise ProviderError(f"S3 {action} {key} failed: HTTP {exc.response.status} {exc.code}: {exc.message}") from exc


class _Source(io.RawIOBase):
    """The archive's async chunks as a file for the client's thread: each read that needs more fetches the next
    chunk on the event loop (in order, one at a time). Once `stop`ped, the next fetch fails (its pending one is
    cancelled), so the client gives up and aborts its upload."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._chunks = chunks
        self._loop = loop
        self._pending = memoryview(b"")
        self._fetching: concurrent.futures.Future[bytes | None] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._next()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
            self.size += len(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._fetching is not None:
                self._fetching.cancel()

    def _next(self) -> bytes | None:
        with self._lock:
            if self._stopped:
                raise concurrent.futures.CancelledError("The upload was cancelled.")
            self._fetching = asyncio.run_coroutine_threadsafe(_next_chunk(self._chunks), self._loop)
        return self._fetching.result()


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)
