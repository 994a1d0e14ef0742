"""The built-in dev model (`--dev-model`) at the API: no model key is needed to create an instance or send a
turn, the model gateway answers with the echo model and meters it; with the flag off nothing changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.api.internal import create_internal_app
from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from tests.api.conftest import client_for, pretend_running, sql
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.persistence

NO_KEY = "No API key is configured for model provider 'anthropic'. Set one with PATCH /v1/organization."
CLAUDE = "claude-sonnet-4-20250514"
HELLO = {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
def dev_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dev_model": True})


@pytest.fixture
def dev_client(dev_settings: Settings) -> Iterator[TestClient]:
    with client_for(dev_settings) as test_client:
        yield test_client


@pytest.fixture
def model_client(dev_client: TestClient) -> Iterator[TestClient]:
    """The sandbox-facing listener's app, sharing the API's state as it does in `chowder serve`."""
    with TestClient(create_internal_app(dev_client.app.state.chowder)) as test_client:  # type: ignore[attr-defined]
        yield test_client


def _model_credential(settings: Settings, instance_id: str) -> str:
    """The instance's own model credential, as its gateway would present it."""
    row = sql(settings, "SELECT model_token_enc FROM instances WHERE id = :i", i=instance_id)
    return SecretBox.from_settings(settings).decrypt(row[0])


def test_without_dev_model_an_org_without_model_keys_cannot_create_or_chat(
    client: TestClient, settings: Settings
) -> None:
    key = signup(client, "NoKeys", model_keys={})
    response = client.post("/v1/instances", headers=auth(key), json={"name": "agent"})
    assert (response.status_code, response.json()) == (400, {"detail": NO_KEY})

    keyed = signup(client, "Keyed")  # an anthropic key only: a turn on another provider is refused
    instance_id = create_instance(client, keyed)["id"]
    pretend_running(settings, instance_id)
    turn = client.post(
        f"/v1/instances/{instance_id}/responses", headers=auth(keyed), json={"model": "gpt-4o", "input": "hi"}
    )
    assert turn.status_code == 400 and "model provider 'openai'" in turn.json()["detail"]


def test_dev_model_needs_no_model_key_to_create_or_chat(dev_client: TestClient, dev_settings: Settings) -> None:
    key = signup(dev_client, "Dev", model_keys={})
    body = create_instance(dev_client, key)
    assert (body["status"], body["model_provider"]) == ("provisioning", "anthropic")
    pretend_running(dev_settings, body["id"])
    turn = dev_client.post(
        f"/v1/instances/{body['id']}/responses", headers=auth(key), json={"model": CLAUDE, "input": "hi"}
    )
    assert turn.status_code == 502, turn.text  # past the key check, on to the (absent) gateway


