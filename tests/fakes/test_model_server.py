"""The fake model server itself: wire shapes per protocol, the echo reply, usage, knobs and lifecycle."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.model_server import FakeModelServer, parse_conversation
from tests.fakes.provider_api import PromptCache

INTERNAL = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nActive exec sessions: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"
RUNTIME = "\n\nRuntime: agent=main | session=agent:main:openresponses:abc | model=fakellm/fake-model"
# What OpenClaw sends on a second turn: system prompt, replayed history, wrapped new text, internal context.
OPENCLAW_MESSAGES = [
    {"role": "user", "content": "[Mon 2026-11-23 00:22 UTC] hello there" + RUNTIME},
    {"role": "assistant", "content": "ECHO[fake-model] turns=1 msgs=1 last=hello there history="},
    {"role": "user", "content": "[Mon 2026-11-23 00:23 UTC] how are you" + RUNTIME},
    {"role": "user", "content": INTERNAL},
]
OPENCLAW_REPLY = "ECHO[fake-model] turns=2 msgs=3 last=how are you history=hello there"
CACHE = PromptCache(write=100, read=1000)
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
BEARER = {"authorization": "Bearer sk-test"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeModelServer) -> FakeModelServer:
    """The shared server with its knobs reset and its log cleared."""
    server.delay_s, server.fail_status, server.required_key = 0.0, None, None
    server.drop_after_events, server.cache, server.retry_after_s = None, CACHE, 2
    server.requests.clear()
    return server


def sse(response: httpx.Response) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) per SSE event; `[DONE]` stays a string."""
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        data = fields["data"]
        events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


def post(fake: FakeModelServer, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """A call with the headers its provider requires (Anthropic's at `/v1/messages`), `headers` replacing them
    (an empty one is as good as none)."""
    usual = ANTHROPIC_HEADERS if path == "/v1/messages" else BEARER
    return httpx.post(fake.url + path, json=body, headers={**usual, **headers}, timeout=10)


def anthropic_usage(billed: dict[str, int], output_tokens: int) -> dict[str, int]:
    """What Anthropic reports for a call the fake billed `billed` for: the cache's tokens beside `input_tokens`."""
    return {
        "input_tokens": billed["input_tokens"] - CACHE.write - CACHE.read,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": CACHE.write,
        "cache_read_input_tokens": CACHE.read,
    }


def test_chat_completions_stream(fake: FakeModelServer) -> None:
    body = {"model": "fake-model", "messages": OPENCLAW_MESSAGES, "stream": True}
    events = sse(post(fake, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}}))
    assert {name for name, _ in events} == {None}
    chunks, done = [data for _, data in events[:-1]], events[-1][1]
    assert done == "[DONE]"
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    texts = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert len(texts) == 3 and "".join(texts) == OPENCLAW_REPLY
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    usage = fake.requests[-1]["usage"]
    total = usage["input_tokens"] + usage["output_tokens"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": min(CACHE.read, usage["input_tokens"])},
    }

    no_usage = sse(post(fake, "/v1/chat/completions", body))
    assert no_usage[-1][1] == "[DONE]" and all("usage" not in data for _, data in no_usage[:-1])


def test_chat_completions_json(fake: FakeModelServer) -> None:
    data = post(fake, "/v1/chat/completions", {"model": "fake-model", "messages": OPENCLAW_MESSAGES}).json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": OPENCLAW_REPLY}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["completion_tokens"] == len(OPENCLAW_REPLY.split())


