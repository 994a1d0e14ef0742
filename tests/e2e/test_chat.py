"""Chat through the control plane: one real gateway (shared by this module's tests, which use their own
sessions) behind the control plane, and the fake model upstream speaking the three provider protocols."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.compliance import COMPLIANCE_TESTS, FUNCTION_CALL_EVENTS, RED_HEART_PNG, WEATHER_TOOL, ComplianceTest
from tests.e2e.harness import PROVIDERS, RunningInstance, Server, provider_env, running_instance
from tests.factories import auth, output_text, signup, wait_until
from tests.fakes.model_server import FakeModelServer
from tests.open_responses import response_problems, stream_problems

pytestmark = pytest.mark.e2e

ANTHROPIC_KEY = "sk-ant-org-real-key-123"
OPENAI_KEY = "sk-openai-org-real-key-456"
GEMINI_KEY = "gemini-org-real-key-789"
CLAUDE = "claude-sonnet-4-20250514"
GEMINI = "gemini-2.0-flash"
# A model of OpenClaw's shipped catalog, declared as taking images.
VISION_MODEL = "claude-haiku-4-5"
SAN_FRANCISCO = {"location": "San Francisco, CA"}


@dataclass
class ChatEnv:
    env: RunningInstance
    fake: FakeModelServer

    @property
    def server(self) -> Server:
        return self.env.server

    @property
    def key(self) -> str:
        return self.env.key

    @property
    def instance_id(self) -> str:
        return self.env.instance_id

    @property
    def data_dir(self) -> Path:
        return self.env.data_dir

    @property
    def base(self) -> str:
        return self.env.base

    def path(self, session: str | None) -> str:
        return f"{self.base}/session/{session}/responses" if session else f"{self.base}/responses"

    def say(self, text: str, session: str | None = None, model: str = CLAUDE, **extra: Any) -> dict[str, Any]:
        response = self.server.client.post(
            self.path(session), headers=auth(self.key), json={"model": model, "input": text, **extra}
        )
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        assert response_problems(payload) == [], payload
        return payload

    def stream(self, body: dict[str, Any], session: str | None = None) -> list[dict[str, Any]]:
        """The events of a streamed turn, checked complete and numbered, ending with `[DONE]`."""
        with self.server.client.stream("POST", self.path(session), headers=auth(self.key), json=body) as stream:
            assert stream.status_code == 200, stream.read()
            raw = "".join(stream.iter_text())
        assert raw.rstrip().endswith("data: [DONE]")
        events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
        assert stream_problems(events) == [], events
        return events

    def sdk(self, session: str | None = None) -> openai.OpenAI:
        base = f"{self.server.url}{self.base}" + (f"/session/{session}" if session else "")
        return openai.OpenAI(base_url=base, api_key=self.key, max_retries=0)

    def model_calls_with(self, text: str, model: str = CLAUDE) -> list[dict[str, Any]]:
        """The upstream calls of `model` whose request carries `text` (OpenClaw also calls models on its own)."""
        return [r for r in self.fake.requests if r["model"] == model and text in json.dumps(r["body"])]


@pytest.fixture(scope="module", params=PROVIDERS)
def chat(request: pytest.FixtureRequest) -> Iterator[ChatEnv]:
    with (
        FakeModelServer() as fake,
        running_instance(
            "Chat",
            model_keys={"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY, "gemini": GEMINI_KEY},
            CHOWDER_ANTHROPIC_BASE_URL=fake.url,
            CHOWDER_OPENAI_BASE_URL=fake.url,
            CHOWDER_GEMINI_BASE_URL=fake.gemini_url,
            **provider_env(request),
        ) as env,
    ):
        fake.tool_calls = {WEATHER_TOOL["name"]: SAN_FRANCISCO}
        yield ChatEnv(env, fake)


def turns(response: dict[str, Any]) -> int:
    match = re.search(r"turns=(\d+)", output_text(response))
    assert match, response
    return int(match.group(1))


def test_memory_within_a_session_and_isolation_between_sessions(chat: ChatEnv) -> None:
    first = chat.say("hello there")
    assert first["status"] == "completed" and first["model"] == CLAUDE
    assert turns(first) == 1 and "last=hello there" in output_text(first)
    assert turns(chat.say("second")) == 2, "the main session remembers"
    assert turns(chat.say("hi", session="alice")) == 1, "a named session starts fresh"
    assert turns(chat.say("again", session="alice")) == 2
    assert turns(chat.say("third")) == 3, "main is untouched by alice"


def test_the_warm_up_turn_of_every_boot_reaches_no_provider_and_no_bill(chat: ChatEnv) -> None:
    """Each boot ran a turn on the instance's warm-up session before reporting running (`warm_up_session`)."""
    assert "warm-up turn failed" not in chat.server.log_text()
    assert not [r for r in chat.fake.requests if "chowder-warm-up-" in json.dumps(r)], "a warm-up call left us"
    usage = chat.server.client.get(f"{chat.base}/usage", headers=auth(chat.key)).json()
    assert all(not str(s.get("session_id")).startswith("chowder-warm-up-") for s in usage.get("sessions", [])), usage


