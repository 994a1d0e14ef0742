"""Audit log wire models (extension)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chowder.schemas.common import Timestamp


class AuditActor(BaseModel):
    type: str = Field(
        description="`key` (an API key of the organization), `anonymous` (a call without one: signup) or `engine` "
        "(the control plane on its own)."
    )
    key_id: str | None
    key_prefix: str | None


class AuditEvent(BaseModel):
    id: str
    created_at: Timestamp
    action: str = Field(
        description="A call, as its method and route (`POST /v1/instances/{instance_id}/stop`), a lifecycle "
        "transition (`instance.<event>`), `instance.create`, a power change (`instance.power`), "
        "`organization.signup`, or a spend cap's change (`key.monthly_token_limit`, "
        "`organization.monthly_token_limit`)."
    )
    outcome: str = Field(description="`ok`, `refused` (a 4xx answer) or `failed` (5xx).")
    status_code: int | None
    actor: AuditActor
    instance_id: str | None
    target_id: str | None = Field(description="The key a key call named.")
    request_id: str | None
    detail: dict[str, Any] | None = Field(
        description="A transition's `from` and `to`; a spend cap's `previous` and `monthly_token_limit`."
    )
