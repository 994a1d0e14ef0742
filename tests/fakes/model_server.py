"""A fake model provider for tests (runtime doc, section 11): the built-in echo model
(`chowder.modelgw.echo`, which documents the reply and usage) behind a real loopback port, plus knobs.

One port speaks OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, streaming or not, so a
real OpenClaw gateway (and the control plane's model proxy in front of it) can be driven offline. It is as strict
as the real providers (`tests/fakes/provider_api.py`): only their exact paths, their credentials, Anthropic's
required header and field; and its usage carries their prompt-cache fields, so what passes here passes there.

One scripted tool call lets tests run a command through the agent's own shell tool (OpenClaw's `exec`): a latest
user message with a line `RUN_SHELL: <command>` is answered by a call to that tool (Anthropic Messages and OpenAI
Responses, when the request offers it), and the call's result by the text `SHELL_RESULT:\n<result text>`.

Client tools (a caller's own function tools, which OpenClaw offers the model and hands back to the caller when
called) are scripted with the `tool_calls` knob: a request offering one of its tools is answered by a call to it
with the scripted arguments, unless its latest user message carries a tool's result (OpenClaw writes a caller's
`function_call_output` as a `Tool:<call id>: <output>` line), which gets the echo.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chowder.modelgw import echo as echo_model
from chowder.modelgw.echo import (
    SYSTEM_ROLES,
    TEXT_PART_TYPES,
    Answer,
    Conversation,
    Event,
    WireProtocol,
    anthropic_events,
    chat_completion,
    chat_events,
    count_words,
    encode_sse,
    json_answer,
    parse_body,
    protocol_for,
    reply_text,
    response_object,
    responses_events,
    split_pieces,
    text_of,
    wants_stream,
)
from chowder.runtime.openclaw.model_calls import INTERNAL_CONTEXT, RUNTIME_SUFFIX, TIMESTAMP_PREFIX, user_words
from tests.fakes.loopback import LoopbackServer
from tests.fakes.provider_api import (
    GEMINI_BASE_PATH,
    MODEL_CALLS,
    MODEL_LISTS,
    Endpoint,
    PromptCache,
    Refusal,
    error_body,
    refusal,
    unauthenticated,
    unknown_path,
)

__all__ = [  # the echo model's names stay importable from here, as before they moved
    "INTERNAL_CONTEXT",
    "RUNTIME_SUFFIX",
    "RUN_SHELL",
    "SHELL_RESULT",
    "SHELL_TOOL",
    "SYSTEM_ROLES",
    "TEXT_PART_TYPES",
    "TIMESTAMP_PREFIX",
    "Answer",
    "Conversation",
    "DEFAULT_MODELS",
    "Event",
    "FakeModelServer",
    "RequestLog",
    "ToolCall",
    "WireProtocol",
    "anthropic_events",
    "answer",
    "chat_completion",
    "chat_events",
    "count_words",
    "encode_sse",
    "parse_conversation",
    "protocol_for",
    "reply_text",
    "response_object",
    "responses_events",
    "scripted_answer",
    "split_pieces",
    "text_of",
    "user_words",
]

DEFAULT_MODELS = ("fake-model", "fake-model-b")


def parse_conversation(protocol: WireProtocol, body: dict[str, Any]) -> Conversation:
    """The echo model's reading of a conversation as OpenClaw wrote it."""
    return echo_model.parse_conversation(protocol, body, user_words)


def answer(protocol: WireProtocol, body: dict[str, Any], pieces: int = 3) -> Answer:
    """The echo model's answer to a conversation as OpenClaw wrote it."""
    return echo_model.answer(protocol, body, user_words, pieces)


# --- The scripted shell tool call --------------------------------------------------------------------------------

SHELL_TOOL = "exec"  # OpenClaw's shell tool; input schema `{"command": string (required), "workdir", "env", ...}`
RUN_SHELL = "RUN_SHELL: "
_RUN_SHELL_LINE = re.compile(rf"^{re.escape(RUN_SHELL)}(.*\S)", re.MULTILINE)
SHELL_RESULT = "SHELL_RESULT:\n"


