"""Subscriptions through Stripe (official `stripe` library): Checkout to buy a paid tier, the customer portal to
change or cancel it, and the signed webhook events that move an organization between tiers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest, InvalidState, NotFound, ServiceUnavailable
from chowder.core.settings import Settings
from chowder.domain import orgs
from chowder.domain.models import PAID_TIERS, Tier
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord
from chowder.domain.quantity_sync import with_quantity_due

log = logging.getLogger("chowder.billing")

NOT_CONFIGURED = "Billing is not configured on this server."
# Subscription states in which the paid tier holds; any other (canceled, unpaid, …) is the free tier.
PAYING = frozenset({"active", "trialing", "past_due"})


def stripe_client(settings: Settings) -> stripe.StripeClient | None:
    """The server's Stripe client; None when billing is not configured. Requests time out after 20 s (the
    library's default is 80) and are retried twice, with the library's idempotency keys."""
    if not settings.stripe_secret_key:
        return None
    return stripe.StripeClient(
        settings.stripe_secret_key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        http_client=stripe.HTTPXClient(timeout=20),
        max_network_retries=2,
    )


class Billing:
    """`on_quantity_due` wakes the quantity sync after a webhook changed which subscription an org pays."""

    def __init__(
        self,
        settings: Settings,
        tx: Transactions,
        client: stripe.StripeClient | None,
        on_quantity_due: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._tx = tx
        self._client = client
        self._on_quantity_due = on_quantity_due

    async def checkout(self, org_id: str, tier: str) -> str:
        """A Checkout session for `tier` (crab or lobster), one line item per instance; its URL."""
        if tier not in PAID_TIERS:
            raise BadRequest("Checkout sells the paid tiers only: 'crab' or 'lobster'.")
        client = self._stripe()
        price = self._settings.stripe_prices.get(tier)
        if price is None:
            raise ServiceUnavailable(NOT_CONFIGURED)
        org = await self._tx(lambda uow: orgs.view(uow, org_id))
        if org.stripe_subscription_id is not None:
            raise InvalidState(
                f"Already subscribed ({org.subscription_tier}): change tier in the customer portal "
                "(POST /v1/subscription/portal)."
            )
        customer = org.stripe_customer_id or await self._new_customer(client, org)
        metadata = {"organization_id": org.id, "tier": tier}
        session = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": org.id,
                "line_items": [{"price": price, "quantity": max(1, org.instance_count)}],
                "success_url": self._settings.stripe_success_url,
                "cancel_url": self._settings.stripe_cancel_url,
                "metadata": metadata,
                "subscription_data": {"metadata": metadata},
            }
        )
        return str(session.url)

    async def portal(self, org_id: str) -> str:
        """A customer-portal session (change tier, card, invoices, cancel); 409 before any checkout."""
        client = self._stripe()
        org = await self._tx(lambda uow: orgs.view(uow, org_id))
        if org.stripe_customer_id is None:
            raise InvalidState("No billing account yet: subscribe first with POST /v1/subscription/checkout.")
        session = await client.v1.billing_portal.sessions.create_async(
            params={"customer": org.stripe_customer_id, "return_url": self._settings.stripe_portal_return_url}
        )
        return str(session.url)

    async def receive(self, payload: bytes, signature: str | None) -> None:
        """A webhook delivery: verified with the endpoint's signing secret (400 if it does not match), then
        applied once per event id; events this server does not act on are acknowledged."""
        secret = self._settings.stripe_webhook_secret
        if not secret:
            raise ServiceUnavailable(NOT_CONFIGURED)
        try:
            stripe.Webhook.construct_event(payload, signature or "", secret)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise BadRequest("Invalid Stripe signature.") from exc
        event = json.loads(payload)
        if await self._tx(lambda uow: self._apply(uow, event)):
            self._on_quantity_due()

    def _apply(self, uow: UnitOfWork, event: dict[str, Any]) -> bool:
        """True when the event left the org's Stripe quantity to be synced."""
        kind, obj = str(event.get("type")), event.get("data", {}).get("object", {})
        if not uow.stripe_events.first_delivery(str(event["id"]), kind, utcnow()):
            log.info("stripe event %s (%s) already applied", event["id"], kind)
            return False
        org = _org_of(uow, kind, obj)
        if org is None or org.subscription_tier == Tier.WHALE:
            return False  # not ours, or granted by the operator: Stripe does not change a whale
        tier = self._tier_of(kind, obj)
        if tier is None or _stale(org, kind, obj, event):
            return False
        customer = obj.get("customer") if kind == "checkout.session.completed" else None
        subscription = obj.get("subscription") if kind.startswith("checkout") else obj.get("id")
        changed = replace(
            org,
            subscription_tier=tier,
            stripe_event_at=_created(event) or org.stripe_event_at,
            stripe_customer_id=customer or org.stripe_customer_id,
            stripe_subscription_id=None if tier == Tier.SHRIMP else subscription,
            updated_at=utcnow(),
        )
        # Checkout bought max(1, count) and instances may have come or gone since: recount.
        changed = with_quantity_due(changed)
        uow.orgs.save(changed)
        log.info("organization %s: %s → tier %s", org.id, kind, tier)
        return changed.stripe_quantity_due

    def _tier_of(self, kind: str, obj: dict[str, Any]) -> Tier | None:
        """The tier an event puts the org on; None when it says nothing about tiers."""
        if kind == "checkout.session.completed":
            tier = (obj.get("metadata") or {}).get("tier")
            return Tier(tier) if tier in PAID_TIERS else None
        if kind == "customer.subscription.deleted" or (
            kind == "customer.subscription.updated" and obj.get("status") not in PAYING
        ):
            return Tier.SHRIMP
        if kind == "customer.subscription.updated":
            by_price = {price: tier for tier, price in self._settings.stripe_prices.items()}
            items = (obj.get("items") or {}).get("data") or []
            tiers = [by_price.get(str((item.get("price") or {}).get("id"))) for item in items]
            found = next((tier for tier in tiers if tier is not None), None)
            return Tier(found) if found else None
        return None

    def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            raise ServiceUnavailable(NOT_CONFIGURED)
        return self._client

    async def _new_customer(self, client: stripe.StripeClient, org: orgs.OrganizationView) -> str:
        """The org's Stripe customer, created once; a concurrent creator's customer wins if it was first."""
        customer = await client.v1.customers.create_async(
            params={"name": org.name, "metadata": {"organization_id": org.id}}
        )

        def store(uow: UnitOfWork) -> str:
            locked = uow.orgs.lock(org.id)
            if locked is None:
                raise NotFound("Organization not found.")
            if locked.stripe_customer_id is not None:
                return locked.stripe_customer_id
            uow.orgs.save(replace(locked, stripe_customer_id=customer.id))
            return customer.id

        return await self._tx(store)


