"""Channel wire models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ChannelSummary(BaseModel):
    channel: str
    connection_type: str
    enabled: bool


class ChannelInfo(BaseModel):
    channel: str
    connection_type: str
    required_fields: dict[str, str]


class ChannelStatus(BaseModel):
    channel: str
    enabled: bool
    connected: bool
    details: dict[str, Any]


class ChannelConnect(BaseModel):
    """The info endpoint's fields; optional for interactive channels (WhatsApp), which log in by QR."""

    config: dict[str, Any] = Field(default_factory=dict)


class ChannelConnected(BaseModel):
    """`qr_data` and `qr_image_base64` are present only for `awaiting_scan` (interactive channels)."""

    channel: str
    status: str
    message: str | None = None
    qr_data: str | None = None
    qr_image_base64: str | None = None


class PairRequest(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$", description="The code the bot sent the user.")


class Paired(BaseModel):
    channel: str
    code: str
    status: str
    output: str
