"""The model gateway in front of a real (fake) provider: the org's key goes upstream on the provider's own path,
the provider's answer (errors and rate limits included) comes back as it was sent, and usage is metered off it,
prompt cache included. A stream the provider drops is billed for what it reported before the drop. Spend caps:
each call is charged to the org and the scoped key whose turn made it, and refused once a cap is reached."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chowder.api.internal import create_internal_app
from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from tests.api.conftest import client_for, sql
from tests.factories import auth, create_instance, signup
from tests.fakes.model_server import FakeModelServer

pytestmark = pytest.mark.persistence

KEYS = {"anthropic": "sk-ant-org", "openai": "sk-openai-org", "gemini": "gemini-org"}
CLAUDE = "claude-sonnet-4-20250514"
HELLO = {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}
ANTHROPIC = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


class Gateway:
    """An org holding a key for every provider, one instance of it and the sandbox-facing listener its gateway
    calls, with the instance's own credential; upstream is the fake."""

    def __init__(self, api: TestClient, models: TestClient, settings: Settings) -> None:
        self.api, self.models = api, models
        self.key = signup(api, "Upstream", model_keys=KEYS)
        self.instance_id = create_instance(api, self.key)["id"]
        row = sql(settings, "SELECT model_token_enc FROM instances WHERE id = :i", i=self.instance_id)
        self.credential = SecretBox.from_settings(settings).decrypt(row[0])

    def headers(self, provider: str) -> dict[str, str]:
        """The instance's credential as its gateway presents it to the provider's route."""
        if provider == "anthropic":
            return {"x-api-key": self.credential, **ANTHROPIC}
        return {"authorization": f"Bearer {self.credential}"}

    def call(self, provider: str, tail: str, body: dict[str, Any]) -> Any:
        return self.models.post(f"/model/{provider}/{tail}", headers=self.headers(provider), json=body)

    def usage(self) -> dict[str, int]:
        report = self.api.get(f"/v1/instances/{self.instance_id}/usage", headers=auth(self.key)).json()
        total: dict[str, int] = report["total"]
        return {name: total[name] for name in ("requests", "input_tokens", "output_tokens")}


@pytest.fixture
def gateway(settings: Settings, fake: FakeModelServer) -> Iterator[Gateway]:
    fake.requests.clear()
    upstream = {"anthropic_base_url": fake.url, "openai_base_url": fake.url, "gemini_base_url": fake.gemini_url}
    settings = settings.model_copy(update=upstream)
    with client_for(settings) as api:
        models = TestClient(create_internal_app(api.app.state.chowder))  # type: ignore[attr-defined]
        # In the API's event loop, as in `chowder serve`: the HTTP client going upstream is the API lifespan's.
        models.portal = api.portal
        yield Gateway(api, models, settings)
    fake.fail_status = fake.drop_after_events = None


def billed(fake: FakeModelServer) -> dict[str, int]:
    """What the fake upstream billed for the calls it answered."""
    usages = [r["usage"] for r in fake.requests if r["usage"]]
    return {
        "requests": len(usages),
        "input_tokens": sum(u["input_tokens"] for u in usages),
        "output_tokens": sum(u["output_tokens"] for u in usages),
    }


def test_anthropic_prompt_cache_tokens_are_billed_as_input(gateway: Gateway, fake: FakeModelServer) -> None:
    answer = gateway.call("anthropic", "v1/messages", HELLO)
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    assert usage["cache_creation_input_tokens"] > 0 and usage["cache_read_input_tokens"] > 0
    streamed = gateway.call("anthropic", "v1/messages", {**HELLO, "stream": True})
    assert streamed.status_code == 200 and "cache_read_input_tokens" in streamed.text
    [upstream] = {r["headers"]["x-api-key"] for r in fake.requests}
    assert upstream == KEYS["anthropic"], "the org's key went upstream, not the instance's credential"
    cached = usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
    expected = {"requests": 2, "input_tokens": 2 * (usage["input_tokens"] + cached), "output_tokens": 2 * 6}
    assert gateway.usage() == billed(fake) == expected


