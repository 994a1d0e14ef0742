"""API key wire models. The raw key appears only in the create response."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from chowder.schemas.common import Name, Timestamp

PermissionName = Literal["read", "interact", "configure", "files", "channels"]


class KeyCreate(BaseModel):
    name: Name
    instance_ids: list[str]
    permissions: list[PermissionName] = Field(min_length=1)
    expires_at: datetime | None = None


class Key(BaseModel):
    id: str
    organization_id: str
    name: str
    key_prefix: str
    is_active: bool
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    created_at: Timestamp


class KeyCreated(Key):
    raw_key: str


class InstanceGrant(BaseModel):
    instance_id: str
    permissions: list[str]


class KeyDetail(Key):
    instances: list[InstanceGrant]
