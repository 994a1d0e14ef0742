"""Version upgrades on a real gateway (the dev model, whose echo names every earlier user message it was sent, so
each answer shows the history the model saw). BOOTS SEVERAL GATEWAYS, one at a time (seven launches, five of them
full boots; ~6 min here): one instance is created on 2026.9.5 and upgraded to 2026.9.6 (history kept). Straight back
to 2026.9.5 is refused by OpenClaw (2026.9.6 migrated the state's databases) and rolled back on its own; back
through the backup taken before the upgrade (`upgrade_from_backup`, OpenClaw's documented way past a migration)
runs 2026.9.5 on the state of before. Then 2026.9.6 is broken (its entry point replaced by a script that exits 3)
and an upgrade to it is rolled back automatically: the instance answers on 2026.9.5 and error_message says why.
The server runs on a private runtime dir of hard links to the shared one (never written through: the broken file
is unlinked first). Times are logged (`-o log_cli=true --log-cli-level=INFO`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_RUNTIME
from tests.e2e.harness import Server, one_gateway, sandbox_box
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

OLD, NEW = "2026.9.5", "2026.9.6"
SESSION = "upgrades"


def _say(server: Server, key: str, instance_id: str, text: str) -> str:
    response = server.client.post(
        f"/v1/instances/{instance_id}/session/{SESSION}/responses",
        headers=auth(key),
        json={"model": "claude-sonnet-4-20250514", "input": text},
    )
    assert response.status_code == 200, response.text
    return output_text(response.json())


def _upgrade(
    server: Server, key: str, instance_id: str, version: str, **fields: str
) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    asked = {"openclaw_version": version, **fields}
    response = server.client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json=asked, timeout=900)
    return response.status_code, response.json(), time.monotonic() - started


def _gateway_release(server: Server, key: str, instance_id: str) -> str:
    """The release the running gateway was started from, as its process shows it (not as the product says)."""
    gateway_url = server.client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["gateway_url"]
    pid = one_gateway(server, gateway_url)
    maps = Path(f"/proc/{pid}/maps").read_text()
    return " ".join(sorted(release for release in (OLD, NEW) if f"openclaw-{release}/" in maps))


def _private_runtime(data_dir: Path) -> Path:
    """The shared runtime as hard links (same filesystem): nothing of it is written, files are only replaced."""
    private = data_dir / "runtime"
    subprocess.run(["cp", "-al", str(SHARED_RUNTIME), str(private)], check=True)
    return private


def _break(runtime: Path, release: str) -> None:
    """The release's entry point replaced by one that exits 3: unlinked first, so the shared file is untouched."""
    entry = runtime / f"openclaw-{release}" / "node_modules" / "openclaw" / "openclaw.mjs"
    shared = SHARED_RUNTIME / entry.relative_to(runtime)
    assert os.path.samefile(entry, shared), "a hard link of the shared runtime's file"
    original = shared.read_bytes()
    entry.unlink()
    entry.write_text("console.error('broken on purpose by the upgrade test'); process.exit(3);\n")
    assert not os.path.samefile(entry, shared) and shared.read_bytes() == original, "the shared file untouched"


def test_an_instance_upgrades_downgrades_and_rolls_back_a_broken_release_on_its_own(
    server_factory: type[Server], data_dir: Path
) -> None:
    runtime = _private_runtime(data_dir)
    server = server_factory(
        data_dir,
        f"sqlite:///{data_dir / 'chowder.db'}",
        CHOWDER_DEV_MODEL="1",
        CHOWDER_RUNTIME_DIR=str(runtime),
        CHOWDER_UPGRADE_TIMEOUT_S="240",
    )
    server.start()
    key = signup(server.client, "Upgraders", model_keys={})
    instance_id = create_instance(server.client, key, openclaw_version=OLD)["id"]
    body = server.wait_status(key, instance_id, {"running", "error"})
    assert (body["status"], body["openclaw_version"]) == ("running", OLD), body["error_message"]
    assert _gateway_release(server, key, instance_id) == OLD
    assert _say(server, key, instance_id, "one").endswith("last=one history=")

    status, upgraded, upgrade_s = _upgrade(server, key, instance_id, NEW)
    assert status == 200, upgraded
    assert (upgraded["status"], upgraded["openclaw_version"], upgraded["error_message"]) == ("running", NEW, None)
    assert _gateway_release(server, key, instance_id) == NEW
    assert "history=one" in _say(server, key, instance_id, "two"), "the history kept across the upgrade"

    # Straight back: 2026.9.6 migrated the state's databases, which 2026.9.5 refuses; rolled back on its own.
    status, refused, refused_s = _upgrade(server, key, instance_id, OLD)
    assert status == 502, refused
    assert refused["detail"].startswith(f"Upgrade to {OLD} was rolled back: The gateway exited"), refused
    assert "database schema(s) are newer than this build" in refused["detail"]
    assert _gateway_release(server, key, instance_id) == NEW
    assert "history=one|two" in _say(server, key, instance_id, "three"), "on 2026.9.6 again, as it was"

    # Back the way OpenClaw documents it: the backup taken before the upgrade, on its own release (turns since lost).
    backups = server.client.get(f"/v1/instances/{instance_id}/backups", headers=auth(key)).json()
    before_upgrade = next(b for b in backups if b["openclaw_version"] == OLD)
    status, downgraded, downgrade_s = _upgrade(server, key, instance_id, OLD, upgrade_from_backup=before_upgrade["id"])
    assert status == 200, downgraded
    assert (downgraded["openclaw_version"], downgraded["error_message"]) == (OLD, None)
    assert _gateway_release(server, key, instance_id) == OLD
    assert _say(server, key, instance_id, "four").endswith("last=four history=one"), "the state of before the upgrade"
    config = json.loads((sandbox_box(data_dir, instance_id) / "root" / "openclaw.json").read_text())
    assert config["meta"]["lastTouchedVersion"] == OLD, "its own release's state: a restart needs no override"

    _break(runtime, NEW)
    status, broken, rollback_s = _upgrade(server, key, instance_id, NEW)
    assert status == 502, broken
    assert broken["detail"].startswith(f"Upgrade to {NEW} was rolled back: "), broken
    after = server.client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()
    assert (after["status"], after["openclaw_version"], after["error_message"]) == ("running", OLD, broken["detail"])
    assert _gateway_release(server, key, instance_id) == OLD
    assert "history=one|four" in _say(server, key, instance_id, "five"), "answers on the old release"

    backups = server.client.get(f"/v1/instances/{instance_id}/backups", headers=auth(key)).json()
    assert [(b["trigger"], b["status"]) for b in backups] == [("upgrade", "completed")] * 4
    log.info(
        "upgrade %s -> %s: %.1f s; downgrade refused and rolled back: %.1f s; downgrade from the backup: %.1f s; "
        "broken release rolled back: %.1f s (%s)",
        OLD,
        NEW,
        upgrade_s,
        refused_s,
        downgrade_s,
        rollback_s,
        broken["detail"].splitlines()[0],
    )
