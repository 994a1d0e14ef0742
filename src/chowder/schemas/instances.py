"""Instance wire models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chowder.core.model_providers import ModelProvider
from chowder.schemas.common import Name, Timestamp

Egress = Literal["open", "none"]
EGRESS_HELP = (
    "Extension. What the agent may reach besides the control plane's model endpoint: `open` (default) the public "
    "internet, `none` nothing. Never the host, other instances, private or link-local addresses."
)


class InstanceCreate(BaseModel):
    name: Name
    model_provider: ModelProvider = ModelProvider.ANTHROPIC
    sandbox_provider: str = "sandbox"
    openclaw_version: str = "v1"
    openclaw_config: dict[str, Any] | None = None
    region: str | None = None
    egress: Egress = Field("open", description=EGRESS_HELP)


class InstanceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    openclaw_config: dict[str, Any] | None = None
    egress: Egress | None = Field(None, description=EGRESS_HELP + " Applied at once to a running instance.")


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
    egress: Egress = Field(description=EGRESS_HELP)
    error_message: str | None
    created_at: Timestamp
    updated_at: Timestamp


class InstanceStatus(BaseModel):
    id: str
    status: str
    gateway_url: str | None
