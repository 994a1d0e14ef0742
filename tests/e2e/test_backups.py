"""Backups on a real gateway (dev model): an instance with a chat turn and a workspace file is backed up while it
runs (its gateway quiesced by its suspend fence and resumed), and the archive downloads whole, passes OpenClaw's own
`backup verify`, holds the file and the session, and holds neither the gateway token, nor the instance's model
credential, nor the organization's model key. A stop asked while a backup runs waits for it (the lease)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES
from tests.conftest import SHARED_RUNTIME
from tests.e2e.harness import Server
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e
log = logging.getLogger("tests.backups")

ORG_MODEL_KEY = "sk-ant-org-backup-test-key-0451"
PHRASE = "the lighthouse keeper counts seventeen gulls"
NOTE = "Lantern oil: second shelf, behind the charts.\n"


def _secrets(data_dir: Path, instance_id: str) -> list[str]:
    """The instance's gateway token and model credential, decrypted as the server would."""
    box = SecretBox.from_settings(Settings(data_dir=data_dir))
    with sqlite3.connect(data_dir / "chowder.db") as db:
        row = db.execute(
            "SELECT gateway_token_enc, model_token_enc FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
    return [box.decrypt(row[0]), box.decrypt(row[1])]


def _openclaw_verify(archive: Path) -> dict[str, Any]:
    """OpenClaw's own `backup verify`, run on this host against a scratch state dir."""
    cache = RuntimeCache(SHARED_RUNTIME)
    scratch = Path(tempfile.mkdtemp(prefix="chowder-verify-", dir="/tmp"))
    env = {"HOME": str(scratch), "OPENCLAW_STATE_DIR": str(scratch / "state"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    argv = [
        str(cache.node),
        str(cache.entrypoint(RELEASES[DEFAULT_RELEASE])),
        "backup",
        "verify",
        str(archive),
        "--json",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict: dict[str, Any] = json.loads(done.stdout)
    return verdict


def test_a_running_instance_is_backed_up_consistently_and_without_our_secrets(
    server_factory: type[Server], data_dir: Path
) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    server.start()
    key = signup(server.client, "Backups", model_keys={"anthropic": ORG_MODEL_KEY})
    instance_id = create_instance(server.client, key)["id"]
    assert server.wait_status(key, instance_id, {"running", "error"})["status"] == "running"
    base, headers = f"/v1/instances/{instance_id}", auth(key)
    written = server.client.put(
        f"{base}/files/content", headers=headers, json={"path": "workspace/notes/lantern.md", "content": NOTE}
    )
    assert written.status_code == 204
    turn = server.client.post(
        f"{base}/session/harbour/responses", headers=headers, json={"model": "claude-sonnet-4-5", "input": PHRASE}
    )
    assert turn.status_code == 200 and PHRASE in output_text(turn.json())

    started = time.monotonic()
    response = server.client.post(f"{base}/backups", headers=headers)
    took_s = time.monotonic() - started
    assert response.status_code == 201, response.text
    backup = response.json()
    assert backup["status"] == "completed" and backup["trigger"] == "manual" and backup["error"] is None
    # The fence was lifted: the gateway takes turns again at once.
    again = server.client.post(
        f"{base}/session/harbour/responses", headers=headers, json={"model": "claude-sonnet-4-5", "input": "and now?"}
    )
    assert again.status_code == 200, again.text

    download = server.client.get(f"{base}/backups/{backup['id']}/download", headers=headers)
    assert download.status_code == 200
    data = download.content
    assert len(data) == backup["size_bytes"] and hashlib.sha256(data).hexdigest() == backup["sha256"]
    archive = data_dir / "downloaded.tar.gz"
    archive.write_bytes(data)
    verdict = _openclaw_verify(archive)
    assert verdict.get("ok", True) is not False, verdict

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        files = {name: tar.extractfile(member).read() for name, member in members.items()}  # type: ignore[union-attr]
    [note] = [name for name in files if name.endswith("workspace/notes/lantern.md")]
    assert files[note] == NOTE.encode()
    assert any(name.endswith("/manifest.json") for name in files)
    holding = [name for name, content in files.items() if PHRASE.encode() in content]
    assert any(name.endswith(".sqlite") for name in holding), holding  # the session, in OpenClaw's own database
    everything = gzip.decompress(data)
    for secret in [*_secrets(data_dir, instance_id), ORG_MODEL_KEY]:
        assert secret.encode() not in everything

    # A stop asked while a backup runs is carried out once the backup is done: both hold the instance's lease.
    ended: dict[str, float] = {}

    def back_up() -> None:
        assert server.client.post(f"{base}/backups", headers=headers).status_code == 201
        ended["backup"] = time.monotonic()

    runner = threading.Thread(target=back_up)
    runner.start()
    time.sleep(1.0)
    stopped = server.client.post(f"{base}/stop", headers=headers)
    ended["stop"] = time.monotonic()
    runner.join()
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
    assert ended["stop"] > ended["backup"]
    listed = server.client.get(f"{base}/backups", headers=headers).json()
    assert [b["status"] for b in listed] == ["completed", "completed"]
    with (data_dir / "chowder.db").open("rb"):
        pass
    with sqlite3.connect(data_dir / "chowder.db") as db:
        events = [
            json.loads(row[0]) for row in db.execute("SELECT data FROM webhook_events WHERE type = 'backup.completed'")
        ]
    assert sorted(event["backup"]["id"] for event in events) == sorted(b["id"] for b in listed)
    log.info("backup of a running instance: %d bytes in %.1f s", backup["size_bytes"], took_s)
