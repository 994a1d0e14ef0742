"""Organization routes: signup, read, update; and the subscription read."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, status

from chowder.api.deps import OrgPrincipal, Repo, State
from chowder.domain import orgs
from chowder.schemas.organization import (
    Organization,
    OrganizationUpdate,
    SignupRequest,
    SignupResponse,
    Subscription,
)

router = APIRouter(tags=["organization"])


def _public(view: orgs.OrganizationView) -> Organization:
    return Organization.model_validate(asdict(view), from_attributes=False)


@router.post("/v1/organization/signup", status_code=status.HTTP_201_CREATED)
def signup(body: SignupRequest, repo: Repo) -> SignupResponse:
    """Create an organization and its first org key (shown only here)."""
    view, raw_key = orgs.signup(repo, body.name)
    return SignupResponse(organization=_public(view), api_key=raw_key)


@router.get("/v1/organization")
def get_organization(principal: OrgPrincipal, repo: Repo) -> Organization:
    return _public(orgs.view(repo, principal.organization_id))


@router.patch("/v1/organization")
def update_organization(body: OrganizationUpdate, principal: OrgPrincipal, repo: Repo, state: State) -> Organization:
    """Rename, and merge model keys (an empty string deletes one). Keys are never echoed."""
    view = orgs.update(repo, state.box, principal.organization_id, body.name, body.model_api_keys)
    return _public(view)


@router.get("/v1/subscription")
def get_subscription(principal: OrgPrincipal, repo: Repo) -> Subscription:
    view = orgs.view(repo, principal.organization_id)
    return Subscription(
        tier=view.subscription_tier,
        instance_limit=view.instance_limit,
        instance_count=view.instance_count,
        stripe_customer_id=view.stripe_customer_id,
        stripe_subscription_id=view.stripe_subscription_id,
    )
