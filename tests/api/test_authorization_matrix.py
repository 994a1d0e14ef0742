"""The authorization matrix, generated from the permission table below (the API's section 0 inventory, its
section 7 answers, and our extensions): every route × every kind of caller gets the specified status and detail,
and never a 5xx (but the documented 503 of billing on a server without Stripe). The table must name every route
of the OpenAPI document, so a new route cannot escape the matrix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain.models import Permission
from tests.api.conftest import sql
from tests.api.test_backups_api import completed_backup
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence

PUBLIC, ORG = "public", "org"
TABLE: list[tuple[str, str, str]] = [
    ("GET", "/healthz", PUBLIC),
    ("POST", "/v1/organization/signup", PUBLIC),
    ("POST", "/v1/webhooks/stripe", PUBLIC),
    ("GET", "/v1/instances/{instance_id}/channels/{channel}", PUBLIC),
    ("GET", "/v1/organization", ORG),
    ("PATCH", "/v1/organization", ORG),
    ("GET", "/v1/organization/usage", ORG),
    ("GET", "/v1/organization/audit", ORG),
    ("GET", "/v1/subscription", ORG),
    ("POST", "/v1/subscription/checkout", ORG),
    ("POST", "/v1/subscription/portal", ORG),
    ("POST", "/v1/keys", ORG),
    ("GET", "/v1/keys", ORG),
    ("GET", "/v1/keys/{key_id}", ORG),
    ("PATCH", "/v1/keys/{key_id}", ORG),
    ("DELETE", "/v1/keys/{key_id}", ORG),
    ("POST", "/v1/webhooks/endpoints", ORG),
    ("GET", "/v1/webhooks/endpoints", ORG),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}", ORG),
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}", ORG),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/deliveries", ORG),
    ("POST", "/v1/instances", ORG),
    ("GET", "/v1/instances", ORG),
    ("POST", "/v1/instances/{instance_id}/start", ORG),
    ("POST", "/v1/instances/{instance_id}/stop", ORG),
    ("POST", "/v1/instances/{instance_id}/recover", ORG),
    ("POST", "/v1/instances/{instance_id}/restore", ORG),
    ("DELETE", "/v1/instances/{instance_id}", ORG),
    ("GET", "/v1/instances/{instance_id}", Permission.READ),
    ("GET", "/v1/instances/{instance_id}/status", Permission.READ),
    ("GET", "/v1/instances/{instance_id}/usage", Permission.READ),
    ("PATCH", "/v1/instances/{instance_id}", Permission.CONFIGURE),
    ("POST", "/v1/instances/{instance_id}/responses", Permission.INTERACT),
    ("POST", "/v1/instances/{instance_id}/session/{session_id}/responses", Permission.INTERACT),
    ("GET", "/v1/instances/{instance_id}/sessions", Permission.INTERACT),
    ("GET", "/v1/instances/{instance_id}/sessions/{session_id}", Permission.INTERACT),
    ("DELETE", "/v1/instances/{instance_id}/sessions/{session_id}", Permission.INTERACT),
    ("GET", "/v1/instances/{instance_id}/sessions/{session_id}/export", Permission.INTERACT),
    ("POST", "/v1/instances/{instance_id}/sessions/{session_id}/import", Permission.INTERACT),
    ("GET", "/v1/instances/{instance_id}/files", Permission.FILES),
    ("DELETE", "/v1/instances/{instance_id}/files", Permission.FILES),
    ("GET", "/v1/instances/{instance_id}/files/content", Permission.FILES),
    ("PUT", "/v1/instances/{instance_id}/files/content", Permission.FILES),
    ("POST", "/v1/instances/{instance_id}/files/upload", Permission.FILES),
    ("GET", "/v1/instances/{instance_id}/files/download", Permission.FILES),
    ("POST", "/v1/instances/{instance_id}/files/move", Permission.FILES),
    ("POST", "/v1/instances/{instance_id}/files/mkdir", Permission.FILES),
    ("GET", "/v1/instances/{instance_id}/channels", Permission.CHANNELS),
    ("GET", "/v1/instances/{instance_id}/channels/{channel}/status", Permission.CHANNELS),
    ("POST", "/v1/instances/{instance_id}/channels/{channel}/connect", Permission.CHANNELS),
    ("POST", "/v1/instances/{instance_id}/channels/{channel}/disconnect", Permission.CHANNELS),
    ("POST", "/v1/instances/{instance_id}/channels/{channel}/pair", Permission.CHANNELS),
    ("GET", "/v1/instances/{instance_id}/skills", Permission.CONFIGURE),
    ("GET", "/v1/instances/{instance_id}/skills/{skill_name}", Permission.CONFIGURE),
    ("POST", "/v1/instances/{instance_id}/skills/install", Permission.CONFIGURE),
    ("PATCH", "/v1/instances/{instance_id}/skills/{skill_name}", Permission.CONFIGURE),
    ("POST", "/v1/instances/{instance_id}/backups", Permission.CONFIGURE),
    ("GET", "/v1/instances/{instance_id}/backups", Permission.CONFIGURE),
    ("GET", "/v1/instances/{instance_id}/backups/{backup_id}", Permission.CONFIGURE),
    ("GET", "/v1/instances/{instance_id}/backups/{backup_id}/download", Permission.CONFIGURE),
    ("DELETE", "/v1/instances/{instance_id}/backups/{backup_id}", ORG),
    ("GET", "/v1/backups", ORG),
    ("GET", "/v1/backups/{backup_id}", ORG),
    ("GET", "/v1/backups/{backup_id}/download", ORG),
    ("DELETE", "/v1/backups/{backup_id}", ORG),
]
BILLING_OFF = {"detail": "Billing is not configured on this server."}
BILLING = {"/v1/subscription/checkout", "/v1/subscription/portal", "/v1/webhooks/stripe"}
MISSING = (401, {"detail": "Missing API key."})
INVALID = (401, {"detail": "Invalid API key."})
ORG_ONLY = (403, {"detail": "This endpoint requires an organization key."})
NO_INSTANCE = (404, {"detail": "Instance not found."})


def test_the_table_names_every_route(client: TestClient) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    assert documented == {(method, path) for method, path, _ in TABLE}


class Callers:
    """Every kind of caller, on an org whose instance `target` is provisioning (nothing runs: no engine)."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.org = signup(client, "Owner")
        self.target = create_instance(client, self.org, name="target")["id"]
        sql(settings, "UPDATE organizations SET subscription_tier = 'whale' WHERE name = 'Owner'")
        other_instance = create_instance(client, self.org, name="other")["id"]
        every = [permission.value for permission in Permission]
        self.scoped = scoped_key(client, self.org, [self.target], every)
        self.elsewhere = scoped_key(client, self.org, [other_instance], every)
        self.lacking = {
            permission: scoped_key(client, self.org, [self.target], [p for p in every if p != permission])
            for permission in every
        }
        revoked = scoped_key(client, self.org, [self.target], every)
        key_id = client.get("/v1/keys", headers=auth(self.org)).json()[0]["id"]
        assert client.delete(f"/v1/keys/{key_id}", headers=auth(self.org)).status_code == 204
        self.revoked = revoked
        self.expired = scoped_key(client, self.org, [self.target], every)
        past = (utcnow() - timedelta(minutes=1)).isoformat()
        sql(settings, "UPDATE api_keys SET expires_at = :t WHERE key_prefix = :p", t=past, p=self.expired[:12])
        self.key_id = client.get("/v1/keys", headers=auth(self.org)).json()[-1]["id"]
        self.stranger = signup(client, "Stranger")
        hook = client.post("/v1/webhooks/endpoints", json={"url": "https://hooks.example.com/"}, headers=auth(self.org))
        self.endpoint_id = hook.json()["id"]
        org_id = client.get("/v1/organization", headers=auth(self.org)).json()["id"]
        self.backup_id = completed_backup(settings, org_id, self.target, b"the target's state")

    def path(self, template: str) -> str:
        return template.format(
            instance_id=self.target,
            key_id=self.key_id,
            session_id="s1",
            channel="telegram",
            skill_name="weather",
            endpoint_id=self.endpoint_id,
            backup_id=self.backup_id,
        )