@dataclass(frozen=True)
class ToolCall:
    """A scripted answer calling `name`: `answer.text` is the tool input as JSON and `answer.pieces` its streamed
    fragments, so usage is counted as for a text answer."""

    name: str
    call_id: str
    answer: Answer


def scripted_answer(
    protocol: WireProtocol, body: dict[str, Any], pieces: int = 3, tool_calls: Mapping[str, Any] | None = None
) -> Answer | ToolCall:
    """The result of our own shell call comes back as `SHELL_RESULT:` text; a `RUN_SHELL:` line in the latest user
    message becomes that call; an offered tool of `tool_calls` (name → arguments) is called unless the latest user
    message carries a tool result; anything else gets the echo. Chat Completions always gets the echo."""
    echo = answer(protocol, body, pieces)
    if protocol == "chat":
        return echo
    result = _shell_result(protocol, body)
    if result is not None:
        text = SHELL_RESULT + result
        return dataclasses.replace(echo, text=text, pieces=split_pieces(text, pieces), output_tokens=count_words(text))
    users = parse_conversation(protocol, body).user_texts
    latest = users[-1] if users else ""
    offered = _offered_tools(body)
    command = _RUN_SHELL_LINE.search(latest)
    if command is not None and SHELL_TOOL in offered:
        return _tool_call(protocol, echo, SHELL_TOOL, {"command": command.group(1)}, pieces)
    scripted = [name for name in tool_calls or {} if name in offered]
    if scripted and not _TOOL_RESULT_LINE.search(latest):
        return _tool_call(protocol, echo, scripted[0], (tool_calls or {})[scripted[0]], pieces)
    return echo


_TOOL_RESULT_LINE = re.compile(r"^Tool:\S+: ", re.MULTILINE)


def _tool_call(protocol: WireProtocol, echo: Answer, name: str, arguments: Any, pieces: int) -> ToolCall:
    text = json.dumps(arguments)
    call = dataclasses.replace(echo, text=text, pieces=split_pieces(text, pieces), output_tokens=count_words(text))
    return ToolCall(name, _new_id("toolu_" if protocol == "anthropic" else "call_"), call)


def _offered_tools(body: dict[str, Any]) -> set[str]:
    """Tool names as Anthropic (`tools[].name`) and Responses (flat function tools) declare them."""
    return {tool["name"] for tool in body.get("tools") or [] if isinstance(tool, dict) and "name" in tool}


def _shell_result(protocol: WireProtocol, body: dict[str, Any]) -> str | None:
    """The text of our shell call's result, if the conversation ends with it (OpenClaw's injected internal-context
    message aside): the model is then asked to go on after the call."""
    items = body.get("messages") if protocol == "anthropic" else body.get("input")
    items = [item for item in items or [] if isinstance(item, dict) and not _internal_context(item)]
    if not items:
        return None
    if protocol == "anthropic":
        return _anthropic_tool_result(items)
    calls = {item.get("call_id") for item in items if _is_shell_call(item, "function_call")}
    last = items[-1]
    if last.get("type") == "function_call_output" and last.get("call_id") in calls:
        return text_of(last.get("output"))
    return None


def _anthropic_tool_result(messages: list[dict[str, Any]]) -> str | None:
    """Anthropic puts `tool_use` blocks in assistant messages and `tool_result` blocks in the next user one."""

    def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
        content = message.get("content")
        return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []

    calls = {
        block.get("id")
        for message in messages
        if message.get("role") == "assistant"
        for block in blocks(message)
        if _is_shell_call(block, "tool_use")
    }
    results = [
        text_of(block.get("content"))
        for block in blocks(messages[-1])
        if block.get("type") == "tool_result" and block.get("tool_use_id") in calls
    ]
    return "\n".join(results) if results else None


def _is_shell_call(item: dict[str, Any], kind: str) -> bool:
    return item.get("type") == kind and item.get("name") == SHELL_TOOL