def test_openai_and_gemini_cached_tokens_are_not_counted_twice(gateway: Gateway, fake: FakeModelServer) -> None:
    """OpenAI's `cached_tokens` are part of its prompt tokens; Gemini is reached on its own OpenAI-compatible
    path with the org's Gemini key. A streamed Chat Completions call reports its usage even when the caller did
    not ask for it (OpenClaw does not, for Gemini): otherwise it would go unmetered."""
    responses = gateway.call("openai", "v1/responses", {"model": "gpt-4o", "input": "hello there"})
    assert responses.json()["usage"]["input_tokens_details"]["cached_tokens"] > 0
    chat = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hello there"}], "stream": True}
    streamed = gateway.call("gemini", "chat/completions", {**chat, "stream_options": {"include_usage": False}})
    assert streamed.status_code == 200 and '"cached_tokens"' in streamed.text
    gemini = fake.requests[-1]
    assert (gemini["provider"], gemini["path"]) == ("gemini", "/v1beta/openai/chat/completions")
    assert gemini["headers"]["authorization"] == f"Bearer {KEYS['gemini']}"
    assert gemini["body"] == {**chat, "stream_options": {"include_usage": True}}
    assert gateway.usage() == billed(fake) == {"requests": 2, "input_tokens": 2 * 2, "output_tokens": 2 * 6}


def test_a_rate_limit_comes_back_as_the_provider_sent_it_and_is_not_billed(
    gateway: Gateway, fake: FakeModelServer
) -> None:
    fake.fail_status, fake.retry_after_s = 429, 11
    for provider, tail, kind in (
        ("anthropic", "v1/messages", "rate_limit_error"),
        ("openai", "v1/responses", "requests"),
    ):
        limited = gateway.call(provider, tail, {**HELLO, "input": "x", "stream": True})
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "11")
        assert limited.json()["error"]["type"] == kind
    assert gateway.usage() == {"requests": 0, "input_tokens": 0, "output_tokens": 0}


def test_a_dropped_stream_fails_the_caller_and_bills_what_was_reported(gateway: Gateway, fake: FakeModelServer) -> None:
    """Anthropic reports the input (prompt cache included) as the stream starts and the output as it ends: cut in
    between, the call is billed its input and no output, never the whole answer."""
    fake.drop_after_events = 4  # message_start, content_block_start, ping, one delta
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):  # the caller's stream breaks too: it does not end cleanly
        with gateway.models.stream(
            "POST", "/model/anthropic/v1/messages", headers=gateway.headers("anthropic"), json={**HELLO, "stream": True}
        ) as stream:
            received.extend(stream.iter_lines())
    start = json.loads(next(line for line in received if line.startswith("data: "))[6:])["message"]["usage"]
    whole = fake.requests[-1]["usage"]
    reported = start["input_tokens"] + start["cache_creation_input_tokens"] + start["cache_read_input_tokens"]
    assert reported == whole["input_tokens"]
    assert gateway.usage() == {"requests": 1, "input_tokens": reported, "output_tokens": 0}
    assert whole["output_tokens"] > 0


def test_a_caller_that_leaves_a_stream_early_is_billed_the_whole_answer(
    gateway: Gateway, fake: FakeModelServer
) -> None:
    """Chat Completions reports usage in the last chunk only: a caller that closes the stream before it (OpenClaw
    may, at its last choice) must not leave the call unmetered, since the provider bills it whole."""
    chat = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hello there"}], "stream": True}
    fake.stream_interval_s = 0.1
    try:
        with gateway.models.stream(
            "POST", "/model/gemini/chat/completions", headers=gateway.headers("gemini"), json=chat
        ) as stream:
            next(stream.iter_lines())
        deadline = time.monotonic() + 10
        while gateway.usage() != billed(fake) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        fake.stream_interval_s = 0.0
    assert gateway.usage() == billed(fake) and billed(fake)["output_tokens"] > 0


