"""Scheduled backups: `backup_schedule` set on create and PATCH (validated, shown, null clears it), and the
schedule's tick on the real app: it fails the backups whose run died, claims a due instance once however many
ticks race for it, takes its backup with OpenClaw's CLI in its real sandbox, and keeps the newest `keep` scheduled
ones (a manual backup is never pruned)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, update

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.domain.backup_schedule import BackupSchedules
from chowder.persistence.tables import InstanceRow
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES
from chowder.sandbox.base import Resources, SandboxSpec
from chowder.sandbox.process import ProcessProvider
from tests.api.conftest import sql
from tests.api.test_backups_api import _org_id, completed_backup
from tests.conftest import SHARED_RUNTIME
from tests.factories import auth, create_instance, signup

# The repository's statements (the sweep's lease join, the due claim) run again on PostgreSQL.
pytestmark = [pytest.mark.persistence, pytest.mark.timeout(180)]


def _due_now(settings: Settings, instance_id: str) -> None:
    """Written as the app writes timestamps (through the mapped column), so the app's comparisons hold."""
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    past = datetime.now(UTC) - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(update(InstanceRow).where(InstanceRow.id == instance_id).values(backup_due_at=past))
    engine.dispose()


def _ticks(client: TestClient, count: int = 1) -> int:
    """`count` ticks of the schedule at once, each with its own runner, the backups they started awaited; how many
    backups were started."""

    async def run() -> int:
        backups = client.app.state.chowder.backups  # type: ignore[attr-defined]
        started = await asyncio.gather(*(BackupSchedules(backups).tick() for _ in range(count)))
        tasks = [task for ticked in started for task in ticked]
        await asyncio.gather(*tasks)
        return len(tasks)

    found: int = client.portal.call(run)  # type: ignore[union-attr]
    return found


def test_a_schedule_is_set_shown_changed_and_cleared(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    before = datetime.now(UTC)
    created = create_instance(client, key, backup_schedule={"every_hours": 24})
    assert created["backup_schedule"] == {"every_hours": 24, "keep": 7}
    due = sql(settings, "SELECT backup_due_at FROM instances WHERE id = :i", i=created["id"])[0]
    assert str(before + timedelta(hours=24))[:13] <= str(due)[:13]  # one interval on
    base = f"/v1/instances/{created['id']}"
    changed = client.patch(base, json={"backup_schedule": {"every_hours": 6, "keep": 2}}, headers=auth(key))
    assert changed.status_code == 200 and changed.json()["backup_schedule"] == {"every_hours": 6, "keep": 2}
    renamed = client.patch(base, json={"name": "kept"}, headers=auth(key)).json()
    assert renamed["backup_schedule"] == {"every_hours": 6, "keep": 2}  # untouched by another change
    cleared = client.patch(base, json={"backup_schedule": None}, headers=auth(key)).json()
    assert cleared["backup_schedule"] is None
    assert sql(settings, "SELECT backup_due_at FROM instances WHERE id = :i", i=created["id"])[0] is None
    assert client.get(base, headers=auth(key)).json()["backup_schedule"] is None


@pytest.mark.parametrize(
    "schedule", [{"every_hours": 0}, {"every_hours": 8761}, {"every_hours": 1, "keep": 0}, {"keep": 3}, {"every": 1}]
)
def test_a_wrong_schedule_is_refused(client: TestClient, schedule: dict[str, Any]) -> None:
    key = signup(client)
    response = client.post("/v1/instances", json={"name": "a", "backup_schedule": schedule}, headers=auth(key))
    assert response.status_code == 422


def test_a_backup_whose_run_died_is_failed_and_its_archive_removed(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    backup_id = completed_backup(settings, _org_id(client, key), instance_id, b"half an archive")
    sql(settings, "UPDATE backups SET status = 'creating', completed_at = NULL WHERE id = :i", i=backup_id)
    assert _ticks(client) == 0
    swept = client.get(f"/v1/backups/{backup_id}", headers=auth(key)).json()
    assert swept["status"] == "failed" and swept["error"] == "Interrupted: the process taking the backup stopped."
    assert not (settings.data_dir / "backups" / f"{backup_id}.tar.gz").exists()


def test_due_backups_are_taken_once_and_the_newest_kept(client: TestClient, settings: Settings) -> None:
    cache = RuntimeCache(SHARED_RUNTIME)
    if not cache.is_installed(RELEASES[DEFAULT_RELEASE]):
        pytest.skip("OpenClaw runtime not installed; run `chowder runtime install`")
    key = signup(client)
    instance_id = create_instance(client, key, backup_schedule={"every_hours": 24, "keep": 1})["id"]
    sql(settings, "UPDATE instances SET status = 'stopped', desired_state = 'stopped' WHERE id = :i", i=instance_id)
    shared = (cache.node_dir, cache.release_dir(RELEASES[DEFAULT_RELEASE]))
    spec = SandboxSpec(sandbox_id_for(instance_id), {}, Resources(memory_mb=1024, cpus=1, pids=256), shared)
    asyncio.run(ProcessProvider(settings).create(spec))
    manual = client.post(f"/v1/instances/{instance_id}/backups", headers=auth(key)).json()
    assert _ticks(client) == 0  # not due yet

    _due_now(settings, instance_id)
    assert _ticks(client, count=3) == 1  # three racing ticks, one claim
    [first] = [b for b in client.get("/v1/backups", headers=auth(key)).json() if b["trigger"] == "scheduled"]
    assert first["status"] == "completed"
    due = sql(settings, "SELECT backup_due_at FROM instances WHERE id = :i", i=instance_id)[0]
    assert str(due) > str(datetime.now(UTC) + timedelta(hours=23))

    _due_now(settings, instance_id)
    assert _ticks(client) == 1
    listed = client.get(f"/v1/instances/{instance_id}/backups", headers=auth(key)).json()
    scheduled = [b["id"] for b in listed if b["trigger"] == "scheduled"]
    assert len(scheduled) == 1 and scheduled != [first["id"]]  # the older scheduled one pruned
    assert manual["id"] in [b["id"] for b in listed]
    assert not (settings.data_dir / "backups" / f"{first['id']}.tar.gz").exists()
