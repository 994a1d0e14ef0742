"""Files, channel and skill routes before anything boots: ownership, state and input checks come first."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import auth, create_instance, signup

ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/files", None),
    ("GET", "/channels", None),
    ("GET", "/channels/telegram/status", None),
    ("POST", "/channels/telegram/connect", {"config": {"token": "1:a"}}),
    ("POST", "/channels/telegram/disconnect", None),
    ("POST", "/channels/telegram/pair", {"code": "ABCD1234"}),
    ("GET", "/skills", None),
    ("GET", "/skills/weather", None),
    ("POST", "/skills/install", {"slug": "weather"}),
    ("PATCH", "/skills/weather", {"enabled": False}),
]


def test_a_provisioning_instance_answers_409_and_a_stranger_404(client: TestClient) -> None:
    owner, stranger = signup(client, "Owner"), signup(client, "Stranger")
    base = f"/v1/instances/{create_instance(client, owner)['id']}"
    for method, suffix, body in ROUTES:
        mine = client.request(method, base + suffix, headers=auth(owner), json=body)
        assert (mine.status_code, mine.json()) == (409, {"detail": "Instance is provisioning, not running."}), suffix
        theirs = client.request(method, base + suffix, headers=auth(stranger), json=body)
        assert (theirs.status_code, theirs.json()) == (404, {"detail": "Instance not found."}), suffix


def test_bodies_are_checked_before_the_instance_is_touched(client: TestClient) -> None:
    key = signup(client)
    base = f"/v1/instances/{create_instance(client, key)['id']}"
    for code in ("", "--help", "a b", "x" * 40):
        assert client.post(f"{base}/channels/telegram/pair", headers=auth(key), json={"code": code}).status_code == 422
    unknown = client.post(f"{base}/channels/icq/pair", headers=auth(key), json={"code": "ABCD1234"})
    assert unknown.status_code == 404 and "Unknown channel 'icq'" in unknown.json()["detail"]
    for slug in ("git:owner/repo", "./local", "@owner/", "a/b/c", "-x", "skills-sh:o/r/s"):
        assert client.post(f"{base}/skills/install", headers=auth(key), json={"slug": slug}).status_code == 422, slug
    for body in ({"enabled": "maybe"}, {"apikey": "x"}, {"env": {"A": 1}}):
        assert client.patch(f"{base}/skills/weather", headers=auth(key), json=body).status_code == 422, body