def in_session(session_id: str) -> dict[str, Any]:
    """HELLO as OpenClaw sends it during a turn of `session_id`: its user message names the session."""
    text = f"hello there\n\nRuntime: agent=main | session=agent:main:{session_id} | channel=webchat"
    return {**HELLO, "messages": [{"role": "user", "content": text}]}


def test_the_organizations_cap_refuses_calls_as_a_failed_request_not_a_billing_error(
    gateway: Gateway, fake: FakeModelServer
) -> None:
    """The call that starts under the cap is answered in full; the next is refused before the provider, as an
    invalid request (400): OpenClaw would bench the instance's credential for minutes on a 402 or 429."""
    api, org_key = gateway.api, gateway.key
    assert api.patch("/v1/organization", headers=auth(org_key), json={"monthly_token_limit": 1}).status_code == 200
    assert gateway.call("anthropic", "v1/messages", HELLO).status_code == 200
    message = "Monthly token limit of the organization reached: Chowder refused this model call."
    refused = gateway.call("anthropic", "v1/messages", {**HELLO, "stream": True})
    assert (refused.status_code, refused.json()) == (
        400,
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
    )
    refused = gateway.call("openai", "v1/responses", {"model": "gpt-4o", "input": "hello there"})
    assert (refused.status_code, refused.json()["error"]["message"]) == (400, message)
    assert gateway.usage() == billed(fake) and billed(fake)["requests"] == 1
    org = api.get("/v1/organization", headers=auth(org_key)).json()
    assert org["monthly_tokens_used"] == billed(fake)["input_tokens"] + billed(fake)["output_tokens"]


def test_a_scoped_keys_turn_is_charged_to_the_key_and_stopped_at_its_cap(
    gateway: Gateway, fake: FakeModelServer
) -> None:
    """Calls during a scoped key's turn count against the key and the org; a call of no turn (a channel message)
    and the org key's turns against the org only."""
    api, org_key = gateway.api, gateway.key
    body = {"name": "capped", "instance_ids": [gateway.instance_id], "permissions": ["interact"]}
    key_id = api.post("/v1/keys", headers=auth(org_key), json={**body, "monthly_token_limit": 1}).json()["id"]
    org_key_id = api.get("/v1/organization/audit", headers=auth(org_key)).json()[-1]["target_id"]
    sessions = api.app.state.chowder.sessions  # type: ignore[attr-defined]

    def used() -> tuple[int, int]:
        key = api.get(f"/v1/keys/{key_id}", headers=auth(org_key)).json()["monthly_tokens_used"]
        return key, api.get("/v1/organization", headers=auth(org_key)).json()["monthly_tokens_used"]

    def tokens() -> int:
        return int(fake.requests[-1]["usage"]["input_tokens"] + fake.requests[-1]["usage"]["output_tokens"])

    with api.portal.wrap_async_context_manager(sessions.hold(gateway.instance_id, "s1", key_id)):  # type: ignore[union-attr]
        assert gateway.call("anthropic", "v1/messages", in_session("s1")).status_code == 200
        assert used() == (tokens(), tokens())
        refused = gateway.call("anthropic", "v1/messages", in_session("s1"))
        message = "Monthly token limit of this API key reached: Chowder refused this model call."
        assert (refused.status_code, refused.json()["error"]["message"]) == (400, message)
        before = used()
        assert gateway.call("anthropic", "v1/messages", in_session("other")).status_code == 200
        assert used() == (before[0], before[1] + tokens()), "a call of no turn counts against the org only"
    with api.portal.wrap_async_context_manager(sessions.hold(gateway.instance_id, "s2", org_key_id)):  # type: ignore[union-attr]
        before = used()
        assert gateway.call("anthropic", "v1/messages", in_session("s2")).status_code == 200
        assert used() == (before[0], before[1] + tokens()), "the org key's turn counts against the org only"
    assert len(fake.requests) == 3, "the refused call never reached the provider"
