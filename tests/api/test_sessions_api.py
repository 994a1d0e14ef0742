"""The session routes at the API, without a gateway: what they answer before the agent's store is reached (the
store itself is exercised on real gateways in tests/e2e/test_sessions.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from chowder.core.settings import MIB
from tests.factories import auth, create_instance, signup

NOT_SERVING = {"detail": "Instance is provisioning; it must be running or stopped."}


def test_sessions_need_a_running_or_stopped_instance_and_a_valid_session_id(client: TestClient) -> None:
    key = signup(client)
    base = f"/v1/instances/{create_instance(client, key)['id']}/sessions"
    for method, path in (("GET", base), ("GET", f"{base}/s1"), ("DELETE", f"{base}/s1"), ("GET", f"{base}/s1/export")):
        response = client.request(method, path, headers=auth(key))
        assert (response.status_code, response.json()) == (409, NOT_SERVING), path
    refused = client.get(f"{base}/cron:nightly", headers=auth(key))
    assert refused.status_code == 400 and refused.json()["detail"].startswith("Invalid session_id")


def test_an_import_takes_the_chat_routes_body_limit(client: TestClient) -> None:
    key = signup(client)
    path = f"/v1/instances/{create_instance(client, key)['id']}/sessions/s1/import"
    headers = {**auth(key), "Content-Type": "application/x-ndjson"}
    big = client.post(path, headers=headers, content=b"x" * (2 * MIB))  # over the 1 MiB default, under 32 MiB
    assert (big.status_code, big.json()) == (409, NOT_SERVING)
    too_big = client.post(path, headers=headers, content=b"x" * (33 * MIB))
    assert (too_big.status_code, too_big.json()) == (
        413,
        {"detail": "The request body exceeds the 32 MiB limit of this endpoint."},
    )