def test_responses_stream(fake: FakeModelServer) -> None:
    body = {"model": "fake-model", "input": OPENCLAW_MESSAGES, "instructions": "be brief", "stream": True}
    events = sse(post(fake, "/v1/responses", body))
    names = [name for name, _ in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    datas = [data for _, data in events]
    assert [d["type"] for d in datas] == names
    assert [d["sequence_number"] for d in datas] == list(range(len(datas)))
    for start in datas[:2]:
        assert (start["response"]["status"], start["response"]["output"], start["response"]["usage"]) == (
            "in_progress",
            [],
            None,
        )
    item_id = datas[2]["item"]["id"]
    for part_event in datas[3:9]:
        assert (part_event["item_id"], part_event["output_index"], part_event["content_index"]) == (item_id, 0, 0)
    assert "".join(d["delta"] for d in datas[4:7]) == datas[7]["text"] == OPENCLAW_REPLY
    completed = datas[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["output"][0]["content"][0] == {"type": "output_text", "text": OPENCLAW_REPLY, "annotations": []}
    usage = fake.requests[-1]["usage"]
    assert (completed["usage"]["input_tokens"], completed["usage"]["output_tokens"]) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert completed["usage"]["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_responses_json_with_string_input(fake: FakeModelServer) -> None:
    data = post(fake, "/v1/responses", {"model": "fake-model", "input": "hi"}).json()
    assert (data["object"], data["status"]) == ("response", "completed")
    assert data["output"][0]["content"][0]["text"] == "ECHO[fake-model] turns=1 msgs=1 last=hi history="
    assert data["usage"] | {"input_tokens_details": None, "output_tokens_details": None} == {
        "input_tokens": 1,
        "input_tokens_details": None,
        "output_tokens": 5,
        "output_tokens_details": None,
        "total_tokens": 6,
    }


# The event sequence of an Anthropic stream in three pieces (text or tool input alike).
ANTHROPIC_STREAM = [
    "message_start",
    "content_block_start",
    "ping",
    *["content_block_delta"] * 3,
    "content_block_stop",
    "message_delta",
    "message_stop",
]


def test_anthropic_stream(fake: FakeModelServer) -> None:
    body = {"model": "claude-x", "max_tokens": 64, "system": "You are helpful", "messages": OPENCLAW_MESSAGES}
    events = sse(post(fake, "/v1/messages", {**body, "stream": True}))
    assert [name for name, _ in events] == ANTHROPIC_STREAM
    assert all(data["type"] == name for name, data in events)
    message = events[0][1]["message"]
    usage = fake.requests[-1]["usage"]
    assert (message["role"], message["model"], message["content"], message["stop_reason"]) == (
        "assistant",
        "claude-x",
        [],
        None,
    )
    assert message["usage"] == anthropic_usage(usage, 0)
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [data["delta"] for _, data in events[3:6]]
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert "".join(d["text"] for d in deltas) == OPENCLAW_REPLY.replace("fake-model", "claude-x")
    assert events[7][1]["delta"]["stop_reason"] == "end_turn"
    assert events[7][1]["usage"] == anthropic_usage(usage, usage["output_tokens"]), "cumulative, as Anthropic's"


def test_anthropic_json(fake: FakeModelServer) -> None:
    system = [{"type": "text", "text": "You are helpful"}]
    body = {"model": "fake-model", "max_tokens": 64, "system": system, "messages": OPENCLAW_MESSAGES}
    data = post(fake, "/v1/messages", body).json()
    assert (data["type"], data["role"], data["stop_reason"]) == ("message", "assistant", "end_turn")
    assert data["content"] == [{"type": "text", "text": OPENCLAW_REPLY}]
    billed = fake.requests[-1]["usage"]
    assert data["usage"] == anthropic_usage(billed, billed["output_tokens"])
    words = 3 + sum(len(m["content"].split()) for m in OPENCLAW_MESSAGES)
    assert billed["input_tokens"] == words + CACHE.write + CACHE.read, "cache written and read is input too"


def test_usage_counts_words_of_everything_sent(fake: FakeModelServer) -> None:
    messages = [
        {"role": "system", "content": "one two three"},
        {"role": "user", "content": "four five"},
        {"role": "assistant", "content": [{"type": "text", "text": "six"}]},
        {"role": "tool", "content": "not counted at all"},
        {"role": "user", "content": "seven"},
    ]
    data = post(fake, "/v1/chat/completions", {"model": "m", "messages": messages}).json()
    reply = "ECHO[m] turns=2 msgs=3 last=seven history=four five"
    assert data["choices"][0]["message"]["content"] == reply
    assert data["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 6,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 7},
    }
    assert fake.requests[-1]["usage"] == {"input_tokens": 7, "output_tokens": 6}


def test_parsing_of_parts_items_and_openclaw_wrappers() -> None:
    first = [{"type": "input_text", "text": "[Tue 2026-11-24 09:00 UTC] a"}]
    body = {
        "input": [
            {"role": "developer", "content": "system prompt"},
            {"type": "message", "role": "user", "content": first},
            {"type": "function_call", "name": "ls", "arguments": "{}"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "reply"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "[not a timestamp] b" + RUNTIME}]},
            {"role": "user", "content": [{"type": "input_text", "text": INTERNAL}]},
        ]
    }
    conversation = parse_conversation("responses", body)
    assert conversation.system == ["system prompt"]
    assert conversation.user_texts == ["a", "[not a timestamp] b"]
    assert conversation.assistant_count == 1
    tool_result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}
    assert parse_conversation("anthropic", {"messages": [tool_result]}).user_texts == []


