"""Scoped keys over every route of the control plane, and the plan limit, against the running server."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Server
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.e2e

PERMISSIONS = ["read", "interact", "configure", "files", "channels"]
ORG_ONLY = {"detail": "This endpoint requires an organization key."}
NOT_FOUND = {"detail": "Instance not found."}


def test_permission_matrix_and_plan_limit(server: Server) -> None:
    client = server.client
    org_key = signup(client, "Matrix")
    target = create_instance(client, org_key, name="target")["id"]
    response = client.post("/v1/instances", headers=auth(org_key), json={"name": "over the limit"})
    assert (response.status_code, response.json()) == (
        402,
        {"detail": "Instance limit reached (1/1). Upgrade your subscription."},
    )
    keys = {perm: scoped_key(client, org_key, [target], [perm]) for perm in PERMISSIONS}

    instance_routes = [
        ("GET", f"/v1/instances/{target}", None, "read"),
        ("GET", f"/v1/instances/{target}/status", None, "read"),
        ("PATCH", f"/v1/instances/{target}", {"name": "renamed"}, "configure"),
    ]
    for method, path, body, needed in instance_routes:
        for perm, key in keys.items():
            response = client.request(method, path, headers=auth(key), json=body)
            if perm == needed:
                assert response.status_code == 200, (method, path, perm, response.text)
            else:
                expected = {"detail": f"This key lacks the '{needed}' permission for this instance."}
                assert (response.status_code, response.json()) == (403, expected), (method, path, perm)
        assert client.request(method, path, headers=auth(org_key), json=body).status_code == 200

    org_routes = [
        ("GET", "/v1/organization", None),
        ("PATCH", "/v1/organization", {"name": "x"}),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"name": "k", "instance_ids": [], "permissions": ["read"]}),
        ("GET", "/v1/subscription", None),
        ("GET", "/v1/instances", None),
        ("POST", "/v1/instances", {"name": "n"}),
        ("POST", f"/v1/instances/{target}/start", None),
        ("POST", f"/v1/instances/{target}/stop", None),
        ("POST", f"/v1/instances/{target}/recover", None),
        ("DELETE", f"/v1/instances/{target}", None),
    ]
    all_perms = scoped_key(client, org_key, [target], PERMISSIONS)
    for method, path, body in org_routes:
        for key in [*keys.values(), all_perms]:
            response = client.request(method, path, headers=auth(key), json=body)
            assert (response.status_code, response.json()) == (403, ORG_ONLY), (method, path)

    # A scoped key of another instance, or of another org, learns nothing about this one.
    other_org = signup(client, "Elsewhere")
    elsewhere = create_instance(client, other_org)["id"]
    stranger = scoped_key(client, other_org, [elsewhere], PERMISSIONS)
    for method, path, body, _ in instance_routes:
        response = client.request(method, path, headers=auth(stranger), json=body)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), (method, path)

    # Deleting the instance removes it from every key's grants; the keys stay valid but reach nothing.
    assert client.delete(f"/v1/instances/{target}", headers=auth(org_key)).status_code == 204
    for key in keys.values():
        response = client.get(f"/v1/instances/{target}", headers=auth(key))
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    key_list = client.get("/v1/keys", headers=auth(org_key)).json()
    detail = client.get(f"/v1/keys/{key_list[0]['id']}", headers=auth(org_key)).json()
    assert detail["instances"] == [] and detail["is_active"] is True
    assert client.delete(f"/v1/instances/{elsewhere}", headers=auth(other_org)).status_code == 204
