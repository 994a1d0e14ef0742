"""Channel wire models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
