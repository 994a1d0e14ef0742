"""Instance wire models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from chowder.schemas.common import Name, Timestamp
from chowder.schemas.organization import ProviderName


class InstanceCreate(BaseModel):
    name: Name
    model_provider: ProviderName = "anthropic"
    sandbox_provider: str = "sandbox"
    openclaw_version: str = "v1"
    openclaw_config: dict[str, Any] | None = None
    region: str | None = None


class InstanceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    openclaw_config: dict[str, Any] | None = None


class Instance(BaseModel):
    id: str
    organization_id: str
    name: str
    status: Literal["provisioning", "running", "stopped", "error", "terminated"]
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    error_message: str | None
    created_at: Timestamp
    updated_at: Timestamp


class InstanceStatus(BaseModel):
    id: str
    status: str
    gateway_url: str | None
