"""`PATCH /v1/instances/{id}` with `openclaw_version` on the real app without the engine: what is refused and with
which answer (400, 403, 404, 409), the release an instance runs already as no change, and an upgrade whose backup
cannot be taken (no gateway behind the row) answered 502 with nothing else changed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from chowder.core.settings import Settings
from tests.api.conftest import pretend_running, sql
from tests.api.test_restore_api import _backup
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence


def _patch(client: TestClient, key: str, instance_id: str, body: object) -> tuple[int, object]:
    response = client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json=body)
    return response.status_code, response.json()


def _status(settings: Settings, instance_id: str, status: str) -> None:
    sql(settings, "UPDATE instances SET status = :s WHERE id = :i", s=status, i=instance_id)


def test_an_upgrade_is_refused_for_an_unknown_release_with_other_changes_or_in_the_wrong_status(
    client: TestClient, settings: Settings
) -> None:
    key, stranger = signup(client), signup(client, "Stranger")
    instance_id = create_instance(client, key, openclaw_version="2026.9.6")["id"]
    assert _patch(client, key, instance_id, {"openclaw_version": "2099.1.1"}) == (
        400,
        {"detail": "Unknown openclaw_version '2099.1.1'. Supported: v1, 2026.9.5, 2026.9.6."},
    )
    alone = (400, {"detail": "openclaw_version must be a release, given alone: an upgrade takes no other change."})
    assert _patch(client, key, instance_id, {"openclaw_version": "2026.9.5", "name": "x"}) == alone
    assert _patch(client, key, instance_id, {"openclaw_version": None}) == alone
    assert _patch(client, key, instance_id, {"openclaw_version": 5})[0] == 422
    assert _patch(client, stranger, instance_id, {"openclaw_version": "2026.9.5"}) == (
        404,
        {"detail": "Instance not found."},
    )
    for status in ("provisioning", "stopped", "error"):
        _status(settings, instance_id, status)
        assert _patch(client, key, instance_id, {"openclaw_version": "2026.9.5"}) == (
            409,
            {"detail": f"Instance is {status}; it must be running to upgrade."},
        )
    _status(settings, instance_id, "terminated")
    assert _patch(client, key, instance_id, {"openclaw_version": "2026.9.5"}) == (
        404,
        {"detail": "Instance not found."},
    )
    assert client.get("/v1/backups", headers=auth(key)).json() == [], "no backup taken for any of them"


def test_the_release_it_runs_is_no_change_whatever_its_name(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance = create_instance(client, key)  # v1, which is 2026.9.6
    _status(settings, instance["id"], "stopped")
    for same in ("v1", "2026.9.6"):
        status, body = _patch(client, key, instance["id"], {"openclaw_version": same})
        assert (status, body["openclaw_version"], body["updated_at"]) == (200, "v1", instance["updated_at"])  # type: ignore[index]
    assert client.get("/v1/backups", headers=auth(key)).json() == []


def test_a_scoped_key_needs_configure_and_an_upgrade_whose_backup_fails_changes_nothing(
    client: TestClient, settings: Settings
) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    pretend_running(settings, instance_id)
    reader = scoped_key(client, key, [instance_id], ["read"])
    assert _patch(client, reader, instance_id, {"openclaw_version": "2026.9.5"}) == (
        403,
        {"detail": "This key lacks the 'configure' permission for this instance."},
    )
    configurer = scoped_key(client, key, [instance_id], ["configure"])
    status, body = _patch(client, configurer, instance_id, {"openclaw_version": "2026.9.5"})
    assert status == 502, body
    backups = client.get("/v1/backups", headers=auth(key)).json()
    assert [(b["trigger"], b["status"], b["error"]) for b in backups] == [("upgrade", "failed", body["detail"])]  # type: ignore[index]
    after = client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()
    assert (after["status"], after["openclaw_version"], after["error_message"]) == ("running", "v1", None)


def test_an_upgrade_onto_a_backup_needs_a_completed_backup_of_the_org_and_another_release(
    client: TestClient, settings: Settings
) -> None:
    key, stranger = signup(client), signup(client, "Stranger")
    instance_id = create_instance(client, key)["id"]
    theirs = create_instance(client, stranger)["id"]
    pretend_running(settings, instance_id)
    alone = (400, {"detail": "openclaw_version must be a release, given alone: an upgrade takes no other change."})
    assert _patch(client, key, instance_id, {"upgrade_from_backup": "b"}) == alone
    assert (
        _patch(client, key, instance_id, {"openclaw_version": "2026.9.5", "upgrade_from_backup": "b", "name": "x"})
        == alone
    )
    not_found = (404, {"detail": "Backup not found."})
    assert _patch(client, key, instance_id, {"openclaw_version": "2026.9.5", "upgrade_from_backup": "b"}) == not_found
    foreign = _backup(settings, theirs)
    assert (
        _patch(client, key, instance_id, {"openclaw_version": "2026.9.5", "upgrade_from_backup": foreign}) == not_found
    )
    creating = _backup(settings, instance_id, "creating")
    assert _patch(client, key, instance_id, {"openclaw_version": "2026.9.5", "upgrade_from_backup": creating}) == (
        409,
        {"detail": "Backup is creating; it must be completed to restore."},
    )
    own = _backup(settings, instance_id)
    assert _patch(client, key, instance_id, {"openclaw_version": "v1", "upgrade_from_backup": own}) == (
        400,
        {"detail": "The instance runs this release already: restore the backup instead."},
    )
