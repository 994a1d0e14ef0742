"""Idempotency-Key (extension) on the real app and database: a retried create makes one instance and gets the
first answer back, also when the retries race; another request under a used key is a 422; keys are the caller's
own; answers that say nothing about the work (401) are not kept; a key left by a request whose process died is
free again once its lease runs out."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Send

from chowder.api.app import create_app
from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain.idempotency import LEASE, RETENTION
from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from tests.api.conftest import sql
from tests.factories import auth, signup

pytestmark = pytest.mark.persistence

CREATE = {"name": "retried"}


def _create(client: TestClient, key: str, idempotency_key: str, body: dict[str, Any] = CREATE) -> httpx.Response:
    return client.post("/v1/instances", json=body, headers=auth(key) | {"Idempotency-Key": idempotency_key})


def _instances(client: TestClient, key: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/v1/instances", headers=auth(key)).json()
    return listed


def test_a_retried_create_makes_one_instance_and_replays_the_first_answer(client: TestClient) -> None:
    key = signup(client)
    first = _create(client, key, "create-1")
    again = _create(client, key, "create-1")
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.content == first.content, "the first answer, byte for byte"
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert [i["id"] for i in _instances(client, key)] == [first.json()["id"]]


def test_racing_retries_make_one_instance(client: TestClient) -> None:
    key = signup(client)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _create(client, key, "race"), range(8)))
    done = [answer for answer in answers if answer.status_code != 409]
    assert {answer.status_code for answer in answers} <= {201, 409}, [a.text for a in answers]
    assert done and all(answer.content == done[0].content for answer in done)
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json() == {
                "detail": "A request with this Idempotency-Key is still in progress; retry once it has finished."
            }
    assert len(_instances(client, key)) == 1
    assert _create(client, key, "race").content == done[0].content, "a retry after the race gets the answer"


def test_a_different_request_under_a_used_key_is_a_422_and_does_nothing(client: TestClient) -> None:
    key = signup(client)
    assert _create(client, key, "k").status_code == 201
    other = _create(client, key, "k", {"name": "another"})
    assert other.status_code == 422
    assert other.json() == {
        "detail": "This Idempotency-Key was used with a different request; use a new key for a new request."
    }
    assert len(_instances(client, key)) == 1


def test_keys_are_the_callers_own(client: TestClient) -> None:
    first, second = signup(client, "First"), signup(client, "Second")
    mine, theirs = _create(client, first, "shared"), _create(client, second, "shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"] and "idempotent-replayed" not in theirs.headers


def test_a_retried_signup_makes_one_organization(client: TestClient, settings: Settings) -> None:
    headers = {"Idempotency-Key": "signup-1"}
    first = client.post("/v1/organization/signup", json={"name": "Once"}, headers=headers)
    again = client.post("/v1/organization/signup", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert sql(settings, "SELECT count(*) FROM organizations WHERE name = 'Once'")[0] == 1


def test_an_unauthenticated_answer_is_not_kept(client: TestClient) -> None:
    refused = _create(client, "sk-not-a-key", "k")
    assert refused.status_code == 401
    assert _create(client, "sk-not-a-key", "k").headers.get("idempotent-replayed") is None


def test_a_malformed_key_is_a_400(client: TestClient) -> None:
    key = signup(client)
    bad = _create(client, key, "x" * 256)
    assert bad.status_code == 400
    assert bad.json() == {"detail": "Idempotency-Key must be 1 to 255 visible ASCII characters."}
    assert _instances(client, key) == []


def test_a_key_is_free_again_once_its_lease_runs_out_or_it_expires(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    now = utcnow()

    def claim(at: Any, fingerprint: str = "f1") -> Any:
        return tx.run_sync(lambda uow: uow.idempotency.claim("key:c", "k", fingerprint, at + LEASE, at - RETENTION, at))

    assert claim(now) is None, "new: the caller's to run"
    held = claim(now)
    assert held is not None and held.answer is None, "in flight"
    assert claim(now + LEASE + timedelta(seconds=1), "f2").fingerprint == "f1", "another request never takes over"
    assert claim(now + LEASE + timedelta(seconds=1)) is None, "the same request takes over an abandoned lease"
    assert claim(now + RETENTION + LEASE * 3, "f2") is None, "expired: the key is new again"
    db.engine.dispose()


def test_a_key_sent_again_the_moment_the_first_answer_is_whole_is_replayed(settings: Settings) -> None:
    """The client holds the whole answer only once it is stored: resending then is a replay, not a 409."""
    app = create_app(settings, run_engine=False, serve_sandboxes=False)
    signup_request = json.dumps({"name": "Once"}).encode()

    async def post(send: Send) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/organization/signup",
            "raw_path": b"/v1/organization/signup",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"idempotency-key", b"at-once")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": signup_request, "more_body": False}
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        await app(scope, receive, send)

    statuses: list[tuple[int, bool]] = []

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            again: dict[str, Any] = {}

            async def resend_at_the_last_byte(message: Message) -> None:
                if message["type"] == "http.response.start":
                    again["status"] = message["status"]
                    again["replayed"] = (b"idempotent-replayed", b"true") in message["headers"]
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    statuses.append((again["status"], again["replayed"]))

            async def first_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    statuses.append((message["status"], False))
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await post(resend_at_the_last_byte)

            await post(first_send)

    asyncio.run(scenario())
    assert statuses == [(201, False), (201, True)]
