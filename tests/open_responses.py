"""A strict check of Responses answers and stream events against the Open Responses specification: every
required field present with its type (the `required` lists and property types of the Open Responses OpenAPI
document, `openresponses/openresponses` `public/openapi/openapi.json`), and sequence numbers counting from 0.

A schema here is a type or tuple of types (`int` never accepts a bool), a set of allowed strings, a dict of
required fields, a one-element list (an array of that), `Nullable(schema)`, or `ByType` (objects told apart by
their `type`). Unknown output item and event types are problems: a new one needs its schema written here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Schema = Any
NUMBER = (int, float)


@dataclass(frozen=True)
class Nullable:
    schema: Schema


@dataclass(frozen=True)
class ByType:
    kinds: dict[str, Schema]


def problems(value: Any, schema: Schema, where: str = "$") -> list[str]:
    """What keeps `value` from matching `schema`, one line each; empty when it matches."""
    if isinstance(schema, Nullable):
        return [] if value is None else problems(value, schema.schema, where)
    if isinstance(schema, ByType):
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in schema.kinds:
            return [f"{where}: unknown type {kind!r}"]
        return problems(value, schema.kinds[kind], where)
    if isinstance(schema, (set, frozenset)):
        return [] if value in schema else [f"{where}: {value!r} is not one of {sorted(schema)}"]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r}"]
        found = [f"{where}.{key}: missing" for key in schema if key not in value]
        for key, sub in schema.items():
            if key in value:
                found += problems(value[key], sub, f"{where}.{key}")
        return found
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {value!r}"]
        return [p for i, v in enumerate(value) for p in problems(v, schema[0], f"{where}[{i}]")]
    types = schema if isinstance(schema, tuple) else (schema,)
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        return [f"{where}: expected {' or '.join(t.__name__ for t in types)}, got {value!r}"]
    return []


OUTPUT_TEXT = {"type": {"output_text"}, "text": str, "annotations": [dict], "logprobs": [dict]}
REFUSAL = {"type": {"refusal"}, "refusal": str}
PART = ByType({"output_text": OUTPUT_TEXT, "refusal": REFUSAL})
ITEM_STATUS = {"in_progress", "completed", "incomplete"}
MESSAGE = {"type": {"message"}, "id": str, "status": ITEM_STATUS, "role": {"assistant"}, "content": [PART]}
FUNCTION_CALL = {
    "type": {"function_call"},
    "id": str,
    "call_id": str,
    "name": str,
    "arguments": str,
    "status": ITEM_STATUS,
}
REASONING = {"type": {"reasoning"}, "id": str, "summary": [dict]}
ITEM = ByType({"message": MESSAGE, "function_call": FUNCTION_CALL, "reasoning": REASONING})
USAGE = {
    "input_tokens": int,
    "output_tokens": int,
    "total_tokens": int,
    "input_tokens_details": {"cached_tokens": int},
    "output_tokens_details": {"reasoning_tokens": int},
}
RESPONSE = {
    "id": str,
    "object": {"response"},
    "created_at": int,
    "completed_at": Nullable(int),
    "status": {"queued", "in_progress", "completed", "failed", "incomplete"},
    "incomplete_details": Nullable({"reason": str}),
    "model": str,
    "previous_response_id": Nullable(str),
    "instructions": Nullable((str, list)),
    "output": [ITEM],
    "error": Nullable({"code": str, "message": str}),
    "tools": [dict],
    "tool_choice": (str, dict),
    "truncation": {"auto", "disabled"},
    "parallel_tool_calls": bool,
    "text": {"format": dict},
    "top_p": NUMBER,
    "presence_penalty": NUMBER,
    "frequency_penalty": NUMBER,
    "top_logprobs": int,
    "temperature": NUMBER,
    "reasoning": Nullable({"effort": Nullable(str), "summary": Nullable(str)}),
    "user": Nullable(str),
    "usage": Nullable(USAGE),
    "max_output_tokens": Nullable(int),
    "max_tool_calls": Nullable(int),
    "store": bool,
    "background": bool,
    "service_tier": str,
    "metadata": dict,
    "safety_identifier": Nullable(str),
    "prompt_cache_key": Nullable(str),
}
_IN_ITEM = {"sequence_number": int, "item_id": str, "output_index": int}
_IN_PART = {**_IN_ITEM, "content_index": int}
EVENT = ByType(
    {
        **{
            f"response.{kind}": {"type": str, "sequence_number": int, "response": RESPONSE}
            for kind in ("created", "queued", "in_progress", "completed", "failed", "incomplete")
        },
        **{
            f"response.output_item.{kind}": {"type": str, "sequence_number": int, "output_index": int, "item": ITEM}
            for kind in ("added", "done")
        },
        **{f"response.content_part.{kind}": {"type": str, **_IN_PART, "part": PART} for kind in ("added", "done")},
        "response.output_text.delta": {"type": str, **_IN_PART, "delta": str, "logprobs": [dict]},
        "response.output_text.done": {"type": str, **_IN_PART, "text": str, "logprobs": [dict]},
        "response.function_call_arguments.delta": {"type": str, **_IN_ITEM, "delta": str},
        "response.function_call_arguments.done": {"type": str, **_IN_ITEM, "arguments": str},
        "error": {
            "type": str,
            "sequence_number": int,
            "error": {"type": str, "code": Nullable(str), "message": str, "param": Nullable(str)},
        },
    }
)


def response_problems(response: Any) -> list[str]:
    return problems(response, RESPONSE)


def stream_problems(events: Iterable[Any]) -> list[str]:
    """Each event's problems, and any sequence number out of 0, 1, 2, …"""
    found = []
    for number, event in enumerate(events):
        found += problems(event, EVENT, f"event {number}")
        if isinstance(event, dict) and event.get("sequence_number") != number:
            found.append(f"event {number}: sequence_number {event.get('sequence_number')!r}, expected {number}")
    return found
