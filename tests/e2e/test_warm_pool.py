"""The warm pool on real gateways: a create claims the pre-booted gateway and runs within seconds, with its own
config, credentials and uid (not the pool's), answers with the model credential it inherited, and the pool
refills with a member of its own."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.harness import Server, destroy_sandboxes, gateway_pids, require_runtime
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"
POOL_BOOT_S = 240  # a cold boot on a loaded 2-core machine, with its warm-up turn
PROMPT = "You are the pool test's agent."


def _ready_members(data_dir: Path) -> dict[str, str]:
    """Ready members (sandbox: model credential hash), read from the server's database without its help."""
    with sqlite3.connect(data_dir / "chowder.db") as db:
        rows = db.execute("SELECT sandbox_id, model_token_hash FROM warm_gateways WHERE state = 'ready'").fetchall()
    return dict(rows)


def _until_ready(server: Server, excluding: set[str]) -> tuple[str, str]:
    deadline = time.monotonic() + POOL_BOOT_S
    while not (ready := {s: h for s, h in _ready_members(server.data_dir).items() if s not in excluding}):
        assert time.monotonic() < deadline, f"the pool never filled\n{server.log_text()[-5000:]}"
        time.sleep(0.5)
    ((sandbox_id, token_hash),) = ready.items()
    return sandbox_id, token_hash


def _instance_row(data_dir: Path, instance_id: str) -> tuple[str, str]:
    with sqlite3.connect(data_dir / "chowder.db") as db:
        row = db.execute("SELECT sandbox_id, model_token_hash FROM instances WHERE id = ?", (instance_id,)).fetchone()
    return row[0], row[1]


def _uids(gateway_url: str) -> set[int]:
    pids = gateway_pids(gateway_url)
    assert pids, f"no gateway listens at {gateway_url}"
    return {
        int(line.split()[1])
        for pid in pids
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    }


def test_a_create_claims_the_warm_gateway_and_the_pool_refills(data_dir: Path) -> None:
    require_runtime()
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1", CHOWDER_WARM_POOL_SIZE="1")
    try:
        server.start()
        key = signup(server.client, "Pool", model_keys={})
        member, member_token_hash = _until_ready(server, set())
        member_box = data_dir / "sandboxes" / member / "box"

        started = time.monotonic()
        config = {"agent": {"system_prompt": PROMPT}, "agents": {"defaults": {"userTimezone": "America/Chicago"}}}
        instance_id = create_instance(server.client, key, openclaw_config=config)["id"]
        body = server.wait_status(key, instance_id, {"running", "error"}, timeout_s=30)
        claimed_in = time.monotonic() - started
        assert body["status"] == "running", body["error_message"]
        assert claimed_in < 10, f"running {claimed_in:.1f} s after create: not from the pool"
        assert body["sandbox_id"] == member and body["power"] == "awake"

        sandbox_id, token_hash = _instance_row(data_dir, instance_id)
        assert sandbox_id == member and token_hash == member_token_hash, "the member's credential is now its own"
        files = f"/v1/instances/{instance_id}/files/content"
        live = server.client.get(files, headers=auth(key), params={"path": "openclaw.json"}).json()["content"]
        assert "America/Chicago" in live, "its config applied to the running gateway"
        prompt = server.client.get(files, headers=auth(key), params={"path": "workspace/AGENTS.md"}).json()
        assert PROMPT in prompt["content"]
        turn = server.client.post(
            f"/v1/instances/{instance_id}/responses", headers=auth(key), json={"model": CLAUDE, "input": "hello"}
        )
        assert turn.status_code == 200, turn.text
        assert "hello" in output_text(turn.json()), "answered through the model credential it inherited"

        refill, refill_token_hash = _until_ready(server, {member})
        assert refill != member and refill_token_hash != token_hash
        with sqlite3.connect(data_dir / "chowder.db") as db:
            (refill_url,) = db.execute(
                "SELECT gateway_url FROM warm_gateways WHERE sandbox_id = ?", (refill,)
            ).fetchone()
        instance_uids, refill_uids = _uids(body["gateway_url"]), _uids(refill_url)
        assert instance_uids.isdisjoint(refill_uids), (instance_uids, refill_uids)
        assert (data_dir / "sandboxes" / refill / "box").stat().st_uid != member_box.stat().st_uid

        deleted = server.client.delete(f"/v1/instances/{instance_id}", headers=auth(key))
        assert deleted.status_code in (200, 202, 204), deleted.text
    finally:
        server.stop()
        destroy_sandboxes(data_dir)
