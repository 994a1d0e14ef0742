"""Spend caps (extension) on the real app and database, without the engine: the monthly token limit of a scoped key
(POST and PATCH /v1/keys) and of the organization (PATCH /v1/organization), validated, org-key only, shown with this
month's use on the views and the usage report, audited; and the Responses API's 402 naming the cap reached."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain.spend import month_of
from tests.api.conftest import pretend_running, sql
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence

CLAUDE = "claude-sonnet-4-20250514"
ORG_ONLY = {"detail": "This endpoint requires an organization key."}


def new_key(client: TestClient, org_key: str, instance_ids: list[str], **fields: Any) -> dict[str, Any]:
    body = {"name": "capped", "instance_ids": instance_ids, "permissions": ["read", "interact"], **fields}
    response = client.post("/v1/keys", headers=auth(org_key), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def set_limit(client: TestClient, key: str, path: str, limit: Any) -> Any:
    return client.patch(path, headers=auth(key), json={"monthly_token_limit": limit})


def spent(settings: Settings, subject_id: str, org_id: str, tokens: int, month: str | None = None) -> None:
    """A month's total (this one's by default) of an org or key, as the model gateway's charges would leave it."""
    sql(
        settings,
        "INSERT INTO monthly_token_spend (subject_id, month, organization_id, tokens) VALUES (:s, :m, :o, :t)",
        s=subject_id,
        m=month or month_of(utcnow()),
        o=org_id,
        t=str(tokens),
    )


def test_a_keys_limit_is_set_at_create_changed_lifted_and_audited(client: TestClient) -> None:
    org_key = signup(client)
    created = new_key(client, org_key, [], monthly_token_limit=1000)
    assert (created["monthly_token_limit"], created["monthly_tokens_used"]) == (1000, 0)
    path = f"/v1/keys/{created['id']}"
    changed = set_limit(client, org_key, path, 5000)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["monthly_token_limit"], changed.json()["instances"]) == (5000, [])
    listed = client.get("/v1/keys", headers=auth(org_key)).json()
    assert [(k["id"], k["monthly_token_limit"]) for k in listed] == [(created["id"], 5000)]
    kept = client.patch(path, headers=auth(org_key), json={})
    assert (kept.status_code, kept.json()["monthly_token_limit"]) == (200, 5000)
    lifted = set_limit(client, org_key, path, None)
    assert (lifted.status_code, lifted.json()["monthly_token_limit"]) == (200, None)
    assert client.get(path, headers=auth(org_key)).json()["monthly_token_limit"] is None

    audit = client.get("/v1/organization/audit", headers=auth(org_key)).json()
    changes = [(e["target_id"], e["detail"]) for e in audit[::-1] if e["action"] == "key.monthly_token_limit"]
    assert changes == [
        (created["id"], {"previous": None, "monthly_token_limit": 1000}),
        (created["id"], {"previous": 1000, "monthly_token_limit": 5000}),
        (created["id"], {"previous": 5000, "monthly_token_limit": None}),
    ], "one entry per change, none for the call that changed nothing"
    assert sum(e["action"] == "PATCH /v1/keys/{key_id}" for e in audit) == 3


@pytest.mark.parametrize("limit", [0, -5, 1.5, "1000", True, 10**15 + 1])
def test_a_limit_that_is_not_a_whole_number_of_tokens_is_422(client: TestClient, limit: Any) -> None:
    org_key = signup(client)
    key_id = new_key(client, org_key, [])["id"]
    assert set_limit(client, org_key, f"/v1/keys/{key_id}", limit).status_code == 422
    assert set_limit(client, org_key, "/v1/organization", limit).status_code == 422
    body = {"name": "k", "instance_ids": [], "permissions": ["read"], "monthly_token_limit": limit}
    assert client.post("/v1/keys", headers=auth(org_key), json=body).status_code == 422
    assert client.get(f"/v1/keys/{key_id}", headers=auth(org_key)).json()["monthly_token_limit"] is None


def test_an_unknown_field_is_422_and_the_limit_is_org_key_only(client: TestClient) -> None:
    org_key = signup(client)
    instance_id = create_instance(client, org_key)["id"]
    key_id = new_key(client, org_key, [instance_id])["id"]
    path = f"/v1/keys/{key_id}"
    assert client.patch(path, headers=auth(org_key), json={"name": "x"}).status_code == 422
    scoped = scoped_key(client, org_key, [instance_id], ["read", "interact", "configure"])
    for target in (path, "/v1/organization"):
        response = set_limit(client, scoped, target, 10)
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "This endpoint requires an organization key."},
        )


def test_another_orgs_key_and_an_org_key_are_404(client: TestClient) -> None:
    org_key, other_org = signup(client, "Ours"), signup(client, "Theirs")
    theirs = new_key(client, other_org, [])["id"]
    response = set_limit(client, org_key, f"/v1/keys/{theirs}", 10)
    assert (response.status_code, response.json()) == (404, {"detail": "Key not found."})
    assert client.get(f"/v1/keys/{theirs}", headers=auth(other_org)).json()["monthly_token_limit"] is None
    audit = client.get("/v1/organization/audit", headers=auth(org_key)).json()
    org_key_id = audit[-1]["target_id"]  # the signup names the org key it minted
    assert set_limit(client, org_key, f"/v1/keys/{org_key_id}", 10).status_code == 404


