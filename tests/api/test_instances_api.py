"""Instance routes without the engine: validation, shapes, the 402 rule, merge semantics, 404/409 texts."""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from chowder.core.settings import Settings
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.persistence

INSTANCE_FIELDS = {
    "id",
    "organization_id",
    "name",
    "status",
    "model_provider",
    "sandbox_provider",
    "sandbox_id",
    "gateway_url",
    "openclaw_version",
    "openclaw_config",
    "region",
    "egress",  # extension: the egress policy
    "auto_stop",  # extension: sleep when idle
    "power",  # extension: awake, frozen or asleep while running
    "backup_schedule",  # extension: scheduled backups
    "error_message",
    "created_at",
    "updated_at",
}


def _set_status(settings: Settings, instance_id: str, status: str) -> None:
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE instances SET status = :s WHERE id = :i"), {"s": status, "i": instance_id})
    engine.dispose()


def _set_tier(settings: Settings, tier: str) -> None:
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE organizations SET subscription_tier = :t"), {"t": tier})
    engine.dispose()


def test_create_answers_provisioning_at_once(client: TestClient) -> None:
    key = signup(client)
    body = create_instance(
        client, key, name="my-agent", region="eu-west", openclaw_config={"agent": {"system_prompt": "Be brief."}}
    )
    assert set(body) == INSTANCE_FIELDS
    assert uuid.UUID(body["id"]).version == 4
    assert (body["status"], body["sandbox_id"], body["gateway_url"]) == ("provisioning", None, None)
    assert (body["model_provider"], body["sandbox_provider"], body["openclaw_version"]) == (
        "anthropic",
        "process",
        "v1",
    )
    assert body["openclaw_config"] == {"agent": {"system_prompt": "Be brief."}}
    assert (body["region"], body["error_message"]) == ("eu-west", None)
    assert client.get(f"/v1/instances/{body['id']}", headers=auth(key)).json() == body


def test_create_validation(client: TestClient) -> None:
    key = signup(client)
    response = client.post("/v1/instances", headers=auth(key), json={"name": "a", "model_provider": "openai"})
    assert (response.status_code, response.json()) == (
        400,
        {"detail": ("No API key is configured for model provider 'openai'. Set one with PATCH /v1/organization.")},
    )
    response = client.post("/v1/instances", headers=auth(key), json={"name": "a", "openclaw_version": "v9"})
    assert response.status_code == 400 and "Unknown openclaw_version 'v9'" in response.json()["detail"]
    response = client.post("/v1/instances", headers=auth(key), json={"name": "a", "sandbox_provider": "moon"})
    assert response.status_code == 400 and "Unknown sandbox_provider 'moon'" in response.json()["detail"]
    assert client.post("/v1/instances", headers=auth(key), json={"name": ""}).status_code == 422
    assert client.post("/v1/instances", headers=auth(key), json={"model_provider": "x", "name": "a"}).status_code == 422
    exact = create_instance(client, key, openclaw_version="2026.9.6")
    assert exact["openclaw_version"] == "2026.9.6"
    assert client.get("/v1/instances", headers=auth(key)).json()[0]["id"] == exact["id"]


@pytest.mark.parametrize("parked", ["stopped", "error"])
def test_402_counts_every_live_instance_and_delete_frees_the_slot(
    client: TestClient, settings: Settings, parked: str
) -> None:
    key = signup(client)
    first = create_instance(client, key)
    _set_status(settings, first["id"], parked)
    response = client.post("/v1/instances", headers=auth(key), json={"name": "second"})
    assert (response.status_code, response.json()) == (
        402,
        {"detail": "Instance limit reached (1/1). Upgrade your subscription."},
    )
    assert client.delete(f"/v1/instances/{first['id']}", headers=auth(key)).status_code == 204
    assert client.get("/v1/organization", headers=auth(key)).json()["instance_count"] == 0
    create_instance(client, key, name="second")


