"""A Responses request in the standard forms, as OpenClaw's endpoint takes it.

OpenClaw validates its input strictly and in its own dialect: an image or file is a `source` (`url` or `base64`
with `media_type`), a content part or item has no field it does not know (the `annotations` of an answer's text
sent back as history, a tool's `strict: null`), a message names its `type`, and a tool's output is a string. The
standard forms (`image_url` as an https or data URL with `detail`, `file_data`/`file_url`/`filename`, easy
messages without `type`, `refusal` parts, output lists) are translated here; OpenClaw's own forms pass as they
are. Images and files are checked against the limits the gateway is configured with (`config.responses_endpoint`),
so a refusal says which limit, instead of the gateway's bare `invalid request`.

Parameters OpenClaw ignores, or refuses only for their unfamiliar values (`reasoning.effort: "minimal"`), are not
forwarded; the answer still reports them as asked (`proxy.response_spec`)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chowder.core.errors import BadRequest, PayloadTooLarge
from chowder.core.settings import MIB


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """What the gateway accepts of one kind of input part (`gateway.http.endpoints.responses.<kind>`)."""

    kind: str
    part: str
    noun: str
    max_bytes: int
    media_types: tuple[str, ...]
    # Whether a declared type keeps its parameters (a text file's charset); OpenClaw takes an image's bare.
    typed_with_parameters: bool


IMAGE_LIMITS = MediaLimits(
    "images",
    "input_image",
    "image",
    10 * MIB,
    ("image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"),
    typed_with_parameters=False,
)
FILE_LIMITS = MediaLimits(
    "files",
    "input_file",
    "file",
    5 * MIB,
    ("text/plain", "text/markdown", "text/html", "text/csv", "application/json", "application/pdf"),
    typed_with_parameters=True,
)
MEDIA_LIMITS = (IMAGE_LIMITS, FILE_LIMITS)
# OpenClaw's own bounds: images and files fetched by URL per request, and its request body.
MAX_URL_PARTS = 8
GATEWAY_BODY_BYTES = 20 * MIB

# Reported in the answer as asked, not forwarded: OpenClaw ignores them, or takes fewer of their values.
_NOT_FORWARDED = frozenset(
    {
        "background",
        "frequency_penalty",
        "include",
        "parallel_tool_calls",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "stream_options",
        "text",
        "top_logprobs",
        "truncation",
    }
)
_MESSAGE_KEYS = ("type", "id", "role", "content", "status")
_CALL_KEYS = ("type", "id", "call_id", "name", "arguments", "status")
_TOOL_KEYS = ("type", "name", "description", "parameters", "strict")
_IGNORED_ITEMS = frozenset({"reasoning", "item_reference"})
_DATA_URL = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)", re.DOTALL)
_FILE_EXTENSIONS = {
    "txt": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "html": "text/html",
    "htm": "text/html",
    "csv": "text/csv",
    "json": "application/json",
    "pdf": "application/pdf",
}


def gateway_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` in OpenClaw's forms. BadRequest for what cannot be translated or is refused by type, PayloadTooLarge
    for an image, a file or a whole request over its limit. Anything else passes as it is, for the gateway to
    judge (its refusal reaches the caller as its 400)."""
    _check_unsupported(body)
    translated = {name: value for name, value in body.items() if name not in _NOT_FORWARDED}
    media = _MediaCount()
    if isinstance(body.get("input"), list):
        translated["input"] = [item for item in (_item(raw, media) for raw in body["input"]) if item is not None]
    if isinstance(body.get("instructions"), list):
        translated["instructions"] = "\n\n".join(_texts(body["instructions"]))
    if isinstance(body.get("tools"), list):
        translated["tools"] = [_tool(tool) for tool in body["tools"]]
    if media.inline and len(json.dumps(translated)) > GATEWAY_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request's images and files come to over {GATEWAY_BODY_BYTES // MIB} MiB, the gateway's limit for "
            "one request; send fewer, or smaller ones."
        )
    return translated


def _check_unsupported(body: Mapping[str, Any]) -> None:
    if body.get("background") is True:
        raise BadRequest("Background responses are not supported: the answer comes while the turn runs.")
    text = body.get("text")
    kind = (
        text.get("format", {}).get("type") if isinstance(text, dict) and isinstance(text.get("format"), dict) else None
    )
    if kind not in (None, "text"):
        raise BadRequest(f"text.format '{kind}' is not supported; the agent answers in text.")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") != "function":
        raise BadRequest(
            f"tool_choice of type '{choice.get('type')}' is not supported; use auto, none, required or a function."
        )


class _MediaCount:
    def __init__(self) -> None:
        self.by_url = 0
        self.inline = 0

    def url(self) -> None:
        self.by_url += 1
        if self.by_url > MAX_URL_PARTS:
            raise BadRequest(f"At most {MAX_URL_PARTS} images and files by URL per request; send the rest as data.")

    def data(self, limits: MediaLimits, data: str) -> None:
        """One image or file sent as base64 `data`, checked against its kind's limit."""
        self.inline += 1
        size = _decoded_size(limits, data)
        if size > limits.max_bytes:
            raise PayloadTooLarge(
                f"{limits.part} is {size / MIB:.1f} MiB; the limit is {limits.max_bytes // MIB} MiB per {limits.noun}."
            )


