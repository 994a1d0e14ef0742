"""Completing a gateway's Responses answers and stream events to the Open Responses specification.

Typed clients and validating SDKs refuse a response object that lacks any required field, and a stream event
without its `sequence_number`. A gateway may write only part of them; the rest is what the control plane knows:
the caller's request (echoed as the specification says a response reports its parameters), the time it saw
the answer, and the specification's own defaults for what nobody chose. Nothing else is made up: what nobody
knows is the specified null."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

# The response fields that report a request parameter: the type the parameter must have to be reported, and
# what the response says when the caller did not set it (the specification's default, or null).
_ECHOED: dict[str, tuple[tuple[type, ...], Any]] = {
    "previous_response_id": ((str,), None),
    "instructions": ((str, list), None),
    "tools": ((list,), []),
    "tool_choice": ((str, dict), "auto"),
    "truncation": ((str,), "disabled"),
    "parallel_tool_calls": ((bool,), True),
    "temperature": ((int, float), 1.0),
    "top_p": ((int, float), 1.0),
    "presence_penalty": ((int, float), 0.0),
    "frequency_penalty": ((int, float), 0.0),
    "top_logprobs": ((int,), 0),
    "user": ((str,), None),
    "max_output_tokens": ((int,), None),
    "max_tool_calls": ((int,), None),
    "store": ((bool,), True),
    "service_tier": ((str,), "default"),
    "metadata": ((dict,), {}),
    "safety_identifier": ((str,), None),
    "prompt_cache_key": ((str,), None),
}
# Whoever answers must say these; until it does they are null.
_NULL_UNTIL_TOLD = ("incomplete_details", "error", "usage")
# An output item's status when its writer left it out: what its response's status implies.
_ITEM_STATUS = {"completed": "completed", "incomplete": "incomplete", "failed": "incomplete"}
_ITEMS_WITH_STATUS = frozenset({"message", "function_call", "function_call_output"})
_TEXT_EVENTS = frozenset({"response.output_text.delta", "response.output_text.done"})


def request_echo(body: Mapping[str, Any]) -> dict[str, Any]:
    """The response fields a request decides, once per turn; `model` is the caller's, whatever the gateway
    says it ran (the gateway may name an agent or route rather than the model)."""
    echo = {name: _typed(body.get(name), types, default) for name, (types, default) in _ECHOED.items()}
    echo["tools"] = [_reported_tool(tool) for tool in echo["tools"]]
    text = body.get("text")
    echo["text"] = {"format": {"type": "text"}, **(text if isinstance(text, dict) else {})}
    reasoning = body.get("reasoning")
    echo["reasoning"] = (
        {key: reasoning.get(key) for key in ("effort", "summary")} if isinstance(reasoning, dict) else None
    )
    # The proxy answers while the turn runs: nothing runs in the background.
    echo["background"] = False
    if isinstance(body.get("model"), str):
        echo["model"] = body["model"]
    return echo


def complete_response(response: Mapping[str, Any], echo: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The gateway's response object with every required field (its output items completed in place); its own
    values win, except `model`. `completed_at` is `now` for a completed response the gateway did not date; a
    response still running has no usage yet (a gateway may write zeros there, which are no measurement)."""
    completed = {**echo, **response, "object": "response"}
    if "model" in echo:
        completed["model"] = echo["model"]
    status = completed.get("status")
    completed.setdefault("created_at", now)
    completed.setdefault("completed_at", now if status == "completed" else None)
    for name in _NULL_UNTIL_TOLD:
        completed.setdefault(name, None)
    if status in ("queued", "in_progress"):
        completed["usage"] = None
    item_status = _ITEM_STATUS.get(str(status), "in_progress")
    completed["output"] = [complete_item(item, item_status) for item in completed.get("output") or []]
    return completed


def complete_item(item: Any, status: str) -> Any:
    """An output item with a status (`status` when its writer gave none) and complete content parts."""
    if not isinstance(item, dict):
        return item
    if item.get("type") in _ITEMS_WITH_STATUS:
        item.setdefault("status", status)
    if item.get("type") == "message" and isinstance(item.get("content"), list):
        item["content"] = [complete_part(part) for part in item["content"]]
    return item


def complete_part(part: Any) -> Any:
    """A content part with the lists the specification requires even when empty (no citations, no log
    probabilities asked for)."""
    if isinstance(part, dict) and part.get("type") == "output_text":
        part.setdefault("annotations", [])
        part.setdefault("logprobs", [])
    return part


class StreamCompletion:
    """One stream's events made complete as they pass, in order: numbered from 0, the responses they carry
    completed, and the stream's own identity kept so a failure the proxy reports names the same response.

    A function call announced whole (its `output_item.added` already holding the arguments, as OpenClaw sends
    it) gets the events the specification streams its arguments with: the item is announced with empty
    arguments, then one `function_call_arguments.delta` and the `.done` follow it, so a client that accumulates
    deltas onto the announced item ends with the arguments once."""

    def __init__(self, echo: Mapping[str, Any], clock: Callable[[], float] = time.time) -> None:
        self._echo = echo
        self._clock = clock
        self._next_number = 0
        self._identity: dict[str, Any] = {}

    def complete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The event with its sequence number and the fields its type requires, and the events it implies."""
        implied = self._streamed_arguments(event)
        completed = [self._completed(event)]
        return completed + [self._completed(extra) for extra in implied]

    def _streamed_arguments(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if event.get("type") != "response.output_item.added" or not isinstance(item, dict):
            return []
        arguments = item.get("arguments")
        if item.get("type") != "function_call" or not isinstance(arguments, str) or not arguments:
            return []
        event["item"] = {**item, "arguments": ""}
        where = {"item_id": item.get("id"), "output_index": event.get("output_index")}
        return [
            {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
        ]

    def _completed(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("type")
        if isinstance(event.get("response"), dict):
            event["response"] = complete_response(event["response"], self._echo, self._now())
            self._identity = {key: event["response"][key] for key in ("id", "created_at") if key in event["response"]}
        if "item" in event:
            event["item"] = complete_item(
                event["item"], "in_progress" if kind == "response.output_item.added" else "completed"
            )
        if "part" in event:
            event["part"] = complete_part(event["part"])
        if kind in _TEXT_EVENTS:
            event.setdefault("logprobs", [])
        event["sequence_number"] = self._number()
        return event

    def failure(self, message: str) -> dict[str, Any]:
        """A `response.failed` event of the proxy's own, for a stream the gateway could not finish; it names
        the response the stream began (a new id when none had begun)."""
        response = {
            "id": f"resp_{uuid.uuid4().hex}",
            "created_at": self._now(),
            **self._identity,
            "status": "failed",
            "output": [],
            "error": {"code": "server_error", "message": message},
        }
        return {
            "type": "response.failed",
            "response": complete_response(response, self._echo, self._now()),
            "sequence_number": self._number(),
        }

    def _number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    def _now(self) -> int:
        return int(self._clock())


def _reported_tool(tool: Any) -> Any:
    """A function tool as a response reports it: its optional fields present, null when not given."""
    if isinstance(tool, dict) and tool.get("type") == "function":
        return {"description": None, "parameters": None, "strict": None, **tool}
    return tool


def _typed(value: Any, types: tuple[type, ...], default: Any) -> Any:
    """`value` when it has one of `types` (a bool is no number here), else `default`."""
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return value
    return copy.deepcopy(default)