def _internal_context(item: dict[str, Any]) -> bool:
    """OpenClaw's `<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>` user message, which it may add after a tool result."""
    text = text_of(item.get("content"))
    return item.get("role") == "user" and INTERNAL_CONTEXT.search(text) is not None and not user_words(text)


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _tool_call_json(protocol: WireProtocol, call: ToolCall) -> dict[str, Any]:
    """The tool call as one JSON document, for a request that did not ask to stream."""
    if protocol == "anthropic":
        return _anthropic_tool_message(call, _new_id("msg_"), done=True)
    return _tool_response(call, _new_id("resp_"), _new_id("fc_"), done=True)


def _tool_call_events(protocol: WireProtocol, call: ToolCall) -> Iterator[Event]:
    """The tool call as the protocol's server-sent events, the input JSON streamed in `answer.pieces`."""
    if protocol == "anthropic":
        return _anthropic_tool_events(call)
    return _responses_tool_events(call)


def _tool_use_block(call: ToolCall, done: bool) -> dict[str, Any]:
    """Anthropic streams the block with an empty `input`, then the JSON as `input_json_delta` fragments."""
    tool_input = json.loads(call.answer.text) if done else {}
    return {"type": "tool_use", "id": call.call_id, "name": call.name, "input": tool_input}


def _anthropic_tool_message(call: ToolCall, msg_id: str, done: bool) -> dict[str, Any]:
    a = call.answer
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [_tool_use_block(call, done=True)] if done else [],
        "stop_reason": "tool_use" if done else None,
        "stop_sequence": None,
        "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens if done else 0},
    }


def _anthropic_tool_events(call: ToolCall) -> Iterator[Event]:
    a = call.answer
    yield "message_start", {"message": _anthropic_tool_message(call, _new_id("msg_"), done=False)}
    yield "content_block_start", {"index": 0, "content_block": _tool_use_block(call, done=False)}
    yield "ping", {}
    for piece in a.pieces:
        yield "content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}
    yield "content_block_stop", {"index": 0}
    delta = {"stop_reason": "tool_use", "stop_sequence": None}
    yield "message_delta", {"delta": delta, "usage": {"output_tokens": a.output_tokens}}
    yield "message_stop", {}


def _function_call_item(call: ToolCall, item_id: str, done: bool) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.answer.text if done else "",
        "status": "completed" if done else "in_progress",
    }


def _tool_response(call: ToolCall, resp_id: str, item_id: str, done: bool) -> dict[str, Any]:
    """The echo's response object (status, usage) with the function call as its only output item."""
    output = [_function_call_item(call, item_id, done=True)] if done else []
    return {**response_object(call.answer, resp_id, item_id, done), "output": output}


def _responses_tool_events(call: ToolCall) -> Iterator[Event]:
    """What OpenAI streams for a function call; `type`/`sequence_number` are added on sending."""
    resp_id, item_id = _new_id("resp_"), _new_id("fc_")
    where = {"item_id": item_id, "output_index": 0}
    yield "response.created", {"response": _tool_response(call, resp_id, item_id, done=False)}
    yield "response.in_progress", {"response": _tool_response(call, resp_id, item_id, done=False)}
    yield "response.output_item.added", {"output_index": 0, "item": _function_call_item(call, item_id, done=False)}
    for piece in call.answer.pieces:
        yield "response.function_call_arguments.delta", {**where, "delta": piece}
    yield "response.function_call_arguments.done", {**where, "arguments": call.answer.text}
    yield "response.output_item.done", {"output_index": 0, "item": _function_call_item(call, item_id, done=True)}
    yield "response.completed", {"response": _tool_response(call, resp_id, item_id, done=True)}


# --- Request log ---------------------------------------------------------------------------------------------------


class RequestLog:
    """Thread-safe, list-like record of model calls; the handlers append from the server thread."""

    def __init__(self, jsonl_path: Path | None = None) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.jsonl_path = jsonl_path

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(record)
            if self.jsonl_path is not None:
                with self.jsonl_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, default=str) + "\n")

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._items[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.snapshot())


