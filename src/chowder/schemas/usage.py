"""Usage wire models: token totals over an optional time range."""

from __future__ import annotations

from pydantic import BaseModel

from chowder.schemas.common import Timestamp


class UsageTotals(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int


class SessionUsage(UsageTotals):
    session_id: str | None


class ModelUsage(UsageTotals):
    model: str


class InstanceUsageItem(UsageTotals):
    instance_id: str


class KeyUsage(UsageTotals):
    key_id: str | None


class InstanceUsage(BaseModel):
    instance_id: str
    since: Timestamp | None
    until: Timestamp | None
    total: UsageTotals
    sessions: list[SessionUsage]
    models: list[ModelUsage]


class OrganizationUsage(BaseModel):
    since: Timestamp | None
    until: Timestamp | None
    total: UsageTotals
    instances: list[InstanceUsageItem]
    keys: list[KeyUsage]