@pytest.mark.parametrize("session", [None, "compliance"], ids=["main", "named"])
@pytest.mark.parametrize("case", COMPLIANCE_TESTS, ids=[case.id for case in COMPLIANCE_TESTS])
def test_the_open_responses_compliance_suite_passes(chat: ChatEnv, case: ComplianceTest, session: str | None) -> None:
    """Each request of the suite, as it sends it, validated as it validates (plus the openai SDK's models)."""
    if case.stream:
        events = chat.stream(case.body(CLAUDE), session)
        answer = events[-1]["response"]
        kinds = [event["type"] for event in events]
        if case.output_type == "function_call":
            calls = [i for i, e in enumerate(events) if e.get("item", {}).get("type") == "function_call"]
            first = calls[0]
            assert tuple(kinds[first : first + 4]) == FUNCTION_CALL_EVENTS, kinds
            assert json.loads(events[first + 2]["arguments"]) == SAN_FRANCISCO
    else:
        response = chat.server.client.post(chat.path(session), headers=auth(chat.key), json=case.body(CLAUDE))
        assert response.status_code == 200, response.text
        answer = response.json()
    assert response_problems(answer) == [], answer
    assert answer["status"] == "completed" and answer["model"] == CLAUDE
    assert case.output_type in [item["type"] for item in answer["output"]], answer["output"]