ANY_BODY = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}], "input": "x"}


@pytest.mark.parametrize(
    ("path", "provider", "protocol"),
    [
        ("/v1/messages", "anthropic", "anthropic"),
        ("/v1/responses", "openai", "responses"),
        ("/v1/chat/completions", "openai", "chat"),
        ("/v1beta/openai/chat/completions", "gemini", "chat"),
    ],
)
def test_the_providers_paths(fake: FakeModelServer, path: str, provider: str, protocol: str) -> None:
    assert post(fake, path, ANY_BODY).status_code == 200
    assert (fake.requests[-1]["path"], fake.requests[-1]["provider"], fake.requests[-1]["protocol"]) == (
        path,
        provider,
        protocol,
    )
    assert fake.gemini_url == fake.url + "/v1beta/openai"


@pytest.mark.parametrize(
    "path",
    [
        "/anthropic/v1/messages",
        "/openai/v1/responses",
        "/v1/openai/chat/completions",
        "/gemini/chat/completions",
        "/v1beta/chat/completions",
        "/chat/completions",
        "/messages",
        "/v1/messages/",
    ],
)
def test_a_wrong_base_path_is_not_found(fake: FakeModelServer, path: str) -> None:
    """Only the exact paths real providers serve: a base URL off by a segment fails here as it would there."""
    missing = post(fake, path, ANY_BODY, **ANTHROPIC_HEADERS)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Invalid URL (POST {path})"
    assert len(fake.requests) == 0


def test_every_call_needs_its_providers_credential(fake: FakeModelServer) -> None:
    """No key, or the other provider's way of sending one, is a 401 in the provider's shape."""
    anthropic = post(fake, "/v1/messages", ANY_BODY, **{"x-api-key": ""}, **BEARER)
    assert anthropic.status_code == 401 and anthropic.json()["error"]["type"] == "authentication_error"
    for path in ("/v1/chat/completions", "/v1/responses", "/v1beta/openai/chat/completions"):
        for headers in ({"authorization": ""}, {"authorization": "", "x-api-key": "sk"}, {"authorization": "sk"}):
            refused = post(fake, path, ANY_BODY, **headers)
            assert refused.status_code == 401, (path, headers)
            assert refused.json()["error"]["code"] == "invalid_api_key"
    assert [r["usage"] for r in fake.requests] == [None] * 10, "refused calls are not billed"


def test_anthropic_requires_its_version_header_and_max_tokens(fake: FakeModelServer) -> None:
    no_version = post(fake, "/v1/messages", ANY_BODY, **{"anthropic-version": ""})
    assert (no_version.status_code, no_version.json()["type"]) == (400, "error")
    assert no_version.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    no_limit = post(fake, "/v1/messages", {**ANY_BODY, "max_tokens": None})
    assert no_limit.status_code == 400
    assert no_limit.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert [(r["status"], r["usage"]) for r in fake.requests] == [(400, None), (400, None)]
    chat = {key: value for key, value in ANY_BODY.items() if key != "max_tokens"}
    assert post(fake, "/v1/chat/completions", chat).status_code == 200, "OpenAI needs neither"