def test_dev_model_gateway_answers_every_protocol_with_the_echo_model_and_meters_it(
    dev_client: TestClient, model_client: TestClient, dev_settings: Settings
) -> None:
    key = signup(dev_client, "Dev", model_keys={})
    instance_id = create_instance(dev_client, key)["id"]
    credential = _model_credential(dev_settings, instance_id)
    anthropic = {"x-api-key": credential}
    bearer = {"authorization": f"Bearer {credential}"}
    billed: list[tuple[int, int]] = []

    message = model_client.post("/model/anthropic/v1/messages", headers=anthropic, json=HELLO)
    assert message.status_code == 200 and message.headers["content-type"].startswith("application/json")
    data = message.json()
    assert data["content"][0]["text"] == f"ECHO[{CLAUDE}] turns=1 msgs=1 last=hello there history="
    billed.append((data["usage"]["input_tokens"], data["usage"]["output_tokens"]))

    streamed = model_client.post("/model/anthropic/v1/messages", headers=anthropic, json={**HELLO, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _sse(streamed.text)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == data["content"][0]["text"]
    billed.append((events[0]["message"]["usage"]["input_tokens"], events[-2]["usage"]["output_tokens"]))

    history = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "ECHO[gpt-4o] turns=1 msgs=1 last=one history="},
        {"role": "user", "content": "two"},
    ]
    responses = {"model": "gpt-4o", "input": history, "stream": True}
    events = _sse(model_client.post("/model/openai/v1/responses", headers=bearer, json=responses).text)
    completed = events[-1]["response"]
    assert completed["output"][0]["content"][0]["text"] == "ECHO[gpt-4o] turns=2 msgs=3 last=two history=one"
    billed.append((completed["usage"]["input_tokens"], completed["usage"]["output_tokens"]))

    chat = {
        "model": "gemini-2.0-flash",
        "messages": history[:1],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = _sse(model_client.post("/model/gemini/chat/completions", headers=bearer, json=chat).text)
    assert events[-1] == "[DONE]"
    billed.append((events[-2]["usage"]["prompt_tokens"], events[-2]["usage"]["completion_tokens"]))

    usage = dev_client.get(f"/v1/instances/{instance_id}/usage", headers=auth(key)).json()
    assert usage["total"]["requests"] == 4
    assert (usage["total"]["input_tokens"], usage["total"]["output_tokens"]) == tuple(
        map(sum, zip(*billed, strict=True))
    )
    assert usage["total"]["output_tokens"] > 0
    assert {m["model"] for m in usage["models"]} == {CLAUDE, "gpt-4o", "gemini-2.0-flash"}


def test_dev_model_gateway_still_authenticates_and_refuses_what_it_cannot_answer(
    dev_client: TestClient, model_client: TestClient, dev_settings: Settings
) -> None:
    key = signup(dev_client, "Dev", model_keys={})
    instance_id = create_instance(dev_client, key)["id"]
    credential = _model_credential(dev_settings, instance_id)
    messages = "/model/anthropic/v1/messages"

    unknown = model_client.post(messages, headers={"x-api-key": "not-a-credential"}, json=HELLO)
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (401, "Invalid instance credential.")
    assert model_client.post(messages, json=HELLO).status_code == 401
    assert (
        model_client.post("/model/moon/v1/messages", headers={"x-api-key": credential}, json=HELLO).status_code == 404
    )
    garbled = model_client.post(messages, headers={"x-api-key": credential}, content=b"{not json")
    assert (garbled.status_code, garbled.json()["type"]) == (400, "error")
    models = model_client.get("/model/openai/v1/models", headers={"authorization": f"Bearer {credential}"})
    assert models.status_code == 404 and models.json()["error"]["code"] == "chowder_model_gateway"

    assert dev_client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    gone = model_client.post(messages, headers={"x-api-key": credential}, json=HELLO)
    assert gone.status_code == 401, "a deleted instance's credential no longer works"
    usage = dev_client.get("/v1/organization/usage", headers=auth(key)).json()
    assert usage["total"]["requests"] == 0, "refused calls are not metered"


def _sse(raw: str) -> list[Any]:
    """The decoded `data:` payload of every event; `[DONE]` stays a string."""
    payloads = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


def test_model_routes_are_served_only_on_the_sandbox_facing_listener(
    dev_client: TestClient, model_client: TestClient, dev_settings: Settings
) -> None:
    key = signup(dev_client, "Dev", model_keys={})
    credential = _model_credential(dev_settings, create_instance(dev_client, key)["id"])
    anthropic = {"x-api-key": credential}
    for path in ("/internal/model/anthropic/v1/messages", "/model/anthropic/v1/messages"):
        assert dev_client.post(path, headers=anthropic, json=HELLO).status_code == 404, path
    assert model_client.get("/v1/organization", headers=auth(key)).status_code == 404
    assert model_client.get("/healthz").status_code == 404
    files = model_client.post("/model/openai/v1/files", headers={"authorization": f"Bearer {credential}"}, json={})
    assert files.status_code == 404 and files.json()["error"]["code"] == "chowder_model_gateway"
    assert model_client.post("/model/anthropic/v1/messages", headers=anthropic, json=HELLO).status_code == 200