def test_model_switching_across_providers_with_the_orgs_keys_added_upstream(chat: ChatEnv) -> None:
    assert turns(chat.say("one", session="switch")) == 1
    switched = chat.say("now openai", session="switch", model="gpt-4o")
    assert switched["model"] == "gpt-4o" and turns(switched) == 2
    anthropic_calls = [r for r in chat.fake.requests if r["protocol"] == "anthropic"]
    openai_calls = [r for r in chat.fake.requests if r["protocol"] == "responses"]
    assert anthropic_calls and all(r["headers"].get("x-api-key") == ANTHROPIC_KEY for r in anthropic_calls)
    assert openai_calls and openai_calls[-1]["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"
    assert openai_calls[-1]["model"] == "gpt-4o"
    # Rotating the org's key applies to the very next model call, with no gateway restart.
    rotated = "sk-ant-rotated-key-789"
    client = chat.server.client
    rotate = client.patch("/v1/organization", headers=auth(chat.key), json={"model_api_keys": {"anthropic": rotated}})
    assert rotate.status_code == 200
    try:
        chat.say("after rotation", session="switch")
        calls = [r for r in chat.fake.requests if "after rotation" in json.dumps(r["body"])]
        assert calls and all(r["headers"].get("x-api-key") == rotated for r in calls)
    finally:
        client.patch("/v1/organization", headers=auth(chat.key), json={"model_api_keys": {"anthropic": ANTHROPIC_KEY}})
    # The real keys are nowhere in the instance's files (openclaw.json included).
    for path in chat.env.box.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not [k for k in (ANTHROPIC_KEY, OPENAI_KEY, GEMINI_KEY, rotated) if k.encode() in content], path


def test_a_gemini_model_answers_through_googles_openai_compatible_endpoint(chat: ChatEnv) -> None:
    """OpenClaw calls Gemini with Chat Completions; the control plane sends them on to Google's OpenAI-compatible
    base URL with the org's Gemini key and meters the answers to the gemini provider."""
    answer = chat.say("hello gemini", session="gemini", model=GEMINI)
    assert answer["model"] == GEMINI and turns(answer) == 1 and "last=hello gemini" in output_text(answer)
    calls = chat.model_calls_with("hello gemini", GEMINI)
    assert calls and {(c["provider"], c["path"], c["headers"].get("authorization")) for c in calls} == {
        ("gemini", "/v1beta/openai/chat/completions", f"Bearer {GEMINI_KEY}")
    }

    def metered() -> list[tuple[str, int, int, int]]:
        """The usage recorded for Gemini's models, by provider."""
        with sqlite3.connect(chat.data_dir / "chowder.db") as db:
            query = "SELECT provider, COUNT(*), SUM(input_tokens), SUM(output_tokens) FROM usage_events"
            return db.execute(f"{query} WHERE model LIKE 'gemini%' GROUP BY provider").fetchall()

    def billed() -> list[tuple[str, int, int, int]]:
        usages = [r["usage"] for r in chat.fake.requests if r["provider"] == "gemini" and r["usage"]]
        tokens_in, tokens_out = sum(u["input_tokens"] for u in usages), sum(u["output_tokens"] for u in usages)
        return [("gemini", len(usages), tokens_in, tokens_out)]

    with contextlib.suppress(AssertionError):  # recorded once each answer has gone out: compared below, with a diff
        wait_until(lambda: metered() == billed(), "the Gemini calls' usage is recorded", timeout_s=15)
    assert metered() == billed() and billed()[0][3] > 0


def test_streaming_passes_the_gateways_events_in_order(chat: ChatEnv) -> None:
    client = chat.server.client
    started = time.monotonic()
    with client.stream(
        "POST",
        f"{chat.base}/session/streamer/responses",
        headers=auth(chat.key),
        json={"model": CLAUDE, "input": "stream it", "stream": True},
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        raw = "".join(stream.iter_text())
    assert time.monotonic() - started < 60
    data = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    types = [event["type"] for event in data]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.index("response.output_text.delta") < types.index("response.output_text.done")
    assert raw.rstrip().endswith("data: [DONE]")
    assert data[-1]["response"]["model"] == CLAUDE
    assert "turns=1" in "".join(e.get("delta", "") for e in data if e["type"] == "response.output_text.delta")
    assert stream_problems(data) == [], data
    assert data[-1]["response"]["completed_at"] >= data[0]["response"]["created_at"]


def test_an_answer_reports_the_parameters_it_ran_with(chat: ChatEnv) -> None:
    asked = {"instructions": "Answer briefly.", "temperature": 0.5, "max_output_tokens": 300, "metadata": {"k": "v"}}
    answer = chat.say("with parameters", session="parameters", **asked)
    assert {name: answer[name] for name in asked} == asked
    assert (answer["tools"], answer["tool_choice"], answer["previous_response_id"]) == ([], "auto", None)
    assert answer["completed_at"] >= answer["created_at"]
    # The tokens reported are those the upstream billed for the turn's own model calls (the agent's: they offer
    # its tools; OpenClaw's background recaps are metered to the instance, not reported in the answer).
    billed = [r["usage"] for r in chat.model_calls_with("with parameters") if r["body"].get("tools")]
    assert billed and answer["usage"]["input_tokens"] == sum(u["input_tokens"] for u in billed)
    assert answer["usage"]["output_tokens"] == sum(u["output_tokens"] for u in billed) > 0


def test_concurrent_turns_on_one_session_are_queued_and_all_answered(chat: ChatEnv) -> None:
    chat.fake.delay_s = 1.0
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda i: chat.say(f"parallel {i}", session="queue"), range(3)))
    finally:
        chat.fake.delay_s = 0.0
    assert sorted(turns(a) for a in answers) == [1, 2, 3]


def test_a_client_that_disconnects_frees_the_session(chat: ChatEnv) -> None:
    chat.fake.stream_interval_s = 0.5
    try:
        with chat.server.client.stream(
            "POST",
            f"{chat.base}/session/leaver/responses",
            headers=auth(chat.key),
            json={"model": CLAUDE, "input": "long answer", "stream": True},
        ) as stream:
            next(stream.iter_lines())
    finally:
        chat.fake.stream_interval_s = 0.0
    started = time.monotonic()
    chat.say("still there?", session="leaver")
    assert time.monotonic() - started < 30