def test_tier_limits(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    _set_tier(settings, "crab")
    for i in range(10):
        create_instance(client, key, name=f"i{i}")
    response = client.post("/v1/instances", headers=auth(key), json={"name": "eleventh"})
    assert response.json() == {"detail": "Instance limit reached (10/10). Upgrade your subscription."}
    _set_tier(settings, "whale")
    org = client.get("/v1/organization", headers=auth(key)).json()
    assert (org["instance_limit"], org["instance_count"]) == (None, 10)
    assert client.get("/v1/subscription", headers=auth(key)).json()["instance_limit"] is None
    create_instance(client, key, name="eleventh")


def test_two_creates_racing_for_the_last_slot_yield_one_201_and_one_402(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    _set_tier(settings, "crab")
    for i in range(9):
        create_instance(client, key, name=f"i{i}")
    start = threading.Barrier(2)

    def create(name: str) -> int:
        start.wait()
        return client.post("/v1/instances", headers=auth(key), json={"name": name}).status_code

    for attempt in range(3):  # three races, each starting at 9/10 again
        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(create, [f"a{attempt}", f"b{attempt}"]))
        assert statuses == [201, 402], statuses
        newest = client.get("/v1/instances", headers=auth(key)).json()[0]["id"]
        assert client.delete(f"/v1/instances/{newest}", headers=auth(key)).status_code == 204
    assert client.get("/v1/organization", headers=auth(key)).json()["instance_count"] == 9


def test_list_is_newest_first_and_hides_deleted(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    _set_tier(settings, "crab")
    ids = [create_instance(client, key, name=f"i{i}")["id"] for i in range(3)]
    assert [i["id"] for i in client.get("/v1/instances", headers=auth(key)).json()] == ids[::-1]
    client.delete(f"/v1/instances/{ids[1]}", headers=auth(key))
    assert [i["id"] for i in client.get("/v1/instances", headers=auth(key)).json()] == [ids[2], ids[0]]
    for path in ("", "/status"):
        response = client.get(f"/v1/instances/{ids[1]}{path}", headers=auth(key))
        assert (response.status_code, response.json()) == (404, {"detail": "Instance not found."})
    assert client.delete(f"/v1/instances/{ids[1]}", headers=auth(key)).status_code == 404


def test_other_orgs_instances_are_404_everywhere(client: TestClient) -> None:
    owner, stranger = signup(client, "Owner"), signup(client, "Stranger")
    instance_id = create_instance(client, owner)["id"]
    not_found = {"detail": "Instance not found."}
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/start"),
        ("POST", "/stop"),
        ("POST", "/recover"),
        ("GET", "/status"),
    ]:
        body = {"name": "x"} if method == "PATCH" else None
        response = client.request(method, f"/v1/instances/{instance_id}{suffix}", headers=auth(stranger), json=body)
        assert (response.status_code, response.json()) == (404, not_found), (method, suffix)
    assert client.get("/v1/instances", headers=auth(stranger)).json() == []


def test_patch_merges_openclaw_config(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(
        client, key, openclaw_config={"agents.defaults.timeoutSeconds": 300, "agent": {"system_prompt": "A"}}
    )["id"]
    _set_status(settings, instance_id, "stopped")  # never booted: no file yet, the overrides render at first boot
    assert client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["openclaw_config"] == {
        "agents": {"defaults": {"timeoutSeconds": 300}},
        "agent": {"system_prompt": "A"},
    }
    response = client.patch(
        f"/v1/instances/{instance_id}",
        headers=auth(key),
        json={"name": "renamed", "openclaw_config": {"agent": {"system_prompt": None}, "session.dmScope": "main"}},
    )
    assert response.status_code == 200
    assert response.json()["name"] == "renamed"
    assert response.json()["openclaw_config"] == {
        "agents": {"defaults": {"timeoutSeconds": 300}},
        "agent": {},
        "session": {"dmScope": "main"},
    }
    assert client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json={"name": ""}).status_code == 422


def test_start_and_stop_need_the_right_state(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    response = client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Instance is provisioning; it must be stopped to start."},
    )
    response = client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key))
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Instance is provisioning; it must be running to stop."},
    )
    response = client.post(f"/v1/instances/{instance_id}/recover", headers=auth(key))
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Instance is provisioning; it must be error to recover."},
    )
    _set_status(settings, instance_id, "running")
    response = client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert response.json() == {"detail": "Instance is running; it must be stopped to start."}
    status = client.get(f"/v1/instances/{instance_id}/status", headers=auth(key)).json()
    assert status == {"id": instance_id, "status": "running", "gateway_url": None}


def test_openapi_describes_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/healthz": {"get"},
        "/v1/organization/signup": {"post"},
        "/v1/organization": {"get", "patch"},
        "/v1/keys": {"get", "post"},
        "/v1/keys/{key_id}": {"get", "delete"},
        "/v1/instances": {"get", "post"},
        "/v1/instances/{instance_id}": {"get", "patch", "delete"},
        "/v1/instances/{instance_id}/start": {"post"},
        "/v1/instances/{instance_id}/stop": {"post"},
        "/v1/instances/{instance_id}/recover": {"post"},
        "/v1/instances/{instance_id}/status": {"get"},
        "/v1/subscription": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert re.match(r"^\d", client.get("/openapi.json").json()["info"]["version"])


def test_managed_openclaw_keys_cannot_be_overridden(client: TestClient) -> None:
    key = signup(client)
    response = client.post(
        "/v1/instances",
        headers=auth(key),
        json={"name": "a", "openclaw_config": {"gateway.auth.mode": "none", "session.dmScope": "main"}},
    )
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "openclaw_config cannot set gateway.auth.mode: managed by Chowder."},
    )
    instance_id = create_instance(client, key)["id"]
    response = client.patch(
        f"/v1/instances/{instance_id}",
        headers=auth(key),
        json={"openclaw_config": {"models": {"providers": {"openai": None}}}},
    )
    assert response.status_code == 400 and "models.providers.openai" in response.json()["detail"]
    assert client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["openclaw_config"] is None


def test_channel_info_needs_no_key_and_knows_every_channel(client: TestClient) -> None:
    anywhere = "/v1/instances/00000000-0000-4000-8000-000000000000/channels"
    discord = client.get(f"{anywhere}/discord")
    assert discord.status_code == 200
    assert discord.json() == {
        "channel": "discord",
        "connection_type": "token",
        "required_fields": {"token": "Your Discord bot token from the Developer Portal."},
    }
    assert set(client.get(f"{anywhere}/slack").json()["required_fields"]) == {"bot_token", "app_token"}
    assert client.get(f"{anywhere}/whatsapp").json()["connection_type"] == "interactive"
    assert client.get(f"{anywhere}/nostr").json()["required_fields"] == {}
    for channel in ("telegram", "googlechat", "signal", "matrix", "msteams", "mattermost", "line"):
        assert client.get(f"{anywhere}/{channel}").status_code == 200, channel
    assert client.get(f"{anywhere}/icq").status_code == 404
