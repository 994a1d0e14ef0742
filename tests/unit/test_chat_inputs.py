"""Standard Responses inputs translated to OpenClaw's forms, and refused with the limit they break.

The forms are those the official `openai` SDK and the Open Responses compliance suite send; what OpenClaw takes
is its endpoint's strict schema (2026.9: `source` images and files, no unknown keys, string tool outputs)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chowder.core.errors import BadRequest, PayloadTooLarge
from chowder.runtime.openclaw.chat_inputs import FILE_LIMITS, IMAGE_LIMITS, gateway_body
from chowder.runtime.openclaw.config import responses_endpoint
from tests.compliance import RED_HEART_PNG

MIB = 1024 * 1024


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"model": "m", "input": [{"type": "message", "role": "user", "content": list(parts)}]}


def _parts(body: dict[str, Any]) -> list[Any]:
    content: list[Any] = gateway_body(body)["input"][0]["content"]
    return content


def _data(size: int) -> str:
    return base64.b64encode(b"\0" * size).decode()


def test_a_string_input_and_openclaws_own_forms_pass_as_they_are() -> None:
    assert gateway_body({"model": "m", "input": "hi", "stream": True}) == {"model": "m", "input": "hi", "stream": True}
    own = {"type": "input_image", "source": {"type": "base64", "media_type": "image/png", "data": RED_HEART_PNG}}
    assert _parts(_user(own)) == [own]


def test_an_image_data_url_becomes_a_base64_source_without_detail() -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{RED_HEART_PNG}", "detail": "auto"}
    text = {"type": "input_text", "text": "What do you see?"}
    assert _parts(_user(text, image)) == [
        text,
        {"type": "input_image", "source": {"type": "base64", "media_type": "image/png", "data": RED_HEART_PNG}},
    ]


def test_an_image_url_is_fetched_by_the_gateway() -> None:
    image = {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "high"}
    assert _parts(_user(image)) == [
        {"type": "input_image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    ]


def test_files_as_data_urls_raw_base64_and_urls() -> None:
    data = base64.b64encode(b"# Recipe\nclams").decode()
    as_url = {"type": "input_file", "filename": "r.md", "file_data": f"data:text/markdown;charset=utf-8;base64,{data}"}
    raw = {"type": "input_file", "filename": "notes.TXT", "file_data": data}
    remote = {"type": "input_file", "file_url": "https://example.com/a.pdf"}
    assert _parts(_user(as_url, raw, remote)) == [
        {
            "type": "input_file",
            "source": {"type": "base64", "media_type": "text/markdown;charset=utf-8", "data": data, "filename": "r.md"},
        },
        {
            "type": "input_file",
            "source": {"type": "base64", "media_type": "text/plain", "data": data, "filename": "notes.TXT"},
        },
        {"type": "input_file", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ]


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (
            {"type": "input_image", "image_url": "data:image/bmp;base64,Qk0="},
            "input_image of type 'image/bmp' is not accepted; send one of image/jpeg, image/png,",
        ),
        ({"type": "input_image", "image_url": "file:///etc/passwd"}, "input_image takes an https URL or a base64"),
        ({"type": "input_image", "image_url": "data:image/png;base64,***"}, "input_image data is not valid base64."),
        ({"type": "input_image", "file_id": "file-1"}, "input_image by file_id is not supported"),
        ({"type": "input_image"}, "input_image needs its image as an https URL or a data URL."),
        (
            {"type": "input_file", "file_data": "data:application/zip;base64,UEs="},
            "input_file of type 'application/zip' is not accepted; send one of text/plain,",
        ),
        ({"type": "input_file", "file_data": "aGk=", "filename": "x.exe"}, "input_file needs its type"),
        ({"type": "input_audio", "input_audio": {}}, "Content parts of type 'input_audio' are not supported"),
    ],
)
def test_an_input_of_the_wrong_type_or_form_is_refused_by_name(part: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        gateway_body(_user(part))
    assert str(refused.value.detail).startswith(message), refused.value.detail


def test_an_image_or_file_over_its_limit_is_413_naming_the_limit() -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{_data(IMAGE_LIMITS.max_bytes + 1)}"}
    with pytest.raises(PayloadTooLarge) as refused:
        gateway_body(_user(image))
    assert refused.value.detail == "input_image is 10.0 MiB; the limit is 10 MiB per image."
    file = {"type": "input_file", "file_data": f"data:text/plain;base64,{_data(6 * MIB)}"}
    with pytest.raises(PayloadTooLarge) as refused:
        gateway_body(_user(file))
    assert refused.value.detail == "input_file is 6.0 MiB; the limit is 5 MiB per file."


def test_a_request_over_the_gateways_body_limit_is_413() -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{_data(9 * MIB)}"}
    with pytest.raises(PayloadTooLarge) as refused:
        gateway_body(_user(image, image))
    assert "over 20 MiB, the gateway's limit for one request" in refused.value.detail


def test_more_than_eight_urls_are_refused() -> None:
    image = {"type": "input_image", "image_url": "https://example.com/i.png"}
    assert len(_parts(_user(*[image] * 8))) == 8
    with pytest.raises(BadRequest) as refused:
        gateway_body(_user(*[image] * 9))
    assert refused.value.detail == "At most 8 images and files by URL per request; send the rest as data."


def test_history_sent_back_as_the_answer_gave_it_is_accepted() -> None:
    """A client keeping its own history appends the answer's output (annotations, logprobs, ids, statuses) and
    easy messages without `type`; reasoning items and references, which OpenClaw ignores, are left out."""
    answer = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "phase": "final_answer",
        "content": [{"type": "output_text", "text": "Hello Alice!", "annotations": [], "logprobs": []}],
    }
    call = {
        "type": "function_call",
        "id": "call_1",
        "call_id": "c1",
        "name": "f",
        "arguments": "{}",
        "status": "completed",
    }
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "My name is Alice."},
            answer,
            {"type": "reasoning", "id": "rs_1", "summary": []},
            call,
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "72F"}]},
            {"type": "item_reference", "id": "msg_0"},
            {"type": "message", "role": "user", "content": [{"type": "refusal", "refusal": "no"}]},
        ],
    }
    assert gateway_body(body)["input"] == [
        {"type": "message", "role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": "My name is Alice."},
        {**answer, "content": [{"type": "output_text", "text": "Hello Alice!"}]},
        call,
        {"type": "function_call_output", "call_id": "c1", "output": "72F"},
        {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "no"}]},
    ]


def test_function_tools_keep_only_what_openclaw_knows_and_other_tools_are_refused() -> None:
    tool = {"type": "function", "name": "get_weather", "description": None, "parameters": {"type": "object"}, "x": 1}
    assert gateway_body({"model": "m", "input": "x", "tools": [tool]})["tools"] == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    with pytest.raises(BadRequest) as refused:
        gateway_body({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})
    assert refused.value.detail == "Tools of type 'web_search' are not supported; send function tools."
    with pytest.raises(BadRequest):
        gateway_body({"model": "m", "input": "x", "tool_choice": {"type": "allowed_tools", "tools": []}})


def test_a_tool_output_with_an_image_is_refused() -> None:
    output = [{"type": "input_image", "image_url": "https://example.com/i.png"}]
    with pytest.raises(BadRequest) as refused:
        gateway_body({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": output}]})
    assert refused.value.detail == "function_call_output takes text only; send images and files in a message."


def test_parameters_openclaw_ignores_are_not_forwarded_and_unsupported_ones_refused() -> None:
    advisory = {
        "reasoning": {"effort": "minimal"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "service_tier": "auto",
        "background": False,
    }
    forwarded = gateway_body(
        {
            "model": "m",
            "input": "x",
            "instructions": [{"role": "system", "content": "A"}],
            "temperature": 0.3,
            **advisory,
        }
    )
    assert forwarded == {"model": "m", "input": "x", "instructions": "A", "temperature": 0.3}
    with pytest.raises(BadRequest) as refused:
        gateway_body({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}})
    assert refused.value.detail == "text.format 'json_schema' is not supported; the agent answers in text."
    with pytest.raises(BadRequest):
        gateway_body({"model": "m", "input": "x", "background": True})


def test_the_gateway_is_configured_with_the_limits_checked_here() -> None:
    endpoint = responses_endpoint()
    for limits in (IMAGE_LIMITS, FILE_LIMITS):
        assert endpoint[limits.kind] == {"maxBytes": limits.max_bytes, "allowedMimes": list(limits.media_types)}