def test_the_official_openai_client_works(chat: ChatEnv) -> None:
    client = openai.OpenAI(base_url=f"{chat.server.url}{chat.base}", api_key=chat.key, max_retries=0)
    first = client.responses.create(model=CLAUDE, input="hi from the sdk")
    assert first.status == "completed" and "last=hi from the sdk" in first.output_text
    follow_up = client.responses.create(model=CLAUDE, input="and again", previous_response_id=first.id)
    assert f"turns={turns(first.model_dump()) + 1} " in follow_up.output_text, "continued the same session"
    assert follow_up.previous_response_id == first.id
    events = list(client.responses.create(model=CLAUDE, input="streamed via sdk", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "streamed via sdk" in events[-1].response.output_text


def test_the_official_client_sends_an_image_and_a_file_that_reach_the_model(chat: ChatEnv) -> None:
    """The SDK's own forms (`image_url` data URL with `detail`, `file_data` with `filename`): the image reaches
    the model as an image, the file's text as (untrusted) context."""
    recipe = base64.b64encode(b"The secret is three clams per bowl.").decode()
    answer = chat.sdk("media").responses.create(
        model=VISION_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe the picture and the recipe."},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{RED_HEART_PNG}", "detail": "auto"},
                    {"type": "input_file", "filename": "recipe.txt", "file_data": f"data:text/plain;base64,{recipe}"},
                ],
            }
        ],
    )
    assert answer.status == "completed" and "Describe the picture" in answer.output_text
    [call] = [c for c in chat.model_calls_with("Describe the picture", VISION_MODEL) if c["body"].get("tools")]
    body = json.dumps(call["body"])
    assert '"type": "image"' in body, "the image reached the model as an image"
    assert "three clams per bowl" in body


def test_a_client_tool_round_trip_with_the_official_client(chat: ChatEnv) -> None:
    client = chat.sdk("tools")
    first = client.responses.create(
        model=CLAUDE, input="What's the weather like in San Francisco?", tools=[WEATHER_TOOL]
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == SAN_FRANCISCO
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": "72F"}'}
    follow_up = client.responses.create(
        model=CLAUDE, input=[result], previous_response_id=first.id, tools=[WEATHER_TOOL]
    )
    assert follow_up.status == "completed" and "72F" in follow_up.output_text
    assert follow_up.previous_response_id == first.id
    # A client that keeps the whole history sends the answer's output back as it got it.
    question = {"role": "user", "content": "And the weather in San Francisco now?"}
    again = client.responses.create(model=CLAUDE, input=[question], tools=[WEATHER_TOOL])
    history = [question, *(item.model_dump(mode="json") for item in again.output)]
    [call] = [item for item in again.output if item.type == "function_call"]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "64F and foggy"}
    whole = client.responses.create(model=CLAUDE, input=[*history, result], tools=[WEATHER_TOOL])
    assert whole.status == "completed" and "64F and foggy" in whole.output_text
    streamed = list(
        client.responses.create(model=CLAUDE, input="Weather, streamed?", tools=[WEATHER_TOOL], stream=True)
    )
    done = [event for event in streamed if event.type == "response.function_call_arguments.done"]
    assert done and json.loads(done[0].arguments) == SAN_FRANCISCO


def test_usage_matches_what_the_upstream_billed(chat: ChatEnv) -> None:
    client = chat.server.client
    scoped = client.post(
        "/v1/keys",
        headers=auth(chat.key),
        json={"name": "app", "instance_ids": [chat.instance_id], "permissions": ["interact", "read"]},
    ).json()
    response = client.post(
        f"{chat.base}/session/scoped-s/responses",
        headers=auth(scoped["raw_key"]),
        json={"model": CLAUDE, "input": "from my app"},
    )
    assert response.status_code == 200, response.text

    def upstream_totals() -> dict[str, int]:
        """What the fake upstream billed so far: OpenClaw also makes model calls of its own in the background."""
        billed = [r["usage"] for r in chat.fake.requests if r["usage"] and r["status"] == 200]
        tokens_in = sum(u["input_tokens"] for u in billed)
        tokens_out = sum(u["output_tokens"] for u in billed)
        return {
            "requests": len(billed),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }

    deadline = time.monotonic() + 60  # background calls may still be under way
    while True:
        expected = upstream_totals()
        report = client.get(f"{chat.base}/usage", headers=auth(scoped["raw_key"])).json()
        if report["total"] == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert report["total"] == expected
    sessions = {s["session_id"] for s in report["sessions"]}
    assert {"main", "alice", "streamer", "queue", "scoped-s"} <= sessions
    assert {m["model"] for m in report["models"]} >= {CLAUDE, "gpt-4o"}
    org_report = client.get("/v1/organization/usage", headers=auth(chat.key)).json()
    assert org_report["total"]["input_tokens"] >= expected["input_tokens"]
    assert [i["instance_id"] for i in org_report["instances"]] == [chat.instance_id]
    # The scoped key's turn made at least its own model call; OpenClaw may add background calls (recaps) of
    # its own while the turn runs, which are the turn's cost too.
    turn_calls = [
        r for r in chat.fake.requests if r["usage"] and r["model"] == CLAUDE and "from my app" in json.dumps(r["body"])
    ]
    by_key = {k["key_id"]: k for k in org_report["keys"]}
    assert turn_calls and by_key[scoped["id"]]["requests"] >= len(turn_calls)
    assert by_key[scoped["id"]]["input_tokens"] >= sum(r["usage"]["input_tokens"] for r in turn_calls)
    assert sum(k["input_tokens"] for k in org_report["keys"]) == org_report["total"]["input_tokens"]
    assert client.get("/v1/organization/usage", headers=auth(scoped["raw_key"])).status_code == 403
    later = client.get(f"{chat.base}/usage", params={"since": "2999-01-01T00:00:00Z"}, headers=auth(chat.key))
    assert later.json()["total"]["requests"] == 0


