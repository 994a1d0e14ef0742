"""Channel wire models."""

from __future__ import annotations

from pydantic import BaseModel


class ChannelSummary(BaseModel):
    channel: str
    connection_type: str
    enabled: bool


class ChannelInfo(BaseModel):
    channel: str
    connection_type: str
    required_fields: dict[str, str]
