"""Restore and clone routes without the engine: what is refused and with which answer (400, 402, 404, 409, 422),
and what a clone's create records (the backup to boot on) when it is accepted."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from tests.api.conftest import sql
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence


def _backup(settings: Settings, instance_id: str, status: str = "completed") -> str:
    """A backup row of the instance's org, as the backups service leaves one (no archive is read here)."""
    backup_id = str(uuid.uuid4())
    sql(
        settings,
        "INSERT INTO backups (id, organization_id, instance_id, status, trigger, openclaw_version, openclaw_release,"
        " created_at) SELECT :b, organization_id, id, :s, 'manual', openclaw_version, openclaw_release, :at"
        " FROM instances WHERE id = :i",
        b=backup_id,
        s=status,
        i=instance_id,
        at=utcnow(),  # type: ignore[arg-type]
    )
    return backup_id


def _status(settings: Settings, instance_id: str, status: str) -> None:
    sql(settings, "UPDATE instances SET status = :s WHERE id = :i", s=status, i=instance_id)


def _restore(client: TestClient, key: str, instance_id: str, body: object) -> tuple[int, object]:
    response = client.post(f"/v1/instances/{instance_id}/restore", headers=auth(key), json=body)
    return response.status_code, response.json()


def test_restore_refuses_unknown_foreign_and_unfinished_backups_and_the_wrong_status(
    client: TestClient, settings: Settings
) -> None:
    key, stranger = signup(client), signup(client, "Stranger")
    instance_id = create_instance(client, key)["id"]
    theirs = create_instance(client, stranger)["id"]
    _status(settings, instance_id, "stopped")
    not_found = (404, {"detail": "Backup not found."})
    assert _restore(client, key, instance_id, {"backup_id": "no-such-backup"}) == not_found
    assert _restore(client, key, instance_id, {"backup_id": _backup(settings, theirs)}) == not_found
    assert _restore(client, key, instance_id, {"backup_id": _backup(settings, instance_id, "creating")}) == (
        409,
        {"detail": "Backup is creating; it must be completed to restore."},
    )
    completed = _backup(settings, instance_id)
    assert _restore(client, stranger, instance_id, {"backup_id": completed}) == (
        404,
        {"detail": "Instance not found."},
    )
    _status(settings, instance_id, "provisioning")
    assert _restore(client, key, instance_id, {"backup_id": completed}) == (
        409,
        {"detail": "Instance is provisioning; it must be running, stopped or error to restore a backup."},
    )
    assert _restore(client, key, instance_id, {})[0] == 422
    assert _restore(client, key, instance_id, {"backup_id": completed, "force": True})[0] == 422
    scoped = scoped_key(client, key, [instance_id], ["read", "configure"])
    assert _restore(client, scoped, instance_id, {"backup_id": completed}) == (
        403,
        {"detail": "This endpoint requires an organization key."},
    )


def _clone(client: TestClient, key: str, **fields: object) -> tuple[int, dict[str, object]]:
    response = client.post("/v1/instances", headers=auth(key), json={"name": "clone", **fields})
    return response.status_code, response.json()


def test_clone_refuses_both_sources_unknown_ones_another_orgs_and_config_and_counts_against_the_tier(
    client: TestClient, settings: Settings
) -> None:
    key, stranger = signup(client), signup(client, "Stranger")
    original = create_instance(client, key, openclaw_config={"agent": {"system_prompt": "Be brief."}})["id"]
    theirs = create_instance(client, stranger)["id"]
    backup = _backup(settings, original)
    assert _clone(client, key, from_backup=backup, clone_from=original) == (
        400,
        {"detail": "Give either from_backup or clone_from, not both."},
    )
    assert _clone(client, key, from_backup="nope") == (404, {"detail": "Backup not found."})
    assert _clone(client, key, from_backup=_backup(settings, theirs)) == (404, {"detail": "Backup not found."})
    assert _clone(client, key, clone_from="nope") == (404, {"detail": "Instance not found."})
    assert _clone(client, key, clone_from=theirs) == (404, {"detail": "Instance not found."})
    assert _clone(client, key, from_backup=_backup(settings, original, "failed"))[0] == 409
    assert _clone(client, key, from_backup=backup, openclaw_config={"a": 1}) == (
        400,
        {
            "detail": "openclaw_config cannot be given with from_backup or clone_from: the clone takes the "
            "original's; change it with PATCH once the clone runs."
        },
    )
    assert _clone(client, key, from_backup=backup) == (
        402,
        {"detail": "Instance limit reached (1/1). Upgrade your subscription."},
    )
    sql(settings, "UPDATE organizations SET subscription_tier = 'crab'")
    status, clone = _clone(client, key, from_backup=backup)
    assert status == 201 and clone["status"] == "provisioning" and clone["id"] != original
    assert clone["openclaw_config"] == {"agent": {"system_prompt": "Be brief."}}, "the original's overrides"
    row = sql(settings, "SELECT restore_backup_id FROM instances WHERE id = :i", i=str(clone["id"]))
    assert row[0] == backup, "the engine restores this backup before the clone's first boot"
    assert sql(settings, "SELECT restore_backup_id FROM instances WHERE id = :i", i=original)[0] is None
