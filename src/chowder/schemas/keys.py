"""API key wire models. The raw key appears only in the create response."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chowder.schemas.common import MonthlyTokenLimit, Name, Timestamp

PermissionName = Literal["read", "interact", "configure", "files", "channels"]


class KeyCreate(BaseModel):
    name: Name
    instance_ids: list[str]
    permissions: list[PermissionName] = Field(min_length=1)
    expires_at: datetime | None = None
    monthly_token_limit: MonthlyTokenLimit | None = None


class KeyUpdate(BaseModel):
    """Extension. Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    monthly_token_limit: MonthlyTokenLimit | None = None


class Key(BaseModel):
    id: str
    organization_id: str
    name: str
    key_prefix: str
    is_active: bool
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    created_at: Timestamp
    monthly_token_limit: int | None = Field(None, description="Extension. The key's monthly token cap; null: none.")
    monthly_tokens_used: int = Field(0, description="Extension. The key's tokens this calendar month (UTC).")


class KeyCreated(Key):
    raw_key: str


class InstanceGrant(BaseModel):
    instance_id: str
    permissions: list[str]


class KeyDetail(Key):
    instances: list[InstanceGrant]
