"""The SDK's backup calls against a real server without the lifecycle engine: a refusal comes back typed, a
schedule is set and cleared, and a completed backup (as a run leaves it: its row and its archive in the data dir)
is listed, read, downloaded and deleted through the instance's routes and the organization's."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chowder.client import Conflict, NotFound
from chowder.schemas.backups import BackupSchedule
from tests.client.conftest import Org

ARCHIVE = b"openclaw's archive of the agent"


def completed_on(org: Org, instance_id: str) -> str:
    """A completed backup as a run leaves it: its row on the server's database and its archive in its data dir."""
    backup_id = "bkp_" + hashlib.sha256(instance_id.encode()).hexdigest()[:24]
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(org.server.data_dir / "chowder.db") as db:
        db.execute(
            "INSERT INTO backups VALUES (?, ?, ?, 'completed', 'manual', ?, ?, '2026.9.6', '2026.9.6', ?, ?, NULL)",
            (backup_id, org.id, instance_id, len(ARCHIVE), hashlib.sha256(ARCHIVE).hexdigest(), now, now),
        )
    store = org.server.data_dir / "backups"
    store.mkdir(mode=0o700, exist_ok=True)
    (store / f"{backup_id}.tar.gz").write_bytes(ARCHIVE)
    return backup_id


def test_backups_through_the_sdk(org: Org, tmp_path: Path) -> None:
    with org.client() as chowder:
        created = chowder.instances.create("agent", backup_schedule=BackupSchedule(every_hours=12, keep=3))
        assert created.backup_schedule == BackupSchedule(every_hours=12, keep=3)
        assert chowder.instances.update(created.id, backup_schedule=None).backup_schedule is None
        with pytest.raises(Conflict, match="Instance is provisioning; it must be running or stopped"):
            chowder.backups.create(created.id)
        with pytest.raises(NotFound, match="Backup not found."):
            chowder.backups.get("bkp_missing")

        backup_id = completed_on(org, created.id)
        assert [b.id for b in chowder.backups.list(created.id)] == [backup_id]
        assert [b.id for b in chowder.backups.list()] == [backup_id]
        backup = chowder.backups.get(backup_id, instance_id=created.id)
        assert backup.status == "completed" and backup.size_bytes == len(ARCHIVE)
        with chowder.backups.open(backup_id) as download:
            assert download.save(tmp_path / "backup.tar.gz") == len(ARCHIVE)
        assert hashlib.sha256((tmp_path / "backup.tar.gz").read_bytes()).hexdigest() == backup.sha256
        chowder.backups.delete(backup_id)
        assert chowder.backups.list() == []
