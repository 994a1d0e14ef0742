"""Chat through the control plane against a real gateway and the fake model upstream."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server
from tests.factories import auth, create_instance, signup
from tests.fakes.model_server import FakeModelServer

pytestmark = pytest.mark.e2e

ANTHROPIC_KEY = "sk-ant-org-real-key-123"
OPENAI_KEY = "sk-openai-org-real-key-456"


@pytest.fixture
def fake() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def chat_server(server_factory: type[Server], data_dir: Path, fake: FakeModelServer) -> Server:
    srv = server_factory(
        data_dir,
        f"sqlite:///{data_dir / 'chowder.db'}",
        CHOWDER_ANTHROPIC_BASE_URL=fake.url,
        CHOWDER_OPENAI_BASE_URL=fake.url,
        CHOWDER_GEMINI_BASE_URL=f"{fake.url}/v1",
    )
    srv.start()
    return srv


def _text(response: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in response.get("output", [])
        if item.get("type") == "message"
        for part in item.get("content", [])
    )


def _turns(text: str) -> int:
    match = re.search(r"turns=(\d+)", text)
    assert match, text
    return int(match.group(1))


def test_chat_sessions_models_streaming_and_keys(chat_server: Server, fake: FakeModelServer, data_dir: Path) -> None:
    client = chat_server.client
    key = signup(client, "Chat", model_keys={"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY})
    instance_id = create_instance(client, key)["id"]
    body = chat_server.wait_status(key, instance_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    base = f"/v1/instances/{instance_id}"

    def say(text: str, session: str | None = None, model: str = "claude-sonnet-4-20250514") -> dict[str, Any]:
        path = f"{base}/session/{session}/responses" if session else f"{base}/responses"
        response = client.post(path, headers=auth(key), json={"model": model, "input": text})
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    first = say("hello there")
    assert first["status"] == "completed" and first["model"] == "claude-sonnet-4-20250514"
    assert _turns(_text(first)) == 1 and "last=hello there" in _text(first)
    assert _turns(_text(say("second"))) == 2, "the main session remembers"
    assert _turns(_text(say("hi", session="alice"))) == 1, "a named session starts fresh"
    assert _turns(_text(say("again", session="alice"))) == 2
    assert _turns(_text(say("third"))) == 3, "main is untouched by alice"

    # Per-request model switching across providers, with the org's real key added by the control plane.
    switched = say("now openai", session="alice", model="gpt-4o")
    assert switched["model"] == "gpt-4o" and _turns(_text(switched)) == 3
    anthropic_calls = [r for r in fake.requests if r["protocol"] == "anthropic"]
    openai_calls = [r for r in fake.requests if r["protocol"] == "responses"]
    assert anthropic_calls and all(r["headers"].get("x-api-key") == ANTHROPIC_KEY for r in anthropic_calls)
    assert openai_calls and openai_calls[-1]["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"
    assert openai_calls[-1]["model"] == "gpt-4o"

    # The real keys are nowhere in the instance's files.
    for path in (data_dir / "sandboxes" / sandbox_id_for(instance_id)).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert ANTHROPIC_KEY.encode() not in content and OPENAI_KEY.encode() not in content, path

    # Streaming: the gateway's events in order, ending with [DONE].
    with client.stream(
        "POST",
        f"{base}/session/streamer/responses",
        headers=auth(key),
        json={"model": "claude-sonnet-4-20250514", "input": "stream it", "stream": True},
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        raw = "".join(stream.iter_text())
    types = [json.loads(line[6:])["type"] for line in raw.splitlines() if line.startswith("data: {")]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert raw.rstrip().endswith("data: [DONE]")
    completed = json.loads([line for line in raw.splitlines() if line.startswith("data: {")][-1][6:])
    assert completed["response"]["model"] == "claude-sonnet-4-20250514"

    # Three concurrent turns on one session are queued, and each gets its answer.
    fake.delay_s = 1.0
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda i: say(f"parallel {i}", session="queue"), range(3)))
    fake.delay_s = 0.0
    assert sorted(_turns(_text(a)) for a in answers) == [1, 2, 3]

    # Usage: every model call is metered, per session, model, instance and the API key that caused it.
    scoped = client.post(
        "/v1/keys",
        headers=auth(key),
        json={"name": "app", "instance_ids": [instance_id], "permissions": ["interact", "read"]},
    ).json()
    response = client.post(
        f"{base}/session/scoped-s/responses",
        headers=auth(scoped["raw_key"]),
        json={"model": "claude-sonnet-4-20250514", "input": "from my app"},
    )
    assert response.status_code == 200, response.text

    def upstream_totals() -> dict[str, int]:
        """What the fake upstream billed, so far: OpenClaw also makes model calls of its own in the background."""
        billed = [r["usage"] for r in fake.requests if r["usage"]]
        tokens_in = sum(u["input_tokens"] for u in billed)
        tokens_out = sum(u["output_tokens"] for u in billed)
        return {
            "requests": len(billed),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }

    deadline = time.monotonic() + 15
    while True:
        expected = upstream_totals()
        report = client.get(f"{base}/usage", headers=auth(scoped["raw_key"])).json()
        if report["total"] == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert report["total"] == expected
    scoped_calls = [r for r in fake.requests if r["usage"] and "session=agent:main:scoped-s" in json.dumps(r["body"])]
    sessions = {s["session_id"]: s for s in report["sessions"]}
    assert {"main", "alice", "streamer", "queue", "scoped-s"} <= set(sessions)
    assert {m["model"] for m in report["models"]} >= {"claude-sonnet-4-20250514", "gpt-4o"}
    org_report = client.get("/v1/organization/usage", headers=auth(key)).json()
    assert org_report["total"]["input_tokens"] >= expected["input_tokens"]
    assert [i["instance_id"] for i in org_report["instances"]] == [instance_id]
    by_key = {k["key_id"]: k for k in org_report["keys"]}
    assert by_key[scoped["id"]]["input_tokens"] == sum(r["usage"]["input_tokens"] for r in scoped_calls)
    assert by_key[scoped["id"]]["requests"] == len(scoped_calls) >= 1
    assert client.get("/v1/organization/usage", headers=auth(scoped["raw_key"])).status_code == 403
    later = client.get(f"{base}/usage", params={"since": "2999-01-01T00:00:00Z"}, headers=auth(key)).json()
    assert later["total"]["requests"] == 0

    # Bad input.
    response = client.post(
        f"{base}/session/cron:x/responses", headers=auth(key), json={"model": "gpt-4o", "input": "x"}
    )
    assert response.status_code == 400
    response = client.post(f"{base}/responses", headers=auth(key), json={"model": "gemini-2.0-flash", "input": "x"})
    assert response.status_code == 400 and "'gemini'" in response.json()["detail"]
    assert client.post(f"{base}/responses", headers=auth(key), json={"input": "x"}).status_code == 422

    # Memory survives stop/start; a stopped instance answers 409.
    assert client.post(f"{base}/stop", headers=auth(key)).status_code == 200
    response = client.post(f"{base}/responses", headers=auth(key), json={"model": "claude-x", "input": "x"})
    assert (response.status_code, response.json()) == (409, {"detail": "Instance is stopped, not running."})
    assert client.post(f"{base}/start", headers=auth(key)).status_code == 200
    assert _turns(_text(say("after restart"))) == 4
