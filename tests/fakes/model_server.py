"""A deterministic fake model provider for tests (runtime doc, section 11).

One loopback port speaks OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, streaming or not, so a
real OpenClaw gateway (and the control plane's model proxy in front of it) can be driven offline. Routes match on
the path's suffix, because the control plane forwards e.g. `/anthropic/v1/messages` or `/openai/v1/responses`
with their prefix, and Gemini's OpenAI-compatible path is `/v1beta/openai/chat/completions`.

The reply echoes what the model was shown, so a test can check memory and isolation from the text alone:

    ECHO[<model>] turns=<user msgs> msgs=<user+assistant msgs> last=<last user text> history=<earlier|user|texts>

Usage is word-counted: input tokens are the whitespace-separated words of every system, user and assistant text
in the request (as sent, wrappers included); output tokens are the words of the reply.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WireProtocol = Literal["chat", "responses", "anthropic"]
Event = tuple[str | None, dict[str, Any] | str]

INTERNAL_CONTEXT = re.compile(
    r"<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>.*?(?:<<<END_OPENCLAW_INTERNAL_CONTEXT>>>|\Z)", re.DOTALL
)
# OpenClaw prefixes user text with e.g. "[Mon 2026-11-23 00:22 UTC] "; requiring a date keeps "[x] y" intact.
TIMESTAMP_PREFIX = re.compile(r"^\[[^\]\n]*\d{4}-\d{2}-\d{2}[^\]\n]*\] ")
RUNTIME_SUFFIX = "\n\nRuntime:"
TEXT_PART_TYPES = {"text", "input_text", "output_text"}
SYSTEM_ROLES = {"system", "developer"}
DEFAULT_MODELS = ("fake-model", "fake-model-b")


# --- Parsing and the deterministic answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """What the model was shown: raw texts for usage, cleaned user words for the reply."""

    system: list[str]
    messages: list[tuple[str, str]]  # (role, raw text), user and assistant only, in order
    user_texts: list[str]  # cleaned; one per user turn

    @property
    def assistant_count(self) -> int:
        return sum(1 for role, _ in self.messages if role == "assistant")


@dataclass(frozen=True)
class Answer:
    model: str
    text: str
    pieces: list[str]
    input_tokens: int
    output_tokens: int
    created: int = field(default_factory=lambda: int(time.time()))


def count_words(text: str) -> int:
    return len(text.split())


def text_of(content: Any) -> str:
    """A string, or the text/input_text/output_text parts of a list joined by newlines; tool blocks are skipped."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in TEXT_PART_TYPES]
    return "\n".join(p for p in parts if isinstance(p, str))


def user_words(raw: str) -> str:
    """Drop the injected internal context, OpenClaw's `[<timestamp>] ` prefix and its `\\n\\nRuntime:` trailer."""
    text = INTERNAL_CONTEXT.sub("", raw).split(RUNTIME_SUFFIX, 1)[0].strip()
    return TIMESTAMP_PREFIX.sub("", text, count=1).strip()


