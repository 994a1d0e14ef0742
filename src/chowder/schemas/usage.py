"""Usage wire models: token totals over an optional time range."""

from __future__ import annotations

from pydantic import BaseModel, Field

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


class CapUsage(BaseModel):
    monthly_token_limit: int | None
    monthly_tokens_used: int


class KeyCapUsage(CapUsage):
    key_id: str


class SpendCaps(BaseModel):
    """Extension. This calendar month's (UTC) tokens against the caps, whatever `since` and `until` say."""

    month: str = Field(description="The calendar month (UTC) the totals count, as `2026-12`.")
    organization: CapUsage
    keys: list[KeyCapUsage] = Field(description="Every scoped key that has a cap.")


class OrganizationUsage(BaseModel):
    since: Timestamp | None
    until: Timestamp | None
    total: UsageTotals
    instances: list[InstanceUsageItem]
    keys: list[KeyUsage]
    spend: SpendCaps | None = None
