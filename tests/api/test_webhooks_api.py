"""Webhook endpoints (extension) on the real app and database, without the engine: the secret shown once and
stored encrypted, org key only, another organization's endpoint 404, validation with clear details, and the
delivery log readable and paged through the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.core.settings import Settings
from chowder.core.webhooks import EVENT_TYPES
from chowder.domain.webhooks import record_event
from chowder.persistence.db import Database
from chowder.persistence.store import SqlTransactions
from tests.api.conftest import sql
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence
ENDPOINTS = "/v1/webhooks/endpoints"
ORG_KEY_ONLY = "This endpoint requires an organization key."


def _create(client: TestClient, key: str, **body: Any) -> dict[str, Any]:
    response = client.post(ENDPOINTS, json={"url": "https://hooks.example.com/chowder", **body}, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _org_id(client: TestClient, key: str) -> str:
    org_id: str = client.get("/v1/organization", headers=auth(key)).json()["id"]
    return org_id


def test_the_secret_is_shown_once_and_stored_encrypted(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    created = _create(client, key, description="billing system")
    assert created["id"].startswith("whe_") and created["secret"].startswith("whsec_")
    assert created["events"] == list(EVENT_TYPES) and created["description"] == "billing system"
    listed = client.get(ENDPOINTS, headers=auth(key))
    got = client.get(f"{ENDPOINTS}/{created['id']}", headers=auth(key))
    assert listed.status_code == got.status_code == 200
    public = {name: value for name, value in created.items() if name != "secret"}
    assert listed.json() == [public] and got.json() == public
    stored = sql(settings, "SELECT secret_enc FROM webhook_endpoints WHERE id = :i", i=created["id"])[0]
    assert created["secret"] not in stored and created["secret"][6:] not in stored


def test_events_are_chosen_by_name_and_unknown_ones_refused(client: TestClient) -> None:
    key = signup(client)
    chosen = _create(client, key, events=["backup.completed", "instance.error", "instance.error"])
    assert chosen["events"] == ["instance.error", "backup.completed"]
    refused = client.post(ENDPOINTS, json={"url": "https://a.example", "events": ["instance.boom"]}, headers=auth(key))
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("Unknown event type 'instance.boom'. Known types: instance.running,")
    empty = client.post(ENDPOINTS, json={"url": "https://a.example", "events": []}, headers=auth(key))
    assert empty.status_code == 400 and "at least one event type" in empty.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "hooks.example.com/x",
        "https://",
        "http://h:99999/",
        "javascript:alert(1)",
        "http://exa\x00mple.com/",
        "https://" + "a" * 2048 + ".example/",
    ],
)
def test_only_http_and_https_urls_are_taken(client: TestClient, url: str) -> None:
    key = signup(client)
    response = client.post(ENDPOINTS, json={"url": url}, headers=auth(key))
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "Webhook URL must be an absolute http or https URL of at most 2048 characters."},
    )


def test_org_key_only_and_another_orgs_endpoint_is_not_found(client: TestClient) -> None:
    owner, stranger = signup(client, "Owner"), signup(client, "Stranger")
    endpoint_id = _create(client, owner)["id"]
    instance_id = create_instance(client, owner)["id"]
    scoped = scoped_key(client, owner, [instance_id], ["read", "configure"])
    for method, path in [("GET", ENDPOINTS), ("POST", ENDPOINTS), ("GET", f"{ENDPOINTS}/{endpoint_id}")]:
        response = client.request(method, path, json={"url": "https://a.example"}, headers=auth(scoped))
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "This endpoint requires an organization key."},
        )
    for method, tail in [("GET", ""), ("DELETE", ""), ("GET", "/deliveries")]:
        response = client.request(method, f"{ENDPOINTS}/{endpoint_id}{tail}", headers=auth(stranger))
        assert (response.status_code, response.json()) == (404, {"detail": "Webhook endpoint not found."})
    assert client.get(ENDPOINTS, headers=auth(stranger)).json() == []
    assert client.get(f"{ENDPOINTS}/{endpoint_id}", headers=auth(owner)).status_code == 200, "still there"


def test_delete_drops_the_endpoint_and_its_deliveries(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    endpoint_id = _create(client, key)["id"]
    _record(settings, _org_id(client, key), "backup.completed")
    assert client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=auth(key)).status_code == 204
    assert client.get(f"{ENDPOINTS}/{endpoint_id}", headers=auth(key)).status_code == 404
    assert client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=auth(key)).status_code == 404
    assert sql(settings, "SELECT count(*) FROM webhook_deliveries")[0] == 0


def test_the_delivery_log_lists_each_event_to_each_subscribed_endpoint(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    every = _create(client, key)["id"]
    errors_only = _create(client, key, events=["instance.error"])["id"]
    org_id = _org_id(client, key)
    first = _record(settings, org_id, "backup.completed")
    second = _record(settings, org_id, "instance.error")

    log = client.get(f"{ENDPOINTS}/{every}/deliveries", headers=auth(key)).json()
    assert [(d["event_id"], d["event_type"]) for d in log] == [(second, "instance.error"), (first, "backup.completed")]
    assert {(d["status"], d["attempts"], d["last_status_code"], d["last_error"]) for d in log} == {
        ("pending", 0, None, None)
    }
    only = client.get(f"{ENDPOINTS}/{errors_only}/deliveries", headers=auth(key)).json()
    assert [d["event_id"] for d in only] == [second]

    page = client.get(f"{ENDPOINTS}/{every}/deliveries?limit=1", headers=auth(key))
    rest = client.get(f"{ENDPOINTS}/{every}/deliveries?cursor={page.headers['x-next-cursor']}", headers=auth(key))
    assert [d["event_id"] for d in page.json() + rest.json()] == [second, first]
    assert "x-next-cursor" not in rest.headers


def test_an_event_of_another_org_reaches_none_of_this_orgs_endpoints(client: TestClient, settings: Settings) -> None:
    mine, theirs = signup(client, "Mine"), signup(client, "Theirs")
    endpoint_id = _create(client, mine)["id"]
    _record(settings, _org_id(client, theirs), "backup.completed")
    assert client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=auth(mine)).json() == []


def _record(settings: Settings, org_id: str, event_type: str) -> str:
    """An event recorded as a feature records one, in its own transaction on the app's database."""
    db = Database(settings.resolved_database_url)
    try:
        return SqlTransactions(db).run_sync(lambda uow: record_event(uow, org_id, event_type, {"x": 1}))
    finally:
        db.dispose()
