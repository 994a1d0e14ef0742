"""Buying and managing a subscription (org key only), and Stripe's webhook (no key: Stripe signs it)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from chowder.api.deps import OrgPrincipal, State
from chowder.schemas.organization import BillingUrl, CheckoutRequest

router = APIRouter(tags=["subscription"])


@router.post("/v1/subscription/checkout")
async def checkout(body: CheckoutRequest, principal: OrgPrincipal, state: State) -> BillingUrl:
    """A Stripe Checkout URL for `crab` or `lobster`; the tier changes when Stripe reports the payment."""
    return BillingUrl(url=await state.billing.checkout(principal.organization_id, body.tier))


@router.post("/v1/subscription/portal")
async def portal(principal: OrgPrincipal, state: State) -> BillingUrl:
    """A Stripe customer-portal URL: change tier, card, invoices, cancel."""
    return BillingUrl(url=await state.billing.portal(principal.organization_id))


@router.post("/v1/webhooks/stripe")
async def stripe_webhook(request: Request, state: State) -> dict[str, bool]:
    """Verified with `Stripe-Signature`; each event id is applied once, duplicates are acknowledged."""
    await state.billing.receive(await request.body(), request.headers.get("stripe-signature"))
    return {"received": True}