def _org_of(uow: UnitOfWork, kind: str, obj: dict[str, Any]) -> OrgRecord | None:
    """The org an event is about, locked; checkout names it, subscription events name its Stripe customer."""
    if kind == "checkout.session.completed":
        org_id = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("organization_id")
        return uow.orgs.lock(str(org_id)) if org_id else None
    if kind in ("customer.subscription.updated", "customer.subscription.deleted") and obj.get("customer"):
        return uow.orgs.by_stripe_customer(str(obj["customer"]))
    return None


def _created(event: dict[str, Any]) -> datetime | None:
    created = event.get("created")
    return datetime.fromtimestamp(int(created), UTC) if isinstance(created, int) else None


def _stale(org: OrgRecord, kind: str, obj: dict[str, Any], event: dict[str, Any]) -> bool:
    """Stripe does not deliver events in order: one older than the last applied, or about a subscription that is
    not the org's current one (a late event of a canceled one), must not undo what came after it."""
    created, last = _created(event), org.stripe_event_at
    if created is not None and last is not None and created < last:
        log.info("organization %s: %s %s is older than the last applied event; ignored", org.id, kind, event["id"])
        return True
    current = org.stripe_subscription_id
    if kind.startswith("customer.subscription.") and current is not None and obj.get("id") != current:
        log.info("organization %s: %s is about %s, not %s; ignored", org.id, kind, obj.get("id"), current)
        return True
    return False
