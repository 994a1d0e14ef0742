"""Organization and subscription wire models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chowder.core.model_providers import ModelProvider
from chowder.schemas.common import MonthlyTokenLimit, Name, Timestamp


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
    monthly_token_limit: int | None = Field(None, description="Extension. The org's monthly token cap; null: none.")
    monthly_tokens_used: int = Field(0, description="Extension. The org's tokens this calendar month (UTC).")


class SignupResponse(BaseModel):
    organization: Organization
    api_key: str


class OrganizationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    model_api_keys: dict[ModelProvider, str] | None = None
    monthly_token_limit: MonthlyTokenLimit | None = None


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