def _call(client: TestClient, method: str, path: str, key: str | None) -> tuple[int, Any]:
    headers = auth(key) if key is not None else {}
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    response = client.request(method, path, headers=headers, json=body)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _never_5xx(status: int, body: Any, route: tuple[str, str]) -> None:
    if status == 503 and body == BILLING_OFF and route[1] in BILLING:
        return
    assert status < 500, (route, status, body)


@pytest.mark.parametrize(("method", "template", "who"), TABLE, ids=[f"{m} {p}" for m, p, _ in TABLE])
def test_every_caller_gets_its_answer(
    client: TestClient, settings: Settings, method: str, template: str, who: str
) -> None:
    callers = Callers(client, settings)
    path, route = callers.path(template), (method, template)
    deleting = method == "DELETE" and who == ORG  # the org key's call goes last: it removes what the others name
    answers = {
        "none": _call(client, method, path, None),
        "bad": _call(client, method, path, "chd_sk_" + "0" * 64),
        "revoked": _call(client, method, path, callers.revoked),
        "expired": _call(client, method, path, callers.expired),
        "stranger": _call(client, method, path, callers.stranger),
        "elsewhere": _call(client, method, path, callers.elsewhere),
        "scoped": _call(client, method, path, callers.scoped),
        **{f"lacking {p}": _call(client, method, path, key) for p, key in callers.lacking.items()},
    }
    answers["org"] = _call(client, method, path, callers.org)
    for caller, (status, body) in answers.items():
        _never_5xx(status, body, route)
        if who == PUBLIC:
            continue
        if caller == "none":
            assert (status, body) == MISSING, (route, caller)
        elif caller in {"bad", "revoked", "expired"}:
            assert (status, body) == INVALID, (route, caller)
        elif caller == "org" or (caller == "stranger" and "{instance_id}" not in template):
            assert status not in {401, 403} and (status, body) != NO_INSTANCE, (route, caller, body)
        elif caller == "stranger":  # or the owner's own 422: a body the route refuses says nothing of the instance
            assert (status, body) == NO_INSTANCE or (status == 422 and answers["org"] == (status, body)), route
        elif who == ORG:
            assert (status, body) == ORG_ONLY, (route, caller)
        elif caller == "elsewhere":
            assert (status, body) == NO_INSTANCE, (route, caller)
        elif caller == f"lacking {who}":
            assert (status, body) == (403, {"detail": f"This key lacks the '{who}' permission for this instance."})
        else:
            assert status not in {401, 403, 404}, (route, caller, status, body)
    assert not deleting or answers["org"][0] == 204
