"""Backup archives in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...), under `<prefix><key>`, over httpx
with SigV4 (`sigv4.py`): nothing blocks the event loop. An archive is streamed up in parts of `PART_BYTES` (a
multipart upload, aborted if the stream fails, so a failed put leaves no object), or in one PUT when it is smaller
than one part; it is streamed down as it arrives."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from chowder.backupstore.sigv4 import EMPTY_SHA256, object_path, query_string, signed_headers
from chowder.core.errors import NotFound, ProviderError
from chowder.sandbox.base import FileStream

PART_BYTES = 8 * 1024 * 1024  # S3's smallest part is 5 MiB (except the last)
_UPLOAD_ID = re.compile(r"<UploadId>([^<]+)</UploadId>")


class S3BackupStore:
    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: str,
        bucket: str,
        prefix: str,
        region: str,
        access_key: str,
        secret_key: str,
    ) -> None:
        self._http = http
        self._endpoint = endpoint.rstrip("/")
        self._host = urlsplit(self._endpoint).netloc
        self._bucket = bucket
        self._prefix = prefix
        self._region = region
        self._credentials = (access_key, secret_key)

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[str] = []
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= PART_BYTES:
                    upload_id = upload_id or await self._begin(key)
                    parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer[:PART_BYTES])))
                    del buffer[:PART_BYTES]
            if upload_id is None:
                await self._send("PUT", key, body=bytes(buffer))
                return size
            if buffer:
                parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            await self._send("POST", key, {"uploadId": upload_id}, _completion(parts))
            return size
        except BaseException:
            if upload_id is not None:
                await self._send("DELETE", key, {"uploadId": upload_id}, ok=(204, 404))
            raise

    async def open(self, key: str) -> FileStream:
        request = self._request("GET", key)
        response = await self._http.send(request, stream=True)
        if response.status_code != 200:
            await response.aclose()
            if response.status_code == 404:
                raise NotFound("Backup archive not found.")
            raise ProviderError(f"S3 GET {key} failed: HTTP {response.status_code}.")
        size = int(response.headers["content-length"])
        return FileStream(size, _body(response))

    async def delete(self, key: str) -> None:
        await self._send("DELETE", key, ok=(200, 204, 404))

    async def size(self, key: str) -> int | None:
        response = await self._send("HEAD", key, ok=(200, 404))
        return int(response.headers["content-length"]) if response.status_code == 200 else None

    async def _begin(self, key: str) -> str:
        response = await self._send("POST", key, {"uploads": ""})
        found = _UPLOAD_ID.search(response.text)
        if found is None:
            raise ProviderError(f"S3 did not start an upload of {key}.")
        return found.group(1)

    async def _part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        query = {"partNumber": str(number), "uploadId": upload_id}
        return (await self._send("PUT", key, query, data)).headers["etag"]

    async def _send(
        self,
        method: str,
        key: str,
        query: dict[str, str] | None = None,
        body: bytes = b"",
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        try:
            response = await self._http.send(self._request(method, key, query or {}, body))
        except httpx.HTTPError as exc:
            raise ProviderError(f"S3 {method} {key} failed: {exc}") from exc
        # A multipart completion can fail after its 200 has begun: the error is then the body.
        if response.status_code not in ok or (method == "POST" and "<Error>" in response.text):
            raise ProviderError(f"S3 {method} {key} failed: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def _request(self, method: str, key: str, query: dict[str, str] | None = None, body: bytes = b"") -> httpx.Request:
        query = query or {}
        path = object_path(self._bucket, self._prefix + key)
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        access_key, secret_key = self._credentials
        headers = signed_headers(
            method,
            self._host,
            path,
            query,
            digest,
            access_key=access_key,
            secret_key=secret_key,
            region=self._region,
            now=datetime.now(UTC),
        )
        url = self._endpoint + path + (f"?{query_string(query)}" if query else "")
        return self._http.build_request(method, url, headers=headers, content=body or None)


def _completion(etags: list[str]) -> bytes:
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in enumerate(etags, 1))
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


async def _body(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()