def _role_items(protocol: WireProtocol, body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Top-level system texts and the role-bearing items, wherever the protocol keeps them."""
    system: list[str] = []
    if protocol == "anthropic" and body.get("system"):
        system.append(text_of(body["system"]))
    if protocol == "responses":
        if isinstance(body.get("instructions"), str):
            system.append(body["instructions"])
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
    else:
        items = body.get("messages")
    return system, [item for item in items or [] if isinstance(item, dict) and "role" in item]


def parse_conversation(protocol: WireProtocol, body: dict[str, Any]) -> Conversation:
    """Only user and assistant turns count; a user message left empty by cleaning (tool results, the internal
    context) is not a turn, but its raw text still counts toward input tokens."""
    system, items = _role_items(protocol, body)
    messages: list[tuple[str, str]] = []
    user_texts: list[str] = []
    for item in items:
        role, raw = item["role"], text_of(item.get("content"))
        if role in SYSTEM_ROLES:
            system.append(raw)
        elif role in ("user", "assistant"):
            messages.append((role, raw))
            if role == "user" and (words := user_words(raw)):
                user_texts.append(words)
    return Conversation(system=system, messages=messages, user_texts=user_texts)


def reply_text(model: str, conversation: Conversation) -> str:
    users = conversation.user_texts
    return (
        f"ECHO[{model}] turns={len(users)} msgs={len(users) + conversation.assistant_count} "
        f"last={users[-1] if users else ''} history={'|'.join(users[:-1])}"
    )


def split_pieces(text: str, pieces: int) -> list[str]:
    """Several deltas, so clients that only handle one chunk fail; joined they are exactly `text`."""
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def answer(protocol: WireProtocol, body: dict[str, Any], pieces: int = 3) -> Answer:
    conversation = parse_conversation(protocol, body)
    model = str(body.get("model", ""))
    text = reply_text(model, conversation)
    prompt = conversation.system + [raw for _, raw in conversation.messages]
    return Answer(model, text, split_pieces(text, pieces), sum(map(count_words, prompt)), count_words(text))


# --- Wire formats --------------------------------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def chat_events(a: Answer, include_usage: bool) -> Iterator[Event]:
    base = {"id": _new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": a.created, "model": a.model}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

    yield None, chunk({"role": "assistant", "content": ""})
    for piece in a.pieces:
        yield None, chunk({"content": piece})
    yield None, chunk({}, "stop")
    if include_usage:
        yield None, {**base, "choices": [], "usage": _chat_usage(a)}
    yield None, "[DONE]"


def _chat_usage(a: Answer) -> dict[str, int]:
    return {"prompt_tokens": a.input_tokens, "completion_tokens": a.output_tokens, "total_tokens": _total(a)}


def _total(a: Answer) -> int:
    return a.input_tokens + a.output_tokens


def chat_completion(a: Answer) -> dict[str, Any]:
    message = {"role": "assistant", "content": a.text}
    return {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": a.created,
        "model": a.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": _chat_usage(a),
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _message_item(item_id: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [_output_text(text)]
    status = "in_progress" if text is None else "completed"
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def response_object(a: Answer, resp_id: str, item_id: str, done: bool) -> dict[str, Any]:
    usage = {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": _total(a),
    }
    return {
        "id": resp_id,
        "object": "response",
        "created_at": a.created,
        "status": "completed" if done else "in_progress",
        "model": a.model,
        "output": [_message_item(item_id, a.text)] if done else [],
        "usage": usage if done else None,
        "error": None,
        "incomplete_details": None,
    }


def responses_events(a: Answer) -> Iterator[Event]:
    """OpenClaw's own sequence (runtime doc 6.2) minus `[DONE]`; `type`/`sequence_number` are added on sending."""
    resp_id, item_id = _new_id("resp_"), _new_id("msg_")
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    yield "response.created", {"response": response_object(a, resp_id, item_id, done=False)}
    yield "response.in_progress", {"response": response_object(a, resp_id, item_id, done=False)}
    yield "response.output_item.added", {"output_index": 0, "item": _message_item(item_id, None)}
    yield "response.content_part.added", {**where, "part": _output_text("")}
    for piece in a.pieces:
        yield "response.output_text.delta", {**where, "delta": piece, "logprobs": []}
    yield "response.output_text.done", {**where, "text": a.text, "logprobs": []}
    yield "response.content_part.done", {**where, "part": _output_text(a.text)}
    yield "response.output_item.done", {"output_index": 0, "item": _message_item(item_id, a.text)}
    yield "response.completed", {"response": response_object(a, resp_id, item_id, done=True)}


def _anthropic_message(a: Answer, msg_id: str, done: bool) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [{"type": "text", "text": a.text}] if done else [],
        "stop_reason": "end_turn" if done else None,
        "stop_sequence": None,
        "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens if done else 0},
    }


def anthropic_events(a: Answer) -> Iterator[Event]:
    yield "message_start", {"message": _anthropic_message(a, _new_id("msg_"), done=False)}
    yield "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
    yield "ping", {}
    for piece in a.pieces:
        yield "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
    yield "content_block_stop", {"index": 0}
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    yield "message_delta", {"delta": delta, "usage": {"output_tokens": a.output_tokens}}
    yield "message_stop", {}


def encode_sse(events: Iterator[Event], numbered: bool) -> Iterator[bytes]:
    """Named events also carry `type` in the data (both APIs do); Responses events also a `sequence_number`."""
    for seq, (name, data) in enumerate(events):
        if isinstance(data, dict) and name is not None:
            data = {"type": name, **({"sequence_number": seq} if numbered else {}), **data}
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        yield (f"event: {name}\n" if name else "").encode() + f"data: {payload}\n\n".encode()


OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached."),
}
ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Forbidden."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request too large."),
    429: ("rate_limit_error", "Rate limited."),
    529: ("overloaded_error", "Overloaded."),
}


def error_body(protocol: WireProtocol, status: int) -> dict[str, Any]:
    """The error shape each provider's SDK parses; unknown statuses fall back to api_error/server_error."""
    if protocol == "anthropic":
        kind, message = ANTHROPIC_ERRORS.get(status, ("api_error", f"fake failure (HTTP {status})"))
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind, code, message = OPENAI_ERRORS.get(status, ("server_error", None, f"fake failure (HTTP {status})"))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


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


def protocol_for(path: str) -> WireProtocol | None:
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/messages"):
        return "anthropic"
    return None


