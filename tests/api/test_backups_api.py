"""The backup routes on the real app and database (no engine): who may take, read, download and delete which
backup (another org's is 404), what a failed backup leaves (a `failed` row with its reason, no archive, the
instance's lease released), and a stopped instance's backup made by OpenClaw's own CLI in its real sandbox."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES
from chowder.sandbox.base import Resources, SandboxSpec
from chowder.sandbox.process import ProcessProvider
from tests.api.conftest import pretend_running, sql
from tests.conftest import SHARED_RUNTIME
from tests.factories import auth, create_instance, scoped_key, signup

# The repository's statements (the sweep's lease join, the due claim) run again on PostgreSQL.
pytestmark = [pytest.mark.persistence, pytest.mark.timeout(120)]


def _org_id(client: TestClient, key: str) -> str:
    org_id: str = client.get("/v1/organization", headers=auth(key)).json()["id"]
    return org_id


def completed_backup(settings: Settings, org_id: str, instance_id: str, data: bytes, age_s: int = 0) -> str:
    """A completed backup as a run leaves it: its row, and its archive in the local store."""
    backup_id = f"bkp_{hashlib.sha256(data).hexdigest()[:24]}"
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    sql(
        settings,
        "INSERT INTO backups (id, organization_id, instance_id, status, trigger, size_bytes, sha256, openclaw_version,"
        " openclaw_release, created_at, completed_at, error) VALUES (:i, :o, :n, 'completed', 'manual', :s, :h, "
        "'2026.9.6', '2026.9.6', :c, :c, NULL)",
        i=backup_id,
        o=org_id,
        n=instance_id,
        s=str(len(data)),
        h=hashlib.sha256(data).hexdigest(),
        c=created.isoformat(),
    )
    store = settings.data_dir / "backups"
    store.mkdir(mode=0o700, exist_ok=True)
    (store / f"{backup_id}.tar.gz").write_bytes(data)
    return backup_id


def test_a_provisioning_instance_is_not_backed_up(client: TestClient) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    response = client.post(f"/v1/instances/{instance_id}/backups", headers=auth(key))
    assert response.status_code == 409
    assert response.json()["detail"] == "Instance is provisioning; it must be running or stopped to be backed up."


def test_a_failed_backup_leaves_its_reason_and_nothing_else(client: TestClient, settings: Settings) -> None:
    """Running, but its sandbox does not exist: the run fails, its row says why, no archive is stored, and the
    instance's lease is free again (the engine is not kept from it)."""
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    pretend_running(settings, instance_id)
    response = client.post(f"/v1/instances/{instance_id}/backups", headers=auth(key))
    assert response.status_code == 502
    reason = response.json()["detail"]
    [failed] = client.get(f"/v1/instances/{instance_id}/backups", headers=auth(key)).json()
    assert failed["status"] == "failed" and failed["error"] == reason and failed["trigger"] == "manual"
    assert failed["size_bytes"] is None and failed["sha256"] is None and failed["completed_at"] is not None
    assert not any((settings.data_dir / "backups").glob("*")) if (settings.data_dir / "backups").exists() else True
    download = client.get(f"/v1/instances/{instance_id}/backups/{failed['id']}/download", headers=auth(key))
    assert download.status_code == 409
    assert download.json()["detail"] == "Backup is failed; only a completed backup can be downloaded."
    assert sql(settings, "SELECT lease_owner FROM instances WHERE id = :i", i=instance_id)[0] is None