def _item(item: Any, media: _MediaCount) -> Any:
    """One input item in OpenClaw's form; None for the items it would ignore anyway."""
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _message(item, media)
    if kind == "function_call":
        return _picked(item, _CALL_KEYS)
    if kind == "function_call_output":
        return {"type": kind, "call_id": item.get("call_id"), "output": _tool_output(item.get("output"))}
    if kind in _IGNORED_ITEMS:
        return None
    raise BadRequest(
        f"Input items of type '{kind}' are not supported; send message, function_call and function_call_output items."
    )


def _message(item: dict[str, Any], media: _MediaCount) -> dict[str, Any]:
    message = {"type": "message", **_picked(item, _MESSAGE_KEYS[1:])}
    if item.get("role") == "assistant" and "phase" in item:
        message["phase"] = item["phase"]
    content = item.get("content")
    if isinstance(content, list):
        message["content"] = [_part(part, media) for part in content]
    return message


def _part(part: Any, media: _MediaCount) -> Any:
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return _picked(part, ("type", "text"))
    if kind == "refusal":
        return {"type": "output_text", "text": part.get("refusal", "")}
    if kind == "input_image":
        return _media_part(part, IMAGE_LIMITS, part.get("image_url"), media)
    if kind == "input_file":
        url = part.get("file_url")
        data = part.get("file_data")
        return _media_part(
            part, FILE_LIMITS, url if data is None else _file_data_url(data, part.get("filename")), media
        )
    raise BadRequest(f"Content parts of type '{kind}' are not supported; send input_text, input_image and input_file.")


def _media_part(part: dict[str, Any], limits: MediaLimits, url: Any, media: _MediaCount) -> dict[str, Any]:
    """An image or file as a `source`: a URL for the gateway to fetch, or the data itself, checked."""
    if isinstance(part.get("source"), dict):
        source = part["source"]
        if source.get("type") == "url":
            media.url()
        elif source.get("type") == "base64" and isinstance(source.get("data"), str):
            media.data(limits, source["data"])
        return {"type": part["type"], "source": source}
    if "file_id" in part and url is None:
        raise BadRequest(f"{limits.part} by file_id is not supported; send the {limits.noun} as a URL or as data.")
    if not isinstance(url, str):
        raise BadRequest(f"{limits.part} needs its {limits.noun} as an https URL or a data URL.")
    if url.startswith(("https://", "http://")):
        media.url()
        return {"type": part["type"], "source": {"type": "url", "url": url}}
    found = _DATA_URL.fullmatch(url)
    if found is None:
        raise BadRequest(f"{limits.part} takes an https URL or a base64 data URL (data:<type>;base64,…).")
    media_type = found["type"].strip().lower()
    if media_type not in limits.media_types:
        accepted = ", ".join(limits.media_types)
        raise BadRequest(f"{limits.part} of type '{media_type or 'none'}' is not accepted; send one of {accepted}.")
    data = found["data"]
    media.data(limits, data)
    declared = media_type + found["params"] if limits.typed_with_parameters else media_type
    source = {"type": "base64", "media_type": declared, "data": data}
    if isinstance(part.get("filename"), str):
        source["filename"] = part["filename"]
    return {"type": part["type"], "source": source}


def _file_data_url(data: Any, filename: Any) -> Any:
    """`file_data` as a data URL: as sent when it is one, else raw base64 typed by its filename's extension."""
    if not isinstance(data, str) or data.startswith("data:"):
        return data
    extension = filename.rsplit(".", 1)[-1].lower() if isinstance(filename, str) and "." in filename else ""
    media_type = _FILE_EXTENSIONS.get(extension)
    if media_type is None:
        raise BadRequest(
            "input_file needs its type: send file_data as a data URL (data:<type>;base64,…) or a filename ending "
            f"in one of {', '.join('.' + known for known in _FILE_EXTENSIONS)}."
        )
    return f"data:{media_type};base64,{data}"


def _decoded_size(limits: MediaLimits, data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{limits.part} data is not valid base64.") from exc


def _tool(tool: Any) -> Any:
    """A function tool with only the fields OpenClaw knows, and none of them null; other tools are refused."""
    if not isinstance(tool, dict):
        return tool
    if tool.get("type") != "function":
        raise BadRequest(f"Tools of type '{tool.get('type')}' are not supported; send function tools.")
    return {key: value for key, value in _picked(tool, _TOOL_KEYS).items() if value is not None}


def _tool_output(output: Any) -> Any:
    """A tool's output as the string OpenClaw takes: a list of content parts becomes its text."""
    if not isinstance(output, list):
        return output
    if any(isinstance(part, dict) and part.get("type") != "input_text" for part in output):
        raise BadRequest("function_call_output takes text only; send images and files in a message.")
    return "\n".join(_texts(output))


def _texts(parts: Iterable[Any]) -> list[str]:
    """The text of each part or message that has one (a message's own parts included)."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif isinstance(part, dict) and isinstance(part.get("content"), list):
            texts.extend(_texts(part["content"]))
    return texts


def _picked(item: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: item[key] for key in keys if key in item}