def test_openai_reports_cached_tokens_within_the_prompt(fake: FakeModelServer) -> None:
    """OpenAI's `cached_tokens` are part of `prompt_tokens`/`input_tokens`: at most all of it, never added."""
    fake.cache = PromptCache(write=5, read=2)
    body = {"model": "m", "messages": [{"role": "user", "content": "a b c"}], "input": "a b c"}
    chat = post(fake, "/v1/chat/completions", body).json()["usage"]
    assert (chat["prompt_tokens"], chat["prompt_tokens_details"]) == (3, {"cached_tokens": 2})
    responses = post(fake, "/v1/responses", body).json()["usage"]
    assert (responses["input_tokens"], responses["input_tokens_details"]) == (3, {"cached_tokens": 2})
    streamed = sse(post(fake, "/v1/responses", {**body, "stream": True}))[-1][1]["response"]["usage"]
    assert streamed["input_tokens_details"] == {"cached_tokens": 2}
    assert [r["usage"]["input_tokens"] for r in fake.requests] == [3, 3, 3]


def test_a_429_says_when_to_retry(fake: FakeModelServer) -> None:
    fake.fail_status, fake.retry_after_s = 429, 7
    limited = post(fake, "/v1/messages", ANY_BODY)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert limited.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited."}}
    limited = post(fake, "/v1/responses", ANY_BODY)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    fake.fail_status = 500
    assert "retry-after" not in post(fake, "/v1/responses", ANY_BODY).headers


def test_a_stream_can_drop_mid_way(fake: FakeModelServer) -> None:
    """The connection closes without ending the body: the client sees a broken stream, not a short one."""
    fake.drop_after_events = 2
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST", fake.url + "/v1/messages", json={**ANY_BODY, "stream": True}, headers=ANTHROPIC_HEADERS
        ) as answer,
    ):
        assert answer.status_code == 200
        received.extend(answer.iter_bytes())
    events = [block for block in b"".join(received).split(b"\n\n") if block]
    assert [block.split(b"\n")[0] for block in events] == [b"event: message_start", b"event: content_block_start"]
    assert post(fake, "/v1/messages", ANY_BODY).status_code == 200, "answers that do not stream are whole"


def test_required_key_401_shapes(fake: FakeModelServer) -> None:
    fake.required_key = "sk-right"
    body = ANY_BODY
    anthropic = post(fake, "/v1/messages", body, **{"x-api-key": "sk-wrong"})
    assert anthropic.status_code == 401
    assert anthropic.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    for path in ("/v1/chat/completions", "/v1/responses", "/v1beta/openai/chat/completions"):
        refused = post(fake, path, body, authorization="Bearer sk-wrong")
        assert refused.status_code == 401
        assert refused.json()["error"] | {"message": ""} == {
            "message": "",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    assert post(fake, "/v1/messages", body, authorization="Bearer sk-right", **{"x-api-key": ""}).status_code == 401
    assert post(fake, "/v1/messages", body, **{"x-api-key": "sk-right"}).status_code == 200
    assert post(fake, "/v1/chat/completions", body, authorization="Bearer sk-right").status_code == 200
    assert [r["status"] for r in fake.requests][-3:] == [401, 200, 200]
    assert fake.requests[0]["headers"]["x-api-key"] == "sk-wrong"


def test_fail_status_and_bad_json(fake: FakeModelServer) -> None:
    fake.fail_status = 529
    body = {**ANY_BODY, "stream": True}
    overloaded = post(fake, "/v1/messages", body)
    assert (overloaded.status_code, overloaded.json()["error"]["type"]) == (529, "overloaded_error")
    fake.fail_status = 500
    failed = post(fake, "/v1/chat/completions", body)
    assert (failed.status_code, failed.json()["error"]["type"]) == (500, "server_error")
    assert fake.requests[-1]["usage"] is None
    fake.fail_status = None
    garbled = httpx.post(fake.url + "/v1/responses", content=b"{nope", headers=BEARER, timeout=10)
    assert (garbled.status_code, garbled.json()["error"]["type"]) == (400, "invalid_request_error")
    garbled = httpx.post(fake.url + "/v1/messages", content=b"[]", headers=ANTHROPIC_HEADERS, timeout=10)
    assert (garbled.status_code, garbled.json()["error"]["type"]) == (400, "invalid_request_error")


def test_delay_and_concurrency(fake: FakeModelServer) -> None:
    fake.delay_s = 0.5
    body = {**ANY_BODY, "stream": True}
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda path: post(fake, path, body), ["/v1/messages", "/v1/chat/completions"]))
    elapsed = time.monotonic() - started
    assert all(r.status_code == 200 for r in responses)
    assert 0.5 <= elapsed < 1.0, "each waited the delay, and the two overlapped"
    first, second = sorted(r["received_at"] for r in fake.requests)
    assert second - first < 0.5, "the second arrived while the first was still waiting"