def test_backups_are_listed_read_downloaded_and_deleted(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    org_id = _org_id(client, key)
    instance_id = create_instance(client, key)["id"]
    older = completed_backup(settings, org_id, instance_id, b"older archive", age_s=60)
    newer = completed_backup(settings, org_id, instance_id, b"newer archive")
    base = f"/v1/instances/{instance_id}/backups"
    listed = client.get(base, headers=auth(key)).json()
    assert [b["id"] for b in listed] == [newer, older]
    got = client.get(f"{base}/{older}", headers=auth(key)).json()
    assert got["status"] == "completed" and got["size_bytes"] == len(b"older archive")
    assert got["sha256"] == hashlib.sha256(b"older archive").hexdigest() and got["openclaw_version"] == "2026.9.6"
    download = client.get(f"{base}/{older}/download", headers=auth(key))
    assert download.status_code == 200 and download.content == b"older archive"
    assert download.headers["content-disposition"] == f'attachment; filename="{older}.tar.gz"'
    assert download.headers["content-type"] == "application/gzip"
    assert download.headers["x-backup-sha256"] == got["sha256"]
    assert client.delete(f"{base}/{older}", headers=auth(key)).status_code == 204
    assert client.get(f"{base}/{older}", headers=auth(key)).status_code == 404
    assert not (settings.data_dir / "backups" / f"{older}.tar.gz").exists()
    assert [b["id"] for b in client.get(base, headers=auth(key)).json()] == [newer]


def test_backups_outlive_their_instance(client: TestClient, settings: Settings) -> None:
    """After the DELETE the instance's routes are 404, the organization's still reach its backups."""
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    backup_id = completed_backup(settings, _org_id(client, key), instance_id, b"the agent's whole state")
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    assert client.get(f"/v1/instances/{instance_id}/backups", headers=auth(key)).status_code == 404
    listed = client.get("/v1/backups", params={"instance_id": instance_id}, headers=auth(key)).json()
    assert [b["id"] for b in listed] == [backup_id]
    assert client.get(f"/v1/backups/{backup_id}", headers=auth(key)).json()["instance_id"] == instance_id
    assert client.get(f"/v1/backups/{backup_id}/download", headers=auth(key)).content == b"the agent's whole state"
    assert client.delete(f"/v1/backups/{backup_id}", headers=auth(key)).status_code == 204
    assert client.get("/v1/backups", headers=auth(key)).json() == []


def test_a_backup_a_restore_still_needs_is_kept(client: TestClient, settings: Settings) -> None:
    """A restore not yet put in place (a crash between the swap and the launch redoes it from the archive), or an
    upgrade under way that would roll back onto it: the backup cannot be deleted until that ends."""
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    backup_id = completed_backup(settings, _org_id(client, key), instance_id, b"state to put back")
    for column in ("restore_backup_id", "upgrade_backup_id"):
        sql(settings, f"UPDATE instances SET {column} = :b WHERE id = :i", b=backup_id, i=instance_id)
        refused = client.delete(f"/v1/backups/{backup_id}", headers=auth(key))
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == (
            "Backup is in use by a restore or an upgrade under way; it can be deleted once that ends."
        )
        sql(settings, f"UPDATE instances SET {column} = NULL WHERE id = :i", i=instance_id)
    assert (settings.data_dir / "backups" / f"{backup_id}.tar.gz").exists()
    assert client.delete(f"/v1/backups/{backup_id}", headers=auth(key)).status_code == 204


def test_another_orgs_backup_is_not_found(client: TestClient, settings: Settings) -> None:
    owner = signup(client)
    instance_id = create_instance(client, owner)["id"]
    backup_id = completed_backup(settings, _org_id(client, owner), instance_id, b"private")
    other = signup(client, name="Other Corp")
    base = f"/v1/instances/{instance_id}/backups"
    for method, path in [
        ("POST", base),
        ("GET", base),
        ("GET", f"{base}/{backup_id}"),
        ("GET", f"{base}/{backup_id}/download"),
        ("DELETE", f"{base}/{backup_id}"),
        ("GET", f"/v1/backups/{backup_id}"),
        ("GET", f"/v1/backups/{backup_id}/download"),
        ("DELETE", f"/v1/backups/{backup_id}"),
    ]:
        response = client.request(method, path, headers=auth(other))
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/v1/backups", headers=auth(other)).json() == []
    assert client.get(f"/v1/backups/{backup_id}", headers=auth(owner)).status_code == 200


def test_a_backup_of_another_instance_is_not_found_under_this_one(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    sql(settings, "UPDATE organizations SET subscription_tier = 'crab' WHERE id = :o", o=_org_id(client, key))
    first, second = create_instance(client, key)["id"], create_instance(client, key)["id"]
    backup_id = completed_backup(settings, _org_id(client, key), first, b"first's")
    assert client.get(f"/v1/instances/{second}/backups/{backup_id}", headers=auth(key)).status_code == 404
    assert client.delete(f"/v1/instances/{second}/backups/{backup_id}", headers=auth(key)).status_code == 404


def test_scoped_keys_need_configure_and_the_org_routes_need_an_org_key(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    backup_id = completed_backup(settings, _org_id(client, key), instance_id, b"state")
    reader = scoped_key(client, key, [instance_id], ["read"])
    configurer = scoped_key(client, key, [instance_id], ["configure"])
    refused = client.get(f"/v1/instances/{instance_id}/backups", headers=auth(reader))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This key lacks the 'configure' permission for this instance."
    assert client.get(f"/v1/instances/{instance_id}/backups", headers=auth(configurer)).status_code == 200
    org_only = client.get(f"/v1/backups/{backup_id}", headers=auth(configurer))
    assert org_only.status_code == 403 and org_only.json()["detail"] == "This endpoint requires an organization key."


def test_a_stopped_instances_backup_is_openclaws_archive_made_in_its_sandbox(
    client: TestClient, settings: Settings
) -> None:
    """No gateway runs: OpenClaw's CLI archives the state at rest inside the sandbox; the archive is its own format
    (one root holding manifest.json and payload/), stored whole with its digest, and nothing is left in the box."""
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    sql(settings, "UPDATE instances SET status = 'stopped', desired_state = 'stopped' WHERE id = :i", i=instance_id)
    cache = RuntimeCache(SHARED_RUNTIME)
    if not cache.is_installed(RELEASES[DEFAULT_RELEASE]):
        pytest.skip("OpenClaw runtime not installed; run `chowder runtime install`")
    shared = (cache.node_dir, cache.release_dir(RELEASES[DEFAULT_RELEASE]))
    spec = SandboxSpec(sandbox_id_for(instance_id), {}, Resources(memory_mb=1024, cpus=1, pids=256), shared)
    provider = ProcessProvider(settings)
    root = Path(asyncio.run(provider.create(spec)).root)
    (root / "workspace").mkdir()
    (root / "workspace" / "notes.md").write_text("remember the lighthouse\n")
    response = client.post(f"/v1/instances/{instance_id}/backups", headers=auth(key))
    assert response.status_code == 201, response.text
    backup = response.json()
    assert backup["status"] == "completed" and backup["id"].startswith("bkp_") and backup["error"] is None
    data = client.get(f"/v1/instances/{instance_id}/backups/{backup['id']}/download", headers=auth(key)).content
    assert len(data) == backup["size_bytes"] and hashlib.sha256(data).hexdigest() == backup["sha256"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = archive.getnames()
    assert any(name.endswith("/manifest.json") for name in names)
    assert any(name.endswith("workspace/notes.md") and "/payload/" in name for name in names)
    assert not [p.name for p in root.iterdir() if p.name.startswith(".chowder-backup")]
    home = root.parent / "home"
    assert not list(home.glob("*.tar.gz"))
