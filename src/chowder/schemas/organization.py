"""Organization and subscription wire models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chowder.core.model_providers import ModelProvider
from chowder.schemas.common import Name, Timestamp


class SignupRequest(BaseModel):
    name: Name


class Organization(BaseModel):
    id: str
    name: str
    model_providers: list[str]
    subscription_tier: str
    instance_limit: int | None
    instance_count: int
    created_at: Timestamp
    updated_at: Timestamp


class SignupResponse(BaseModel):
    organization: Organization
    api_key: str


class OrganizationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    model_api_keys: dict[ModelProvider, str] | None = None


class Subscription(BaseModel):
    tier: str
    instance_limit: int | None
    instance_count: int
    stripe_customer_id: str | None
    stripe_subscription_id: str | None


class CheckoutRequest(BaseModel):
    tier: str


class BillingUrl(BaseModel):
    url: str
