"""Lifecycle webhook wire models (extension): endpoints, their delivery log, and the event a receiver gets. The
signing secret appears only in the create response."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from chowder.schemas.common import Timestamp


class WebhookEndpointCreate(BaseModel):
    url: str = Field(
        description="An http or https URL; it must resolve to public addresses unless the server allows private ones."
    )
    events: list[str] | None = Field(None, description="The event types to receive; all of them when left out.")
    description: str | None = Field(None, max_length=255)


class WebhookEndpoint(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: Timestamp


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(description="The signing secret (`whsec_…`), shown only in this answer.")


class WebhookDelivery(BaseModel):
    """One event to one endpoint: `pending` (more attempts to come), `delivered` (a 2xx answer) or `failed`
    (retried for the retry window, 24 h by default, in vain)."""

    id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp


class WebhookEvent(BaseModel):
    """The body of a delivery: the same for every attempt, `id` the same for every endpoint too."""

    id: str
    type: str
    created_at: Timestamp
    organization_id: str
    data: dict[str, Any]