def test_bad_input_is_refused_before_reaching_the_gateway(chat: ChatEnv) -> None:
    client = chat.server.client
    response = client.post(
        f"{chat.base}/session/cron:x/responses", headers=auth(chat.key), json={"model": "gpt-4o", "input": "x"}
    )
    assert response.status_code == 400
    assert client.post(f"{chat.base}/responses", headers=auth(chat.key), json={"input": "x"}).status_code == 422
    bmp = {"type": "input_image", "image_url": "data:image/bmp;base64,Qk0="}
    image = {"model": CLAUDE, "input": [{"role": "user", "content": [bmp]}]}
    response = client.post(f"{chat.base}/responses", headers=auth(chat.key), json=image)
    assert response.status_code == 400 and response.json()["detail"].startswith("input_image of type 'image/bmp'")
    huge = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * (14 * 1024 * 1024)}
    image = {"model": CLAUDE, "input": [{"role": "user", "content": [huge]}]}
    response = client.post(f"{chat.base}/responses", headers=auth(chat.key), json=image)
    assert (response.status_code, response.json()) == (
        413,
        {"detail": "input_image is 10.5 MiB; the limit is 10 MiB per image."},
    )
    stranger = signup(client, "Stranger")
    response = client.post(f"{chat.base}/responses", headers=auth(stranger), json={"model": CLAUDE, "input": "x"})
    assert (response.status_code, response.json()) == (404, {"detail": "Instance not found."})


def test_a_system_prompt_set_live_reaches_the_model(chat: ChatEnv) -> None:
    """`agent.system_prompt` (the public docs' example) is applied to the running agent at once."""
    prompt = "Always answer like a ship's cook named Chowder."
    response = chat.server.client.patch(
        chat.base, headers=auth(chat.key), json={"openclaw_config": {"agent": {"system_prompt": prompt}}}
    )
    assert response.status_code == 200, response.text
    chat.say("who are you?", session="prompted")
    # The turn's own model call (OpenClaw also makes background calls, e.g. session recaps on another model).
    turn_calls = [r for r in chat.fake.requests if r["model"] == CLAUDE and "who are you?" in json.dumps(r["body"])]
    assert turn_calls and prompt in json.dumps(turn_calls[-1]["body"])


def test_memory_survives_stop_and_start(chat: ChatEnv) -> None:
    client = chat.server.client
    before = turns(chat.say("before restart", session="durable"))
    assert client.post(f"{chat.base}/stop", headers=auth(chat.key)).status_code == 200
    response = client.post(f"{chat.base}/responses", headers=auth(chat.key), json={"model": CLAUDE, "input": "x"})
    assert (response.status_code, response.json()) == (409, {"detail": "Instance is stopped, not running."})
    assert client.post(f"{chat.base}/start", headers=auth(chat.key)).status_code == 200
    assert turns(chat.say("after restart", session="durable")) == before + 1


def test_an_upstream_auth_error_comes_back_as_a_clear_failure(chat: ChatEnv) -> None:
    """Last in the module: OpenClaw then rests the provider's credential for about a minute."""
    chat.fake.required_key = "a-different-key"
    started = time.monotonic()
    try:
        response = chat.server.client.post(
            f"{chat.base}/session/badkey/responses",
            headers=auth(chat.key),
            json={"model": CLAUDE, "input": "will fail"},
        )
    finally:
        chat.fake.required_key = None
    assert time.monotonic() - started < 60
    body = response.json()
    failed = body.get("status") == "failed" or "detail" in body
    assert failed, body
    assert "ECHO" not in json.dumps(body)