def test_models_health_and_unknown_routes(fake: FakeModelServer) -> None:
    models = httpx.get(fake.url + "/v1/models", headers={"x-api-key": "sk"}).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fake-model", "fake-model-b"]
    assert httpx.get(fake.gemini_url + "/models", headers=BEARER).status_code == 200
    assert httpx.get(fake.url + "/v1/models").status_code == 401
    assert httpx.get(fake.url + "/openai/v1/models", headers=BEARER).status_code == 404
    assert httpx.get(fake.url + "/health").json() == {"ok": True}
    assert httpx.post(fake.url + "/v1/embeddings", json={}, headers=BEARER).status_code == 404
    assert httpx.get(fake.url + "/v1/messages", headers=ANTHROPIC_HEADERS).status_code == 405
    assert len(fake.requests) == 0, "only model calls are logged"


def test_jsonl_log_and_fast_clean_shutdown(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    body = {**ANY_BODY, "stream": True}
    with FakeModelServer(log_path=log, stream_interval_s=0.01) as fake, ThreadPoolExecutor(1) as pool:
        port = fake.port
        post(fake, "/v1/messages", body)
        fake.delay_s = 30
        in_flight = pool.submit(post, fake, "/v1/chat/completions", body)
        with httpx.Client() as keep_alive:  # neither an idle keep-alive connection nor a long delay holds up stop()
            keep_alive.get(fake.url + "/health")
            while len(fake.requests) < 2:
                time.sleep(0.01)
            stopping = time.monotonic()
            fake.stop()
            assert time.monotonic() - stopping < 1.0
        assert in_flight.result().status_code == 503
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["protocol"], r["model"], r["stream"], r["status"]) for r in records] == [
        ("anthropic", "m", True, 200),
        ("chat", "m", True, 200),
    ]
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# --- The scripted shell tool call ---------------------------------------------------------------------------------

SHELL = "id -u; cat /proc/self/status | grep CapEff"
EXEC_TOOL = {"name": "exec", "input_schema": {"type": "object", "required": ["command"]}}
RUN_SHELL_TURN = {
    "role": "user",
    "content": [{"type": "text", "text": f"[Thu 2026-12-03 07:42 UTC] RUN_SHELL: {SHELL}"}],
}
INTERNAL_TURN = {"role": "user", "content": [{"type": "text", "text": INTERNAL}]}


def anthropic_after_call(result: str, tool_use_id: str = "toolu_1") -> list[dict[str, Any]]:
    """The second request of a turn as OpenClaw sends it: the call, its result, then the internal context again."""
    call = {"type": "tool_use", "id": "toolu_1", "name": "exec", "input": {"command": SHELL}}
    tool_result = {"type": "tool_result", "tool_use_id": tool_use_id, "content": result, "is_error": False}
    return [
        RUN_SHELL_TURN,
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [tool_result]},
        INTERNAL_TURN,
    ]


def test_anthropic_shell_call_stream(fake: FakeModelServer) -> None:
    body = {"model": "claude-x", "max_tokens": 64, "messages": [RUN_SHELL_TURN, INTERNAL_TURN], "tools": [EXEC_TOOL]}
    events = sse(post(fake, "/v1/messages", {**body, "stream": True}))
    assert [name for name, _ in events] == ANTHROPIC_STREAM
    assert events[0][1]["message"]["content"] == [] and events[0][1]["message"]["stop_reason"] is None
    block = events[1][1]["content_block"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "exec", {})
    assert block["id"].startswith("toolu_")
    deltas = [data["delta"] for _, data in events[3:6]]
    assert {d["type"] for d in deltas} == {"input_json_delta"}
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {"command": SHELL}
    assert events[7][1]["delta"]["stop_reason"] == "tool_use"
    record = fake.requests[-1]
    assert record["tool_call"] == {"name": "exec", "input": {"command": SHELL}} and record["reply"] is None
    assert events[7][1]["usage"] == anthropic_usage(record["usage"], record["usage"]["output_tokens"])


