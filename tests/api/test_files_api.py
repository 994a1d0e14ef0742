"""The files routes' bounds, on the real process provider (a created sandbox, no gateway): downloads stream
in chunks with their size up front, inline reads are bounded, a planted FIFO is refused at once, and uploads
are held to max_upload_mb whether the route or the body limit catches them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import MIB, Settings
from chowder.sandbox.base import Resources, SandboxSpec
from chowder.sandbox.process import ProcessProvider
from tests.api.conftest import client_for, pretend_running
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def upload_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_mb": 2})


@pytest.fixture
def files_client(upload_settings: Settings) -> Iterator[TestClient]:
    with client_for(upload_settings) as test_client:
        yield test_client


@pytest.fixture
def instance(files_client: TestClient, upload_settings: Settings) -> tuple[str, dict[str, str], Path]:
    """A running instance's files base URL, the owner's headers, and its sandbox root as the tenant sees it."""
    key = signup(files_client)
    instance_id = create_instance(files_client, key)["id"]
    pretend_running(upload_settings, instance_id)
    spec = SandboxSpec(sandbox_id_for(instance_id), {}, Resources(memory_mb=256, cpus=0.5, pids=64))
    root = Path(asyncio.run(ProcessProvider(upload_settings).create(spec)).root)
    return f"/v1/instances/{instance_id}/files", auth(key), root


def test_a_download_streams_in_chunks_with_its_size_up_front(
    files_client: TestClient, instance: tuple[str, dict[str, str], Path]
) -> None:
    base, headers, root = instance
    data = os.urandom(24 * MIB)
    (root / "big.bin").write_bytes(data)
    digest, chunks = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with files_client.stream("GET", f"{base}/download", headers=headers, params={"path": "big.bin"}) as response:
            for chunk in response.iter_raw():
                digest.update(chunk)
                chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200 and digest.digest() == hashlib.sha256(data).digest()
    assert response.headers["content-length"] == str(len(data)) and chunks >= 24 * 4
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith('attachment; filename="big.bin"')
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB: the file was held whole"


def test_inline_reads_are_bounded_and_a_fifo_is_refused_at_once(
    files_client: TestClient, instance: tuple[str, dict[str, str], Path]
) -> None:
    base, headers, root = instance
    with open(root / "huge.log", "wb") as sparse:
        sparse.truncate(20 * 1024**3)
    too_big = files_client.get(f"{base}/content", headers=headers, params={"path": "huge.log"})
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == (
        "The file is larger than 10 MiB, the most returned inline; "
        "use GET /v1/instances/{instance_id}/files/download instead."
    )
    os.mkfifo(root / "pipe")
    for route in ("content", "download"):
        refused = files_client.get(f"{base}/{route}", headers=headers, params={"path": "pipe"})
        assert (refused.status_code, refused.json()) == (400, {"detail": "Not a regular file."}), route


def test_uploads_up_to_max_upload_mb_pass_and_larger_ones_are_413(
    files_client: TestClient, instance: tuple[str, dict[str, str], Path]
) -> None:
    base, headers, root = instance

    def upload(size: int) -> tuple[int, object]:
        files = {"file": ("f.bin", b"u" * size, "application/octet-stream")}
        response = files_client.post(f"{base}/upload", headers=headers, data={"path": "up/f.bin"}, files=files)
        return response.status_code, response.json() if response.content else None

    assert upload(2 * MIB) == (204, None)  # over the 1 MiB of JSON routes: file routes take max_upload_mb
    assert (root / "up" / "f.bin").stat().st_size == 2 * MIB
    assert upload(2 * MIB + 1) == (413, {"detail": "The file exceeds the 2 MiB limit."})
    assert upload(3 * MIB) == (413, {"detail": "The request body exceeds the 2 MiB limit of this endpoint."})
    write = files_client.put(f"{base}/content", headers=headers, json={"path": "w.txt", "content": "w" * 2 * MIB})
    assert write.status_code == 204 and (root / "w.txt").stat().st_size == 2 * MIB