# --- Server --------------------------------------------------------------------------------------------------------

# Realistic for an agent: a long system prompt and tool list, written to the cache once and read back since.
DEFAULT_CACHE = PromptCache(write=1536, read=12288)


class ConnectionDropped(Exception):
    """Raised inside a streamed answer to cut its connection: the server closes it without ending the body."""


class FakeModelServer(LoopbackServer):
    """Serve the fake on 127.0.0.1 from a background thread; use as `with FakeModelServer() as fake: fake.url`.

    It answers only the paths real providers serve (`provider_api.MODEL_CALLS`): point Anthropic's and OpenAI's base
    URLs at `url`, Gemini's at `gemini_url`.

    Knobs are plain attributes, settable while running and read once as each request arrives:
    `delay_s` (sleep before answering), `fail_status` (answer that status with the protocol's error body; a 429
    with `retry-after: retry_after_s`), `required_key` (401 unless the protocol's credential is this one; any
    credential will do without it, none never), `stream_interval_s` (sleep between events), `drop_after_events`
    (a stream's connection drops after that many events), `cache` (prompt-cache tokens in every answer's usage),
    `tool_calls` (client tools to call when offered: name → arguments).
    """

    thread_name = "fake-model"

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        fail_status: int | None = None,
        required_key: str | None = None,
        stream_interval_s: float = 0.0,
        pieces: int = 3,
        models: tuple[str, ...] = DEFAULT_MODELS,
        log_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.fail_status = fail_status
        self.retry_after_s = 2
        self.required_key = required_key
        self.stream_interval_s = stream_interval_s
        self.drop_after_events: int | None = None
        self.cache = DEFAULT_CACHE
        self.pieces = pieces
        self.tool_calls: dict[str, Any] = {}
        self.models = models
        self.requests = RequestLog(log_path)

    @property
    def gemini_url(self) -> str:
        """The base URL standing in for Gemini's OpenAI-compatible endpoint."""
        return self.url + GEMINI_BASE_PATH

    def app(self) -> Starlette:
        routes = [Route(path, self._model_call, methods=["POST"]) for path in MODEL_CALLS]
        routes += [Route(path, self._model_list, methods=["GET"]) for path in MODEL_LISTS]
        routes.append(Route("/health", _health))
        app = Starlette(routes=routes, exception_handlers={404: _unknown_path, 405: _unknown_path})
        app.router.redirect_slashes = False  # a trailing slash is another path
        return app

    async def _model_list(self, request: Request) -> Response:
        if unauthenticated(MODEL_LISTS[request.url.path], _lowered(request.headers), self.required_key):
            return JSONResponse(error_body("chat", 401), 401)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _model_call(self, request: Request) -> Response:
        endpoint, protocol = MODEL_CALLS[request.url.path], MODEL_CALLS[request.url.path].protocol
        headers = _lowered(request.headers)
        body = await _json_body(request)
        delay, interval, drop, cache = self.delay_s, self.stream_interval_s, self.drop_after_events, self.cache
        refused = self._refusal(endpoint, headers, body)
        calls = dict(self.tool_calls)
        result = scripted_answer(protocol, body, self.pieces, calls) if refused is None and body is not None else None
        self.requests.append(_record(request.url.path, endpoint, headers, body, refused, result, cache))
        if not await self.pause(delay):
            return JSONResponse(error_body(protocol, 503), 503)
        if refused is not None:
            retry = {"retry-after": str(self.retry_after_s)} if refused.status == 429 else None
            return JSONResponse(error_body(protocol, refused.status, refused.message), refused.status, retry)
        assert body is not None and result is not None, "a request without a JSON body is refused"
        if not wants_stream(body):
            return JSONResponse(cache.add_to(protocol, _document(protocol, result), _billed(result).input_tokens))
        sse = encode_sse(_cached_events(protocol, body, result, cache), numbered=protocol == "responses")
        return StreamingResponse(
            self._paced(sse, interval, drop), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    async def _paced(self, events: Iterator[bytes], interval: float, drop_after: int | None) -> AsyncIterator[bytes]:
        """Each event is its own ASGI body message, so uvicorn writes (flushes) it before the next one; a stop
        ends the stream early (the client sees it cut short, as with a real provider going away); `drop_after`
        events, the connection drops."""
        for sent, event in enumerate(events):
            if sent == drop_after:
                raise ConnectionDropped(f"dropped after {sent} events")
            yield event
            if not await self.pause(interval):
                return

    def _refusal(self, endpoint: Endpoint, headers: dict[str, str], body: dict[str, Any] | None) -> Refusal | None:
        """`fail_status` wins over a missing or wrong credential (401), which wins over a malformed request (400)."""
        if self.fail_status is not None:
            return Refusal(self.fail_status)
        if unauthenticated((endpoint.provider,), headers, self.required_key):
            return Refusal(401)
        return refusal(endpoint, headers, body)


def _billed(result: Answer | ToolCall) -> Answer:
    """The answer whose word counts are billed: a tool call's input JSON counts as its text."""
    return result.answer if isinstance(result, ToolCall) else result


def _document(protocol: WireProtocol, result: Answer | ToolCall) -> dict[str, Any]:
    """The answer as one JSON document, for a request that did not ask to stream."""
    return _tool_call_json(protocol, result) if isinstance(result, ToolCall) else json_answer(protocol, result)


def _cached_events(
    protocol: WireProtocol, body: dict[str, Any], result: Answer | ToolCall, cache: PromptCache
) -> Iterator[Event]:
    """The answer as the protocol's events, their usage with the prompt cache's fields."""
    if isinstance(result, ToolCall):
        events = _tool_call_events(protocol, result)
    elif protocol == "anthropic":
        events = anthropic_events(result)
    elif protocol == "responses":
        events = responses_events(result)
    else:
        events = chat_events(result, include_usage=bool((body.get("stream_options") or {}).get("include_usage")))
    input_tokens = _billed(result).input_tokens
    for name, data in events:
        yield name, cache.add_to(protocol, data, input_tokens) if isinstance(data, dict) else data


def _record(
    path: str,
    endpoint: Endpoint,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    refused: Refusal | None,
    result: Answer | ToolCall | None,
    cache: PromptCache,
) -> dict[str, Any]:
    """One entry of `FakeModelServer.requests`, logged on arrival: `status` is the answer decided then (a `stop()`
    during the delay answers 503 instead); `usage` is what the provider bills, every input token counted as the
    usage meter counts them (prompt cache included), None for refused requests; `reply` is None for them and for
    tool calls, `tool_call` (`{"name", "input"}`) for everything but tool calls."""
    call = result if isinstance(result, ToolCall) else None
    billed = _billed(result) if result is not None else None
    usage = None
    if billed is not None:
        input_tokens = cache.billed_input(endpoint.protocol, billed.input_tokens)
        usage = {"input_tokens": input_tokens, "output_tokens": billed.output_tokens}
    return {
        "path": path,
        "provider": endpoint.provider,
        "headers": headers,
        "body": body,
        "protocol": endpoint.protocol,
        "model": body.get("model") if body else None,
        "stream": bool(body and wants_stream(body)),
        "status": refused.status if refused else 200,
        "reply": result.text if isinstance(result, Answer) else None,
        "tool_call": {"name": call.name, "input": json.loads(call.answer.text)} if call else None,
        "usage": usage,
        "received_at": time.time(),
    }


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def _json_body(request: Request) -> dict[str, Any] | None:
    return parse_body(await request.body())


async def _health(_request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _unknown_path(request: Request, exc: Exception) -> Response:
    """A path (or method) no provider serves: a wrong base URL is refused, as the real ones refuse it."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return JSONResponse(unknown_path(request.method, request.url.path), status)
