"""The built-in echo model: a deterministic stand-in for a model provider, speaking OpenAI Chat Completions,
OpenAI Responses and Anthropic Messages, streaming or not. `chowder serve --dev-model` answers every model call
with it (no provider key needed), and the tests' fake upstream (`tests/fakes/model_server.py`) serves it too.

The reply echoes what the model was shown, so memory and session isolation can be seen from the text alone:

    ECHO[<model>] turns=<user msgs> msgs=<user+assistant msgs> last=<last user text> history=<earlier|user|texts>

The user texts are the user's own words, without what the calling agent wrapped around them; which wrappers those
are is the agent runtime's knowledge, passed in as `UserWords` (`AgentRuntime.user_words`).

Usage is word-counted: input tokens are the whitespace-separated words of every system, user and assistant text
in the request (as sent, wrappers included); output tokens are the words of the reply.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

WireProtocol = Literal["chat", "responses", "anthropic"]
Event = tuple[str | None, dict[str, Any] | str]
# The user's own words in a user message's text, without what the calling agent wrapped around them.
UserWords = Callable[[str], str]

TEXT_PART_TYPES = {"text", "input_text", "output_text"}
SYSTEM_ROLES = {"system", "developer"}


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


def parse_conversation(protocol: WireProtocol, body: dict[str, Any], user_words: UserWords) -> Conversation:
    """Only user and assistant turns count; a user message left without words (tool results, context the agent
    injected) is not a turn, but its raw text still counts toward input tokens."""
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


def answer(protocol: WireProtocol, body: dict[str, Any], user_words: UserWords, pieces: int = 3) -> Answer:
    conversation = parse_conversation(protocol, body, user_words)
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


# --- Requests and whole answers ------------------------------------------------------------------------------


def protocol_for(path: str) -> WireProtocol | None:
    """The protocol of a model call, told by its path's suffix (e.g. `/anthropic/v1/messages`,
    `/openai/v1/responses`, Gemini's `/v1beta/openai/chat/completions`)."""
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/messages"):
        return "anthropic"
    return None


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """A request body that is a JSON object, or None."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def wants_stream(body: dict[str, Any]) -> bool:
    return body.get("stream") is True


def json_answer(protocol: WireProtocol, a: Answer) -> dict[str, Any]:
    """The whole answer as one JSON document, for a request that did not ask to stream."""
    if protocol == "chat":
        return chat_completion(a)
    if protocol == "responses":
        return response_object(a, _new_id("resp_"), _new_id("msg_"), done=True)
    return _anthropic_message(a, _new_id("msg_"), done=True)


def sse_answer(protocol: WireProtocol, body: dict[str, Any], a: Answer) -> Iterator[bytes]:
    """The answer as the protocol's server-sent events, one encoded event per item."""
    if protocol == "chat":
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return encode_sse(chat_events(a, include_usage), numbered=False)
    if protocol == "responses":
        return encode_sse(responses_events(a), numbered=True)
    return encode_sse(anthropic_events(a), numbered=False)
