"""`chowder backups`, run as a process against a real server without the lifecycle engine: a refusal is one line
with the server's detail, and a completed backup is listed (the organization's and the instance's), saved to disk
whole and deleted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.client.conftest import Cli, Org
from tests.client.test_sdk_backups import ARCHIVE, completed_on


def test_backups_are_listed_saved_and_deleted(cli: Cli, org: Org, tmp_path: Path) -> None:
    cli("login", "--url", org.server.url, "--key", org.key)
    instance_id = cli("instances", "create", "kept").stdout.strip()
    refused = cli("backups", "create", "kept", ok=False)
    assert refused.returncode != 0
    assert "Instance is provisioning; it must be running or stopped to be backed up." in refused.stderr
    backup_id = completed_on(org, instance_id)
    listed = json.loads(cli("backups", "ls", "--json").stdout)
    assert [(b["id"], b["status"], b["instance_id"]) for b in listed] == [(backup_id, "completed", instance_id)]
    assert backup_id in cli("backups", "ls", "kept").stdout
    saved = cli("backups", "get", backup_id, str(tmp_path))
    archive = tmp_path / f"{backup_id}.tar.gz"
    assert f"Saved {len(ARCHIVE)} bytes" in saved.stderr
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == listed[0]["sha256"]
    cli("backups", "rm", backup_id)
    assert json.loads(cli("backups", "ls", "--json").stdout) == []
