"""A gateway's answers as OpenClaw writes them (`tests/fakes/gateway_answers.py`: required fields left out, events
without sequence numbers), completed to the specification, checked strictly and by the official SDK's models."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from chowder.proxy.response_spec import StreamCompletion, complete_response, request_echo
from tests.fakes.gateway_answers import ANSWER, EVENTS, NOW, RESPONSE_ID, TEXT, TOOL_ANSWER, TOOL_EVENTS, USAGE
from tests.open_responses import response_problems, stream_problems

REQUEST = {
    "model": "claude-sonnet-4-20250514",
    "input": "hello there",
    "instructions": "Be brief.",
    "previous_response_id": "resp_earlier",
    "temperature": 0.2,
    "top_p": 0.9,
    "max_output_tokens": 200,
    "metadata": {"ticket": "42"},
    "reasoning": {"effort": "low"},
    "store": False,
}


def _stream(events: list[dict[str, Any]], request: dict[str, Any]) -> list[dict[str, Any]]:
    completion = StreamCompletion(request_echo(request), clock=lambda: NOW)
    return [completed for event in events for completed in completion.complete(copy.deepcopy(event))]


@pytest.mark.parametrize("answer", [ANSWER, TOOL_ANSWER], ids=["message", "function_call"])
@pytest.mark.parametrize("request_body", [{"model": "claude-x", "input": "hi"}, REQUEST], ids=["bare", "full"])
def test_an_answer_becomes_a_complete_response(answer: dict[str, Any], request_body: dict[str, Any]) -> None:
    completed = complete_response(copy.deepcopy(answer), request_echo(request_body), NOW)
    assert response_problems(completed) == []
    assert Response.model_validate(completed).model == request_body["model"]
    assert completed["usage"] == USAGE and completed["created_at"] == NOW - 2 and completed["completed_at"] == NOW
    assert all(item["status"] == "completed" for item in completed["output"])


def test_what_the_gateway_leaves_out_is_filled_from_the_request_or_the_specified_default() -> None:
    completed = complete_response(copy.deepcopy(ANSWER), request_echo(REQUEST), NOW)
    for name in ("instructions", "previous_response_id", "temperature", "top_p", "max_output_tokens", "metadata"):
        assert completed[name] == REQUEST[name], name
    assert completed["reasoning"] == {"effort": "low", "summary": None}
    assert completed["store"] is False and completed["background"] is False
    bare = complete_response(copy.deepcopy(ANSWER), request_echo({"model": "m", "input": "hi"}), NOW)
    nulls = ("instructions", "previous_response_id", "error", "incomplete_details", "user", "max_output_tokens")
    assert [bare[name] for name in nulls] == [None] * len(nulls)
    assert (bare["tools"], bare["tool_choice"], bare["temperature"], bare["metadata"]) == ([], "auto", 1.0, {})
    assert bare["output"][0]["content"][0] == {"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}


def test_a_caller_value_of_the_wrong_type_is_not_reported_as_used() -> None:
    echo = request_echo({"model": "m", "input": "x", "temperature": True, "tools": "all", "top_logprobs": 1.5})
    assert (echo["temperature"], echo["tools"], echo["top_logprobs"]) == (1.0, [], 0)


def test_what_the_gateway_says_wins_over_the_request_except_the_model() -> None:
    incomplete = {**ANSWER, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    del incomplete["output"][0]["status"]
    completed = complete_response(copy.deepcopy(incomplete), request_echo(REQUEST), NOW)
    assert response_problems(completed) == []
    assert completed["incomplete_details"] == {"reason": "max_output_tokens"} and completed["completed_at"] is None
    assert completed["output"][0]["status"] == "incomplete" and completed["model"] == REQUEST["model"]


@pytest.mark.parametrize("request_body", [{"model": "claude-x", "input": "hi", "stream": True}, REQUEST])
def test_every_streamed_event_is_complete_and_numbered_from_zero(request_body: dict[str, Any]) -> None:
    events = _stream(EVENTS, request_body)
    assert stream_problems(events) == []
    sdk = TypeAdapter(ResponseStreamEvent)
    assert [sdk.validate_python(event).sequence_number for event in events] == list(range(len(EVENTS)))
    created, completed = events[0]["response"], events[-1]["response"]
    assert created["usage"] is None and created["completed_at"] is None, "no measurement before the turn ran"
    assert completed["usage"] == USAGE and completed["completed_at"] == NOW
    assert {e["response"]["model"] for e in (events[0], events[1], events[-1])} == {request_body["model"]}


def test_a_function_call_announced_whole_gets_its_argument_events() -> None:
    """OpenClaw announces a client tool call with its arguments and sends no argument events; the stream then
    carries them as the specification does, and a client accumulating deltas ends with the arguments once."""
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    events = _stream(TOOL_EVENTS, {**REQUEST, "tools": tools})
    assert stream_problems(events) == []
    sdk = TypeAdapter(ResponseStreamEvent)
    assert [sdk.validate_python(event).sequence_number for event in events] == list(range(len(TOOL_EVENTS) + 2))
    kinds = [event["type"] for event in events]
    added = kinds.index("response.output_item.added", 3)
    assert kinds[added : added + 4] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    call = TOOL_ANSWER["output"][0]
    announced, delta, done, finished = events[added : added + 4]
    assert (announced["item"]["arguments"], announced["item"]["status"]) == ("", "in_progress")
    assert announced["item"]["arguments"] + delta["delta"] == done["arguments"] == call["arguments"]
    assert delta["item_id"] == done["item_id"] == call["id"] and delta["output_index"] == 1
    assert finished["item"]["arguments"] == call["arguments"] and finished["item"]["status"] == "completed"
    assert events[-1]["response"]["tools"] == [{**tools[0], "description": None, "strict": None}]


def test_a_function_call_announced_empty_passes_as_it_is() -> None:
    """A gateway that streams the arguments itself is not given a second copy."""
    call = {**TOOL_ANSWER["output"][0], "arguments": ""}
    events = _stream([{"type": "response.output_item.added", "output_index": 1, "item": call}], REQUEST)
    assert [event["type"] for event in events] == ["response.output_item.added"]


def test_the_proxys_own_failure_names_the_response_the_stream_began() -> None:
    completion = StreamCompletion(request_echo(REQUEST), clock=lambda: NOW)
    events = [completed for event in EVENTS[:5] for completed in completion.complete(copy.deepcopy(event))]
    events.append(completion.failure("The gateway connection was lost mid-stream."))
    assert stream_problems(events) == []
    failed = TypeAdapter(ResponseStreamEvent).validate_python(events[-1])
    assert failed.type == "response.failed" and failed.response.id == RESPONSE_ID
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    assert events[-1]["response"]["created_at"] == NOW - 2


def test_a_failure_before_any_event_is_still_a_complete_failed_response() -> None:
    failure = StreamCompletion(request_echo(REQUEST), clock=lambda: NOW).failure("lost")
    assert stream_problems([failure]) == []
    assert failure["response"]["id"].startswith("resp_") and failure["response"]["created_at"] == NOW


def test_the_checker_catches_what_the_gateway_leaves_out() -> None:
    """The strict check is no rubber stamp: the raw answers and events fail it."""
    assert "$.completed_at: Field required" in response_problems(ANSWER)
    assert any(p.endswith("OutputTextContent.annotations: Field required") for p in response_problems(ANSWER))
    assert "event 0.sequence_number: Field required" in stream_problems(json.loads(json.dumps(EVENTS)))
