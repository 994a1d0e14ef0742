"""The backup stores: the local one under the data dir, and the S3-compatible one against a real S3 server speaking
the protocol (moto, on 127.0.0.1). Both keep an archive whole or not at all."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio

from chowder.backupstore.local import LocalBackupStore
from chowder.backupstore.s3 import PART_BYTES, S3BackupStore
from chowder.core.errors import NotFound, ProviderError
from chowder.domain.ports.backups import BackupStore
from tests.fakes.moto_s3 import S3Server, moto_s3

KEY = "bkp_0123456789abcdef01234567.tar.gz"
Scenario = Callable[[BackupStore], Awaitable[None]]


async def _stream(*chunks: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for number, chunk in enumerate(chunks):
        if fail_after is not None and number == fail_after:
            raise OSError("the archive's source broke off")
        yield chunk


async def _read(store: BackupStore, key: str) -> bytes:
    opened = await store.open(key)
    data = b"".join([chunk async for chunk in opened.chunks])
    assert len(data) == opened.size
    return data


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def _on_s3(s3: S3Server, scenario: Scenario, secret_key: str | None = None) -> None:
    """`scenario` on a new bucket (the server outlives each test), signed with `secret_key` (the user's)."""
    bucket = f"chowder-test-{uuid.uuid4().hex[:12]}"
    host = s3.url.removeprefix("http://")
    Minio(host, s3.access_key, s3.secret_key, secure=False, region="us-east-1").make_bucket(bucket)
    secret = secret_key or s3.secret_key
    asyncio.run(scenario(S3BackupStore(s3.url, bucket, "backups/", "us-east-1", s3.access_key, secret)))


def _on_both(data_dir: Path, s3: S3Server, scenario: Scenario) -> None:
    asyncio.run(scenario(LocalBackupStore(data_dir / "backups")))
    _on_s3(s3, scenario)


def test_an_archive_is_kept_and_read_back_whole(data_dir: Path, s3: S3Server) -> None:
    async def scenario(store: BackupStore) -> None:
        assert await store.put(KEY, _stream(b"first part,", b"", b" second part")) == 23
        assert await _read(store, KEY) == b"first part, second part"
        assert await store.size(KEY) == 23
        assert await store.size("bkp_other.tar.gz") is None

    _on_both(data_dir, s3, scenario)


def test_a_large_archive_goes_up_in_parts(data_dir: Path, s3: S3Server) -> None:
    """Over two S3 parts (a multipart upload) in chunks that do not line up with them."""
    block = os.urandom(1024 * 1024 + 7)
    count = 2 * PART_BYTES // len(block) + 2

    async def scenario(store: BackupStore) -> None:
        assert await store.put(KEY, _stream(*[block] * count)) == len(block) * count
        assert await _read(store, KEY) == block * count

    _on_both(data_dir, s3, scenario)


@pytest.mark.parametrize("chunks", [3, 2 * PART_BYTES // (1024 * 1024) + 3], ids=["small", "multipart"])
def test_a_failed_put_leaves_nothing(data_dir: Path, s3: S3Server, chunks: int) -> None:
    async def scenario(store: BackupStore) -> None:
        with pytest.raises(OSError, match="broke off"):
            await store.put(KEY, _stream(*[b"x" * 1024 * 1024] * chunks, fail_after=chunks - 1))
        assert await store.size(KEY) is None
        with pytest.raises(NotFound):
            await store.open(KEY)

    _on_both(data_dir, s3, scenario)
    assert list((data_dir / "backups").iterdir()) == []  # no temporary file either


def test_delete_is_idempotent(data_dir: Path, s3: S3Server) -> None:
    async def scenario(store: BackupStore) -> None:
        await store.put(KEY, _stream(b"archive"))
        await store.delete(KEY)
        await store.delete(KEY)
        assert await store.size(KEY) is None

    _on_both(data_dir, s3, scenario)


def test_local_archives_are_private(data_dir: Path) -> None:
    store = LocalBackupStore(data_dir / "backups")
    asyncio.run(store.put(KEY, _stream(b"secret state")))
    assert stat.S_IMODE((data_dir / "backups").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "backups" / KEY).stat().st_mode) == 0o600


def test_a_local_key_cannot_leave_its_directory(data_dir: Path) -> None:
    store = LocalBackupStore(data_dir / "backups")
    for key in ("../escape.tar.gz", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            asyncio.run(store.put(key, _stream(b"x")))


def test_s3_requests_are_signed_and_a_wrong_secret_is_refused(s3: S3Server) -> None:
    """The server checks each request's SigV4 signature: the store's pass (every test here), a wrong key's do not."""

    async def scenario(store: BackupStore) -> None:
        with pytest.raises(ProviderError, match="HTTP 403"):
            await store.put(KEY, _stream(b"archive"))

    _on_s3(s3, scenario, secret_key="not-the-secret")
