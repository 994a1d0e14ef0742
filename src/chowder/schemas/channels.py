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
    config: dict[str, Any]


class ChannelConnected(BaseModel):
    channel: str
    status: str
    message: str | None = None


class PairRequest(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$", description="The code the bot sent the user.")


class Paired(BaseModel):
    channel: str
    code: str
    status: str
    output: str