def presented_key(protocol: WireProtocol, headers: dict[str, str]) -> str | None:
    """Anthropic authenticates with `x-api-key`; OpenAI and Gemini's compatible API with a bearer token."""
    if protocol == "anthropic":
        return headers.get("x-api-key")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


class FakeModelServer:
    """Serve the fake on 127.0.0.1 from a background thread; use as `with FakeModelServer() as fake: fake.url`.

    Knobs are plain attributes, settable while running and read once as each request arrives:
    `delay_s` (sleep before answering), `fail_status` (answer that status with the protocol's error body),
    `required_key` (401 unless the protocol's credential matches), `stream_interval_s` (sleep between events).
    """

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
        self.delay_s = delay_s
        self.fail_status = fail_status
        self.required_key = required_key
        self.stream_interval_s = stream_interval_s
        self.pieces = pieces
        self.models = models
        self.requests = RequestLog(log_path)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> FakeModelServer:
        """Bind an ephemeral port ourselves (so `port` is known at once) and return once uvicorn is serving."""
        if self._server is not None:
            raise RuntimeError("fake model server already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            log_config=None,  # never reconfigure the test process's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._stopping.clear()
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-model", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Waits (delays, stream pacing) end at once, so in-flight requests finish within a tick; forced after 3 s."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=3)
        self._server = self._thread = None

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST"])])

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        protocol = protocol_for(path)
        if request.method == "POST" and protocol is not None:
            return await self._model_call(request, protocol)
        if request.method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            return JSONResponse({"object": "list", "data": data})
        if request.method == "GET" and path.endswith("/health"):
            return JSONResponse({"ok": True})
        return JSONResponse({"error": {"message": f"no route {request.method} {path}", "type": "not_found"}}, 404)

    async def _model_call(self, request: Request, protocol: WireProtocol) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await _json_body(request)
        delay, interval = self.delay_s, self.stream_interval_s
        status = self._refusal(protocol, headers, body)
        result = answer(protocol, body, self.pieces) if status is None and body is not None else None
        self.requests.append(_record(request.url.path, headers, body, protocol, status, result))
        if not await self._pause(delay):
            return JSONResponse(error_body(protocol, 503), 503)
        if body is None or result is None:
            return JSONResponse(error_body(protocol, status or 400), status or 400)
        return self._render(protocol, body, result, interval)

    async def _pause(self, seconds: float) -> bool:
        """Sleep in short steps so `stop()` is not held up by a long delay; False if the server is stopping."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))
        return not self._stopping.is_set()

    async def _paced(self, events: Iterator[bytes], interval: float) -> AsyncIterator[bytes]:
        """Each event is its own ASGI body message, so uvicorn writes (flushes) it before the next one; a stop
        ends the stream early (the client sees it cut short, as with a real provider going away)."""
        for event in events:
            yield event
            if not await self._pause(interval):
                return

    def _refusal(self, protocol: WireProtocol, headers: dict[str, str], body: dict[str, Any] | None) -> int | None:
        """The error status to answer with, if any: `fail_status` wins over a key mismatch, which wins over 400."""
        if self.fail_status is not None:
            return self.fail_status
        if self.required_key is not None and presented_key(protocol, headers) != self.required_key:
            return 401
        return 400 if body is None else None

    def _render(self, protocol: WireProtocol, body: dict[str, Any], result: Answer, interval: float) -> Response:
        if body.get("stream") is not True:
            payloads = {"chat": chat_completion, "responses": _responses_json, "anthropic": _anthropic_json}
            return JSONResponse(payloads[protocol](result))
        if protocol == "chat":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = encode_sse(chat_events(result, include_usage), numbered=False)
        elif protocol == "responses":
            events = encode_sse(responses_events(result), numbered=True)
        else:
            events = encode_sse(anthropic_events(result), numbered=False)
        return StreamingResponse(
            self._paced(events, interval), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )


def _responses_json(a: Answer) -> dict[str, Any]:
    return response_object(a, _new_id("resp_"), _new_id("msg_"), done=True)


def _anthropic_json(a: Answer) -> dict[str, Any]:
    return _anthropic_message(a, _new_id("msg_"), done=True)


def _record(
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    protocol: WireProtocol,
    status: int | None,
    result: Answer | None,
) -> dict[str, Any]:
    """One entry of `FakeModelServer.requests`, logged on arrival: `status` is the answer decided then (a `stop()`
    during the delay answers 503 instead); `reply` and `usage` are None for refused requests."""
    return {
        "path": path,
        "headers": headers,
        "body": body,
        "protocol": protocol,
        "model": body.get("model") if body else None,
        "stream": bool(body and body.get("stream") is True),
        "status": status or 200,
        "reply": result.text if result else None,
        "usage": {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens} if result else None,
        "received_at": time.time(),
    }


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
