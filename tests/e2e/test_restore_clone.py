"""Restore and clone on real gateways (the dev model, whose echo names every earlier user message it was sent, so
each answer shows the history the model saw). One instance with chat history, a workspace file and a channel is
backed up; the file is deleted and the chat goes on; the restore brings back the file and the history of the
backup, not the later turns, under a new gateway token. A clone then chats on the original's history with its own
credentials and without the original's channel, while the original is left as it was; a restore of the clone
that the control plane is SIGKILLed in is finished by the restarted one. Never more than two
gateways; restore and clone times are logged (`-o log_cli=true --log-cli-level=INFO`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import BOOT_TIMEOUT_S, Server, gateway_pids, sandbox_box
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

CLAUDE = "claude-sonnet-4-20250514"
SESSION = "trip"
BOT_TOKEN = "123456:restore-clone-secret"


def _say(server: Server, key: str, instance_id: str, text: str) -> str:
    response = server.client.post(
        f"/v1/instances/{instance_id}/session/{SESSION}/responses",
        headers=auth(key),
        json={"model": CLAUDE, "input": text},
    )
    assert response.status_code == 200, response.text
    return output_text(response.json())


def _file(server: Server, key: str, instance_id: str, path: str) -> tuple[int, Any]:
    response = server.client.get(f"/v1/instances/{instance_id}/files/content", params={"path": path}, headers=auth(key))
    return response.status_code, response.json()


def _holds(path: Path, secret: bytes) -> bool:
    return path.is_file() and not path.is_symlink() and secret in path.read_bytes()


def _gateway_env(gateway_url: str) -> dict[str, str]:
    """The running gateway's credentials as its process holds them (read from /proc, not from the product)."""
    (pid,) = gateway_pids(gateway_url)
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)
    return {name: env[name] for name in ("OPENCLAW_GATEWAY_TOKEN", "CHOWDER_MODEL_TOKEN")}


