"""Chat wire models. The gateway's answers follow the OpenAI Responses format and pass through unchanged, so the
models here name only the fields a client relies on and keep every other one (`extra="allow"`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ResponsesRequest(BaseModel):
    """A Responses API request; fields beyond these are forwarded unchanged."""

    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[Any]
    stream: bool = False


class ResponseObject(BaseModel):
    """A whole answer (`stream: false`), or the one a stream's `response.completed` event carries."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str | None = None
    model: str | None = None
    output: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def output_text(self) -> str:
        """The assistant's text: every `output_text` part of every message item, joined."""
        return "".join(
            str(part.get("text", ""))
            for item in self.output
            if item.get("type") == "message"
            for part in item.get("content", [])
            if part.get("type") == "output_text"
        )


class ResponseEvent(BaseModel):
    """One server-sent event of a streamed answer: `response.output_text.delta` carries `delta`, the final
    `response.completed` (or `response.failed`) the whole `response`."""

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int | None = None
    delta: str | None = None
    response: ResponseObject | None = None
