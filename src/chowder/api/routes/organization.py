"""Organization routes: signup, read, update; and the subscription read."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, status

from chowder.api.deps import OrgPrincipal, State
from chowder.domain.orgs import OrganizationView
from chowder.domain.ports.instances import KEEP
from chowder.schemas.organization import (
    Organization,
    OrganizationUpdate,
    SignupRequest,
    SignupResponse,
    Subscription,
)

router = APIRouter(tags=["organization"])


def _public(view: OrganizationView) -> Organization:
    return Organization.model_validate(asdict(view), from_attributes=False)


@router.post("/v1/organization/signup", status_code=status.HTTP_201_CREATED)
async def signup(body: SignupRequest, state: State) -> SignupResponse:
    """Create an organization and its first org key (shown only here)."""
    view, raw_key = await state.orgs.signup(body.name)
    return SignupResponse(organization=_public(view), api_key=raw_key)


@router.get("/v1/organization")
async def get_organization(principal: OrgPrincipal, state: State) -> Organization:
    return _public(await state.orgs.get(principal.organization_id))


@router.patch("/v1/organization")
async def update_organization(body: OrganizationUpdate, principal: OrgPrincipal, state: State) -> Organization:
    """Rename, and merge model keys (an empty string deletes one). Keys are never echoed. Extension:
    `monthly_token_limit` caps the org's tokens per calendar month (UTC); null lifts the cap, absent keeps it."""
    limit = body.monthly_token_limit if "monthly_token_limit" in body.model_fields_set else KEEP
    return _public(await state.orgs.update(principal.organization_id, body.name, body.model_api_keys, limit))


@router.get("/v1/subscription")
async def get_subscription(principal: OrgPrincipal, state: State) -> Subscription:
    view = await state.orgs.get(principal.organization_id)
    return Subscription(
        tier=view.subscription_tier,
        instance_limit=view.instance_limit,
        instance_count=view.instance_count,
        stripe_customer_id=view.stripe_customer_id,
        stripe_subscription_id=view.stripe_subscription_id,
    )
