"""Small helpers that drive the public API the way a client would, and two that make the same records on a
database directly, for tests of the use cases and stores without a server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from chowder.core.crypto import SecretBox
from chowder.core.ids import hash_key
from chowder.domain.orgs import Organizations
from chowder.domain.ports.storage import Transactions, UnitOfWork
from tests.fakes.records import new_instance


class HttpClient(Protocol):
    def post(self, url: str, **kwargs: Any) -> Any: ...
    def patch(self, url: str, **kwargs: Any) -> Any: ...


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signup(client: HttpClient, name: str = "Acme Corp", model_keys: dict[str, str] | None = None) -> str:
    """A new org's key, with model keys set (anthropic by default) so instances can be created."""
    response = client.post("/v1/organization/signup", json={"name": name})
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    keys = {"anthropic": "sk-ant-test-key"} if model_keys is None else model_keys
    if keys:
        response = client.patch("/v1/organization", json={"model_api_keys": keys}, headers=auth(key))
        assert response.status_code == 200, response.text
    return key


def new_org(tx: Transactions, name: str) -> str:
    """A new org's id, signed up through the use case on the database behind `tx` (no server needed)."""
    view, _ = asyncio.run(Organizations(tx, SecretBox("test")).signup(name))
    return view.id


def add_instance_of(uow: UnitOfWork, org_id: str, model_credential: str | None = None, **fields: Any) -> str:
    """A provisioning instance of the org, as the create use case stores one (with `fields` changed); its id."""
    if model_credential is not None:
        fields["model_token_hash"] = hash_key(model_credential)
    instance = new_instance(org_id, SecretBox("test"), sandbox_provider="process", **fields)
    uow.instances.add(instance)
    return instance.id


def create_instance(client: HttpClient, key: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/instances", json={"name": "agent", **fields}, headers=auth(key))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def scoped_key(client: HttpClient, org_key: str, instance_ids: list[str], permissions: list[str]) -> str:
    response = client.post(
        "/v1/keys",
        json={"name": "scoped", "instance_ids": instance_ids, "permissions": permissions},
        headers=auth(org_key),
    )
    assert response.status_code == 201, response.text
    raw: str = response.json()["raw_key"]
    return raw


def output_text(response: dict[str, Any]) -> str:
    """The assistant's text in a Responses API answer."""
    return "".join(
        part.get("text", "")
        for item in response.get("output", [])
        if item.get("type") == "message"
        for part in item.get("content", [])
    )


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """For effects of background work (engine, quantity sync): polls `condition` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting until {what}"
        time.sleep(0.05)
