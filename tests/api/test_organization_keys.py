"""Organization and key routes against a real database (run on SQLite and on PostgreSQL)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from chowder.core.settings import Settings
from tests.api.conftest import client_for
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def test_signup_returns_org_and_org_key_once(client: TestClient) -> None:
    response = client.post("/v1/organization/signup", json={"name": "Acme Corp"})
    assert response.status_code == 201
    body = response.json()
    org = body["organization"]
    assert set(org) == {
        "id",
        "name",
        "model_providers",
        "subscription_tier",
        "instance_limit",
        "instance_count",
        "created_at",
        "updated_at",
        "monthly_token_limit",  # extension: spend caps
        "monthly_tokens_used",
    }
    assert uuid.UUID(org["id"]).version == 4
    assert (org["name"], org["model_providers"], org["subscription_tier"]) == ("Acme Corp", [], "shrimp")
    assert (org["instance_limit"], org["instance_count"]) == (1, 0)
    assert ISO_UTC.match(org["created_at"]) and ISO_UTC.match(org["updated_at"])
    assert re.fullmatch(r"chd_org_[0-9a-f]{64}", body["api_key"])
    again = client.get("/v1/organization", headers=auth(body["api_key"]))
    assert again.status_code == 200 and "api_key" not in again.json()


@pytest.mark.parametrize("name", ["", "x" * 129])
def test_signup_rejects_bad_names(client: TestClient, name: str) -> None:
    assert client.post("/v1/organization/signup", json={"name": name}).status_code == 422


def test_missing_and_invalid_keys_get_401_with_fixed_texts(client: TestClient) -> None:
    assert client.get("/v1/organization").json() == {"detail": "Missing API key."}
    assert client.get("/v1/organization").status_code == 401
    response = client.get("/v1/organization", headers={"Authorization": "Basic abc"})
    assert (response.status_code, response.json()) == (401, {"detail": "Missing API key."})
    response = client.get("/v1/organization", headers=auth("chd_org_" + "0" * 64))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key."})


def test_model_keys_merge_delete_and_are_never_echoed(client: TestClient, settings: Settings) -> None:
    key = signup(client, model_keys={})
    secret = "sk-ant-super-secret-value"
    response = client.patch(
        "/v1/organization",
        headers=auth(key),
        json={"name": "Renamed", "model_api_keys": {"anthropic": secret, "openai": "sk-oa"}},
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["model_providers"] == ["anthropic", "openai"]
    assert secret not in response.text
    response = client.patch("/v1/organization", headers=auth(key), json={"model_api_keys": {"openai": ""}})
    assert response.json()["model_providers"] == ["anthropic"]
    response = client.patch("/v1/organization", headers=auth(key), json={"model_api_keys": {"mistral": "x"}})
    assert response.status_code == 422
    # At rest the key is encrypted: its plaintext appears nowhere in the database.
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT ciphertext FROM model_keys")).scalars().all()
    engine.dispose()
    assert stored and all(secret not in value for value in stored)


def test_scoped_key_lifecycle(client: TestClient) -> None:
    org_key = signup(client)
    instance = create_instance(client, org_key)
    response = client.post(
        "/v1/keys",
        headers=auth(org_key),
        json={"name": "frontend-chat", "instance_ids": [instance["id"]], "permissions": ["read", "interact"]},
    )
    assert response.status_code == 201
    created = response.json()
    assert re.fullmatch(r"chd_sk_[0-9a-f]{64}", created["raw_key"])
    assert created["key_prefix"] == created["raw_key"][:12]
    assert (created["is_active"], created["expires_at"], created["last_used_at"]) == (True, None, None)

    listed = client.get("/v1/keys", headers=auth(org_key)).json()
    assert [k["id"] for k in listed] == [created["id"]]  # org keys are not listed
    assert "raw_key" not in listed[0]
    detail = client.get(f"/v1/keys/{created['id']}", headers=auth(org_key)).json()
    assert detail["instances"] == [{"instance_id": instance["id"], "permissions": ["interact", "read"]}]

    scoped = created["raw_key"]
    assert client.get(f"/v1/instances/{instance['id']}", headers=auth(scoped)).status_code == 200
    used = client.get(f"/v1/keys/{created['id']}", headers=auth(org_key)).json()
    assert used["last_used_at"] is not None

    assert client.delete(f"/v1/keys/{created['id']}", headers=auth(org_key)).status_code == 204
    response = client.get(f"/v1/instances/{instance['id']}", headers=auth(scoped))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key."})
    assert client.get("/v1/keys", headers=auth(org_key)).json()[0]["is_active"] is False


def test_key_validation(client: TestClient) -> None:
    org_key = signup(client)
    instance = create_instance(client, org_key)
    base = {"name": "k", "instance_ids": [instance["id"]], "permissions": ["read"]}
    assert client.post("/v1/keys", headers=auth(org_key), json={**base, "permissions": ["admin"]}).status_code == 422
    assert client.post("/v1/keys", headers=auth(org_key), json={**base, "permissions": []}).status_code == 422
    response = client.post("/v1/keys", headers=auth(org_key), json={**base, "instance_ids": [str(uuid.uuid4())]})
    assert response.status_code == 404
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post("/v1/keys", headers=auth(org_key), json={**base, "expires_at": past})
    assert (response.status_code, response.json()) == (400, {"detail": "expires_at must be in the future."})
    other = signup(client, "Other")
    other_instance = create_instance(client, other)
    response = client.post("/v1/keys", headers=auth(org_key), json={**base, "instance_ids": [other_instance["id"]]})
    assert response.status_code == 404


def test_expired_key_is_refused_and_shown_inactive(settings: Settings) -> None:
    # The expiry is moved behind the app's back, which a key held for a moment (CHOWDER_AUTH_CACHE_S) would not see.
    with client_for(settings.model_copy(update={"auth_cache_s": 0})) as client:
        _expired_key_is_refused_and_shown_inactive(client, settings)


def _expired_key_is_refused_and_shown_inactive(client: TestClient, settings: Settings) -> None:
    org_key = signup(client)
    instance = create_instance(client, org_key)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = client.post(
        "/v1/keys",
        headers=auth(org_key),
        json={"name": "k", "instance_ids": [instance["id"]], "permissions": ["read"], "expires_at": soon},
    ).json()
    assert client.get(f"/v1/instances/{instance['id']}", headers=auth(created["raw_key"])).status_code == 200
    engine = create_engine(settings.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET expires_at = :t WHERE id = :i"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "i": created["id"]},
        )
    engine.dispose()
    response = client.get(f"/v1/instances/{instance['id']}", headers=auth(created["raw_key"]))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key."})
    assert client.get(f"/v1/keys/{created['id']}", headers=auth(org_key)).json()["is_active"] is False


def test_keys_of_another_org_are_404(client: TestClient) -> None:
    org_a, org_b = signup(client, "A"), signup(client, "B")
    instance = create_instance(client, org_a)
    key_id = client.post(
        "/v1/keys", headers=auth(org_a), json={"name": "k", "instance_ids": [instance["id"]], "permissions": ["read"]}
    ).json()["id"]
    assert client.get(f"/v1/keys/{key_id}", headers=auth(org_b)).status_code == 404
    assert client.delete(f"/v1/keys/{key_id}", headers=auth(org_b)).status_code == 404
    assert client.get("/v1/keys", headers=auth(org_b)).json() == []


def test_scoped_keys_cannot_reach_org_endpoints(client: TestClient) -> None:
    org_key = signup(client)
    instance = create_instance(client, org_key)
    scoped = scoped_key(client, org_key, [instance["id"]], ["read", "interact", "configure", "files", "channels"])
    forbidden = {"detail": "This endpoint requires an organization key."}
    for method, path in [
        ("GET", "/v1/organization"),
        ("PATCH", "/v1/organization"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/subscription"),
        ("POST", "/v1/subscription/checkout"),
        ("POST", "/v1/subscription/portal"),
        ("GET", "/v1/instances"),
        ("POST", "/v1/instances"),
    ]:
        body = {} if method in ("PATCH", "POST") else None
        response = client.request(method, path, headers=auth(scoped), json=body)
        assert (response.status_code, response.json()) == (403, forbidden), (method, path)


def test_subscription_shape(client: TestClient) -> None:
    org_key = signup(client)
    create_instance(client, org_key)
    assert client.get("/v1/subscription", headers=auth(org_key)).json() == {
        "tier": "shrimp",
        "instance_limit": 1,
        "instance_count": 1,
        "stripe_customer_id": None,
        "stripe_subscription_id": None,
    }


def test_a_held_key_lacking_a_permission_on_a_deleted_instance_gets_404(client: TestClient) -> None:
    """The key is held by the process (CHOWDER_AUTH_CACHE_S) with the grant it had before the delete: the guard's
    403 must not tell that an instance it no longer reaches existed."""
    org_key = signup(client)
    instance = create_instance(client, org_key)["id"]
    interact_only = scoped_key(client, org_key, [instance], ["interact"])
    lacking = client.get(f"/v1/instances/{instance}", headers=auth(interact_only))
    assert lacking.status_code == 403, "held now, with its grant"
    assert client.delete(f"/v1/instances/{instance}", headers=auth(org_key)).status_code == 204
    response = client.get(f"/v1/instances/{instance}", headers=auth(interact_only))
    assert (response.status_code, response.json()) == (404, {"detail": "Instance not found."})