def test_restore_brings_back_the_backed_up_state_and_a_clone_chats_on_the_originals_history(
    server_factory: type[Server], data_dir: Path
) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    server.start()
    key = signup(server.client, "Restorers", model_keys={})
    with sqlite3.connect(data_dir / "chowder.db") as db:  # room for the clone
        db.execute("UPDATE organizations SET subscription_tier = 'crab'")
    original = create_instance(server.client, key)["id"]
    body = server.wait_status(key, original, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    base = f"/v1/instances/{original}"

    assert _say(server, key, original, "pack the tent").endswith("turns=1 msgs=1 last=pack the tent history=")
    written = {"path": "workspace/notes.txt", "content": "the tent is in the attic"}
    assert server.client.put(f"{base}/files/content", headers=auth(key), json=written).status_code == 204
    connected = server.client.post(
        f"{base}/channels/telegram/connect",
        headers=auth(key),
        json={"config": {"token": BOT_TOKEN, "apiRoot": "http://127.0.0.1:9"}},
    )
    assert connected.status_code == 200, connected.text
    started = time.monotonic()
    backup = server.client.post(f"{base}/backups", headers=auth(key))
    assert backup.status_code == 201, backup.text
    backup_s = time.monotonic() - started
    backup_id = backup.json()["id"]

    # Later: the file goes, the chat goes on.
    deleted = server.client.delete(f"{base}/files", params={"path": "workspace/notes.txt"}, headers=auth(key))
    assert deleted.status_code == 204
    assert "history=pack the tent" in _say(server, key, original, "and the stove")
    before = _gateway_env(server.client.get(base, headers=auth(key)).json()["gateway_url"])

    started = time.monotonic()
    restore = {"backup_id": backup_id}  # answered once the gateway runs: as long as a boot may take on a busy host
    restored = server.client.post(f"{base}/restore", headers=auth(key), json=restore, timeout=BOOT_TIMEOUT_S)
    restore_s = time.monotonic() - started
    assert restored.status_code == 200, restored.text + server.log_text()[-3000:]
    assert restored.json()["status"] == "running" and restored.json()["id"] == original
    assert _file(server, key, original, "workspace/notes.txt") == (200, written)
    answer = _say(server, key, original, "and the map")
    assert answer.endswith("turns=2 msgs=3 last=and the map history=pack the tent"), "not the later turn"
    after = _gateway_env(restored.json()["gateway_url"])
    assert after["OPENCLAW_GATEWAY_TOKEN"] != before["OPENCLAW_GATEWAY_TOKEN"]
    assert after["CHOWDER_MODEL_TOKEN"] != before["CHOWDER_MODEL_TOKEN"]
    config = json.loads(_file(server, key, original, "openclaw.json")[1]["content"])
    assert config["channels"]["telegram"]["botToken"] == BOT_TOKEN, "its own backup: its channel comes back"

    # A clone of the original as it is now: its history, its file, its own credentials, not its channel.
    originals_files = server.client.get(f"{base}/files", params={"path": "workspace"}, headers=auth(key)).json()
    started = time.monotonic()
    clone = server.client.post("/v1/instances", headers=auth(key), json={"name": "twin", "clone_from": original})
    assert clone.status_code == 201, clone.text
    clone_id = clone.json()["id"]
    body = server.wait_status(key, clone_id, {"running", "error"})
    clone_s = time.monotonic() - started
    assert body["status"] == "running", body["error_message"]
    assert _file(server, key, clone_id, "workspace/notes.txt") == (200, written)
    answer = _say(server, key, clone_id, "and the compass")
    assert answer.endswith("turns=3 msgs=5 last=and the compass history=pack the tent|and the map")
    clone_config_text = _file(server, key, clone_id, "openclaw.json")[1]["content"]
    assert "channels" not in json.loads(clone_config_text) and BOT_TOKEN not in clone_config_text
    clone_env = _gateway_env(body["gateway_url"])
    originals_env = _gateway_env(server.client.get(base, headers=auth(key)).json()["gateway_url"])
    assert not set(clone_env.values()) & set(originals_env.values()), "no credential of the original's reused"
    listing = server.client.get(f"/v1/instances/{clone_id}/files", params={"path": "."}, headers=auth(key)).json()
    assert "credentials" not in {entry["name"] for entry in listing["entries"]}
    carrying = [p for p in (sandbox_box(data_dir, clone_id) / "root").rglob("*") if _holds(p, BOT_TOKEN.encode())]
    assert carrying == [], "the bot token is nowhere in the clone's state (config, OpenClaw's .bak ring, databases)"
    journal_keys = [sandbox_box(data_dir, i) / "root" / "config-journal-fingerprint.key" for i in (original, clone_id)]
    made_anew = not journal_keys[1].exists() or journal_keys[0].read_bytes() != journal_keys[1].read_bytes()
    assert made_anew, "OpenClaw's own journal key is the clone's own (made when it first needs one)"

    # The original: running all along, its files and history as they were, its channel still there.
    assert server.client.get(base, headers=auth(key)).json()["status"] == "running"
    assert server.client.get(f"{base}/files", params={"path": "workspace"}, headers=auth(key)).json() == originals_files
    assert _say(server, key, original, "and the rope").endswith(
        "turns=3 msgs=5 last=and the rope history=pack the tent|and the map"
    ), "the clone's turn never reached the original"
    assert "telegram" in json.loads(_file(server, key, original, "openclaw.json")[1]["content"])["channels"]

    # A restore the control plane dies in (SIGKILL): the restarted one finishes it. The clone gets the first backup,
    # another instance's: its channel stays out.
    def restore_the_clone() -> None:
        with contextlib.suppress(httpx.HTTPError):
            server.client.post(
                f"/v1/instances/{clone_id}/restore", headers=auth(key), json=restore, timeout=BOOT_TIMEOUT_S
            )

    caller = threading.Thread(target=restore_the_clone)
    caller.start()
    server.wait_status(key, clone_id, {"provisioning"}, timeout_s=60)
    time.sleep(3)  # inside the restore (it takes 8-20 s here) or the boot after it: either must be finished
    server.kill()
    caller.join()
    server.start()
    body = server.wait_status(key, clone_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    assert _file(server, key, clone_id, "workspace/notes.txt") == (200, written)
    answer = _say(server, key, clone_id, "and the lamp")
    assert answer.endswith("turns=2 msgs=3 last=and the lamp history=pack the tent"), "the backup's history only"
    assert "channels" not in json.loads(_file(server, key, clone_id, "openclaw.json")[1]["content"])
    with sqlite3.connect(data_dir / "chowder.db") as db:
        assert db.execute("SELECT restore_backup_id FROM instances WHERE id = ?", (clone_id,)).fetchone() == (None,)

    figures = {"backup_s": round(backup_s, 1), "restore_s": round(restore_s, 1), "clone_s": round(clone_s, 1)}
    log.info("restore and clone timings: %s (cpus=%s)", json.dumps(figures), os.cpu_count())
    for instance_id in (clone_id, original):
        assert server.client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