def test_the_organizations_limit_is_set_kept_by_other_changes_lifted_and_audited(client: TestClient) -> None:
    org_key = signup(client)
    assert client.get("/v1/organization", headers=auth(org_key)).json()["monthly_token_limit"] is None
    response = set_limit(client, org_key, "/v1/organization", 250_000)
    assert response.status_code == 200, response.text
    assert (response.json()["monthly_token_limit"], response.json()["monthly_tokens_used"]) == (250_000, 0)
    renamed = client.patch("/v1/organization", headers=auth(org_key), json={"name": "Renamed"})
    assert renamed.json()["monthly_token_limit"] == 250_000
    assert set_limit(client, org_key, "/v1/organization", None).json()["monthly_token_limit"] is None
    audit = client.get("/v1/organization/audit", headers=auth(org_key)).json()
    changes = [e["detail"] for e in audit[::-1] if e["action"] == "organization.monthly_token_limit"]
    assert changes == [
        {"previous": None, "monthly_token_limit": 250_000},
        {"previous": 250_000, "monthly_token_limit": None},
    ]


def test_responses_answer_402_naming_the_cap_reached(client: TestClient, settings: Settings) -> None:
    """A running instance whose gateway nobody listens on: a turn past the caps gets 502 (it went on), one over
    a cap 402 with the cap named, whichever key; this month's use shows on the views and the usage report."""
    org_key = signup(client)
    org = client.get("/v1/organization", headers=auth(org_key)).json()
    instance_id = create_instance(client, org_key)["id"]
    pretend_running(settings, instance_id)
    capped = new_key(client, org_key, [instance_id], monthly_token_limit=1000)
    other = new_key(client, org_key, [instance_id])
    spent(settings, capped["id"], org["id"], 1000)
    spent(settings, org["id"], org["id"], 1500)

    def chat(key: str, session: str | None = None) -> Any:
        route = f"session/{session}/responses" if session else "responses"
        return client.post(
            f"/v1/instances/{instance_id}/{route}", headers=auth(key), json={"model": CLAUDE, "input": "hi"}
        )

    key_cap = {"detail": "Monthly token limit of this API key reached (1,000 tokens)."}
    for session in (None, "s1"):
        response = chat(capped["raw_key"], session)
        assert (response.status_code, response.json()) == (402, key_cap)
    assert chat(other["raw_key"]).status_code == 502
    assert chat(org_key).status_code == 502

    assert set_limit(client, org_key, "/v1/organization", 1500).json()["monthly_tokens_used"] == 1500
    org_cap = {"detail": "Monthly token limit of the organization reached (1,500 tokens)."}
    for key in (other["raw_key"], org_key):
        response = chat(key, "s2")
        assert (response.status_code, response.json()) == (402, org_cap)
    response = chat(capped["raw_key"])
    assert (response.status_code, response.json()) == (402, key_cap), "the key's cap is named first"

    shown = client.get(f"/v1/keys/{capped['id']}", headers=auth(org_key)).json()
    assert (shown["monthly_token_limit"], shown["monthly_tokens_used"]) == (1000, 1000)
    report = client.get("/v1/organization/usage", headers=auth(org_key)).json()["spend"]
    assert report == {
        "month": month_of(utcnow()),
        "organization": {"monthly_token_limit": 1500, "monthly_tokens_used": 1500},
        "keys": [{"key_id": capped["id"], "monthly_token_limit": 1000, "monthly_tokens_used": 1000}],
    }


def test_another_orgs_spend_is_neither_shown_nor_counted(client: TestClient, settings: Settings) -> None:
    ours, theirs = signup(client, "Ours"), signup(client, "Theirs")
    their_org = client.get("/v1/organization", headers=auth(theirs)).json()["id"]
    spent(settings, their_org, their_org, 99)
    set_limit(client, theirs, "/v1/organization", 10)
    new_key(client, theirs, [], monthly_token_limit=5)
    assert client.get("/v1/organization/usage", headers=auth(ours)).json()["spend"]["keys"] == []
    ours_view = client.get("/v1/organization", headers=auth(ours)).json()
    assert (ours_view["monthly_token_limit"], ours_view["monthly_tokens_used"]) == (None, 0)


def test_an_earlier_months_tokens_do_not_count(client: TestClient, settings: Settings) -> None:
    org_key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(org_key)).json()["id"]
    instance_id = create_instance(client, org_key)["id"]
    pretend_running(settings, instance_id)
    capped = new_key(client, org_key, [instance_id], monthly_token_limit=10)
    set_limit(client, org_key, "/v1/organization", 10)
    for subject in (capped["id"], org_id):
        spent(settings, subject, org_id, 500, month="2020-01")
    body = {"model": CLAUDE, "input": "hi"}
    for key in (capped["raw_key"], org_key):  # past the caps: the gateway nobody listens on
        assert client.post(f"/v1/instances/{instance_id}/responses", headers=auth(key), json=body).status_code == 502
    assert client.get(f"/v1/keys/{capped['id']}", headers=auth(org_key)).json()["monthly_tokens_used"] == 0
    assert client.get("/v1/organization", headers=auth(org_key)).json()["monthly_tokens_used"] == 0
