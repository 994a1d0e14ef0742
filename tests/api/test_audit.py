"""The audit log (extension) on the real app and database, without the engine: state-changing calls by an org key
and a scoped key, with their outcomes, the lifecycle transitions the API records, the signup; filters, pages,
org-key only, and nothing of another organization."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence


def _audit(client: TestClient, key: str, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/v1/organization/audit{query}", headers=auth(key))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def test_calls_and_transitions_are_recorded_with_who_and_how_they_ended(client: TestClient) -> None:
    org_key = signup(client)
    instance_id = create_instance(client, org_key)["id"]
    editor = scoped_key(client, org_key, [instance_id], ["configure"])
    renamed = client.patch(f"/v1/instances/{instance_id}", json={"name": "renamed"}, headers=auth(editor))
    assert renamed.status_code == 200
    refused = client.post(f"/v1/instances/{instance_id}/stop", headers=auth(editor) | {"X-Request-Id": "req-42"})
    assert refused.status_code == 403 and refused.headers["x-request-id"] == "req-42"
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(org_key)).status_code == 204

    events = _audit(client, org_key)[::-1]  # oldest first
    summary = [(e["action"], e["outcome"], e["status_code"], e["actor"]["type"]) for e in events]
    assert summary == [
        ("organization.signup", "ok", 201, "anonymous"),
        ("PATCH /v1/organization", "ok", 200, "key"),
        ("instance.create", "ok", None, "key"),
        ("POST /v1/instances", "ok", 201, "key"),
        ("POST /v1/keys", "ok", 201, "key"),
        ("PATCH /v1/instances/{instance_id}", "ok", 200, "key"),
        ("POST /v1/instances/{instance_id}/stop", "refused", 403, "key"),
        ("instance.delete", "ok", None, "key"),
        ("DELETE /v1/instances/{instance_id}", "ok", 204, "key"),
    ]
    by_action = {e["action"]: e for e in events}
    patch, stop = by_action["PATCH /v1/instances/{instance_id}"], by_action["POST /v1/instances/{instance_id}/stop"]
    assert patch["actor"]["key_prefix"] == editor[:12] and patch["instance_id"] == instance_id
    assert stop["request_id"] == "req-42" and stop["actor"]["key_id"] == patch["actor"]["key_id"]
    deleted = by_action["instance.delete"]
    assert deleted["detail"] == {"from": "provisioning", "to": "terminated"}
    assert deleted["actor"]["key_prefix"] == org_key[:12]
    assert deleted["request_id"] == by_action["DELETE /v1/instances/{instance_id}"]["request_id"], "one request"


def test_filters_and_pages(client: TestClient) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    for name in ("a", "b", "c"):
        client.patch(f"/v1/instances/{instance_id}", json={"name": name}, headers=auth(key))
    patches = _audit(client, key, "?action=PATCH%20/v1/instances/%7Binstance_id%7D")
    assert len(patches) == 3 and {e["instance_id"] for e in patches} == {instance_id}
    assert len(_audit(client, key, f"?instance_id={instance_id}")) == 4
    assert _audit(client, key, "?since=2999-01-01T00:00:00Z") == []
    first = client.get("/v1/organization/audit?limit=2", headers=auth(key))
    rest = _audit(client, key, f"?cursor={first.headers['x-next-cursor']}")
    assert len(first.json()) == 2 and len(first.json()) + len(rest) == len(_audit(client, key))


def test_only_the_org_key_reads_its_own_log(client: TestClient) -> None:
    owner, stranger = signup(client, "Owner"), signup(client, "Stranger")
    instance_id = create_instance(client, owner)["id"]
    reader = scoped_key(client, owner, [instance_id], ["read"])
    forbidden = client.get("/v1/organization/audit", headers=auth(reader))
    assert (forbidden.status_code, forbidden.json()) == (403, {"detail": "This endpoint requires an organization key."})
    assert instance_id not in str(_audit(client, stranger))
    assert client.get("/v1/organization/audit").status_code == 401