def test_anthropic_shell_call_json(fake: FakeModelServer) -> None:
    body = {"model": "claude-x", "max_tokens": 64, "messages": [RUN_SHELL_TURN], "tools": [EXEC_TOOL]}
    data = post(fake, "/v1/messages", body).json()
    assert (data["type"], data["role"], data["stop_reason"]) == ("message", "assistant", "tool_use")
    [block] = data["content"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "exec", {"command": SHELL})
    billed = fake.requests[-1]["usage"]
    assert data["usage"] == anthropic_usage(billed, billed["output_tokens"])


def test_anthropic_shell_result_becomes_the_answer(fake: FakeModelServer) -> None:
    output = "65534\nCapEff:\t0000000000000000"
    body = {"model": "claude-x", "max_tokens": 64, "messages": anthropic_after_call(output), "tools": [EXEC_TOOL]}
    assert post(fake, "/v1/messages", body).json()["content"] == [{"type": "text", "text": f"SHELL_RESULT:\n{output}"}]
    events = sse(post(fake, "/v1/messages", {**body, "stream": True}))
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == f"SHELL_RESULT:\n{output}"
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert fake.requests[-1]["tool_call"] is None and fake.requests[-1]["reply"] == text


def test_shell_script_needs_the_tool_our_call_and_a_marker_line(fake: FakeModelServer) -> None:
    no_tools = post(fake, "/v1/messages", {"model": "m", "max_tokens": 64, "messages": [RUN_SHELL_TURN]}).json()
    assert no_tools["stop_reason"] == "end_turn", "a background call (no tools) gets the echo"
    quoted = {"role": "user", "content": f'{{"messages":["user: RUN_SHELL: {SHELL}"]}}'}
    inline = post(fake, "/v1/messages", {**ANY_BODY, "messages": [quoted], "tools": [EXEC_TOOL]}).json()
    assert inline["stop_reason"] == "end_turn", "the marker must start a line"
    other_call = anthropic_after_call("x", tool_use_id="toolu_other")
    foreign = post(fake, "/v1/messages", {**ANY_BODY, "messages": other_call, "tools": [EXEC_TOOL]}).json()
    assert foreign["stop_reason"] == "tool_use", "another call's result is not reported: the marker asks again"
    chat = {"model": "m", "messages": [RUN_SHELL_TURN], "tools": [EXEC_TOOL]}
    assert post(fake, "/v1/chat/completions", chat).json()["choices"][0]["finish_reason"] == "stop"


def test_responses_shell_call_and_result(fake: FakeModelServer) -> None:
    function_tool = {"type": "function", "name": "exec", "parameters": {"type": "object"}}
    turn = {"role": "user", "content": [{"type": "input_text", "text": f"RUN_SHELL: {SHELL}"}]}
    body = {"model": "gpt-x", "input": [turn], "tools": [function_tool], "stream": True}
    events = sse(post(fake, "/v1/responses", body))
    names = [name for name, _ in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 3,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    datas = [data for _, data in events]
    assert [d["sequence_number"] for d in datas] == list(range(len(datas)))
    added = datas[2]["item"]
    assert (added["type"], added["name"], added["arguments"], added["status"]) == (
        "function_call",
        "exec",
        "",
        "in_progress",
    )
    arguments = "".join(d["delta"] for d in datas[3:6])
    assert arguments == datas[6]["arguments"] and json.loads(arguments) == {"command": SHELL}
    assert all(d["item_id"] == added["id"] for d in datas[3:7])
    completed = datas[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["output"] == [{**added, "arguments": arguments, "status": "completed"}]

    as_json = post(fake, "/v1/responses", {**body, "stream": False}).json()
    assert [(o["type"], json.loads(o["arguments"])) for o in as_json["output"]] == [
        ("function_call", {"command": SHELL})
    ]
    call = {"type": "function_call", "call_id": added["call_id"], "name": "exec", "arguments": arguments}
    result = {"type": "function_call_output", "call_id": added["call_id"], "output": "65534"}
    follow_up = {"model": "gpt-x", "input": [turn, call, result, INTERNAL_TURN], "tools": [function_tool]}
    answer = post(fake, "/v1/responses", follow_up).json()
    assert answer["output"][0]["content"][0]["text"] == "SHELL_RESULT:\n65534"
