"""Keeps each paid subscription's Stripe quantity equal to its org's counted instances.

An instance create or delete only marks the org, in its own transaction, so the instance call never waits on
Stripe nor fails with it. This loop pushes the count and clears the mark once Stripe holds it; while Stripe is
unreachable the mark stays and the push is retried. One process pushes an org at a time (a lease in the
database), so a late push of an old count can never overwrite a newer one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

import stripe

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.core.wakeup import Wakeup
from chowder.domain.models import PAID_TIERS
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord

log = logging.getLogger("chowder.billing")

# Longer than the slowest push (two Stripe calls, each at most three attempts within the client's timeout), so a
# lease never lapses while its holder is still pushing.
PUSH_LEASE = timedelta(minutes=5)


def with_quantity_due(org: OrgRecord) -> OrgRecord:
    """Called, with the org locked, by every change of its instance count and every change of its subscription:
    the org as it must be saved."""
    paying = org.stripe_subscription_id is not None and org.subscription_tier in PAID_TIERS
    return replace(org, stripe_quantity_due=True) if paying else org


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a claimed org's subscription should carry; no subscription when the org no longer pays per instance."""

    subscription_id: str | None
    count: int


class QuantitySync:
    def __init__(self, settings: Settings, tx: Transactions, client: stripe.StripeClient | None) -> None:
        self._settings = settings
        self._tx = tx
        self._client = client
        self._retry = timedelta(seconds=settings.stripe_sync_retry_s)
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """Thread-safe: called after a transaction that marked an org."""
        self._wakeup.set()

    async def run(self) -> None:
        """Forever (nothing to do without Stripe): push what is due, then wait to be woken or for the next poll,
        which picks up marks made by other processes and retries that have come due."""
        if self._client is None:
            return
        self._wakeup.bind()
        while True:
            try:
                await self.sync_due()
            except Exception:  # a database hiccup or an answer Stripe should not give: the next pass retries
                log.exception("Stripe quantity sync pass failed")
            await self._wakeup.wait(self._settings.reconcile_interval_s)

    async def sync_due(self) -> None:
        """One pass over the orgs due; a failure leaves its org due (retried after `stripe_sync_retry_s`)."""
        due = await self._tx(lambda uow: uow.orgs.quantity_syncs_due(utcnow()))
        for org_id in due:
            claim = await self._tx(partial(_claim, org_id=org_id))
            if claim is not None:
                await self._sync(org_id, claim)

    async def _sync(self, org_id: str, claim: _Claim) -> None:
        subscription_id, count = claim.subscription_id, claim.count
        if subscription_id is None:
            await self._settle(org_id, None)
            return
        try:
            await self._push(org_id, subscription_id, count)
        except stripe.InvalidRequestError as exc:
            # Stripe refused the request itself (the subscription is gone or canceled, no item of ours): retrying
            # cannot help; the next change of the count or the subscription tries again.
            log.error("organization %s: Stripe refused quantity %d on %s: %s", org_id, count, subscription_id, exc)
        except stripe.StripeError as exc:
            log.warning("organization %s: Stripe quantity sync failed, retrying: %s", org_id, exc)
            await self._tx(lambda uow: _retry_at(uow, org_id, utcnow() + self._retry))
            return
        await self._settle(org_id, count)

    async def _push(self, org_id: str, subscription_id: str, count: int) -> None:
        """Sets the quantity of the subscription's item of a Chowder price (or its only item), if it differs."""
        assert self._client is not None
        subscription = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        items = subscription["items"].data
        ours = [item for item in items if item.price.id in self._settings.stripe_prices.values()]
        item = ours[0] if ours else items[0] if len(items) == 1 else None
        if item is None:
            log.error("organization %s: subscription %s has no item of a Chowder price", org_id, subscription_id)
            return
        if item.quantity != count:
            await self._client.v1.subscription_items.update_async(item.id, params={"quantity": count})
            log.info("subscription %s: quantity %s → %d", subscription_id, item.quantity, count)

    async def _settle(self, org_id: str, pushed: int | None) -> None:
        if await self._tx(lambda uow: _settle(uow, org_id, pushed)):
            self.wake()


def _claim(uow: UnitOfWork, org_id: str) -> _Claim | None:
    """Takes the org's lease and reads, in the same transaction, what to push; None when another process holds
    the lease."""
    now = utcnow()
    if not uow.orgs.claim_quantity_sync(org_id, now, now + PUSH_LEASE):
        return None
    org = uow.orgs.get(org_id)
    paying = org is not None and org.subscription_tier in PAID_TIERS
    subscription_id = org.stripe_subscription_id if org is not None and paying else None
    return _Claim(subscription_id, uow.instances.count_live(org_id))


def _settle(uow: UnitOfWork, org_id: str, pushed: int | None) -> bool:
    """Clears the mark only if the count did not move while pushing (True: it moved, push again)."""
    org = uow.orgs.lock(org_id)
    if org is None:
        return False
    settled = replace(org, stripe_quantity_lease_until=None, stripe_quantity_due=False)
    if pushed is not None and uow.instances.count_live(org_id) != pushed:
        settled = with_quantity_due(settled)
    uow.orgs.save(settled)
    return settled.stripe_quantity_due


def _retry_at(uow: UnitOfWork, org_id: str, later: datetime) -> None:
    """A failed push keeps the mark and holds the lease until its retry time."""
    org = uow.orgs.get(org_id)
    if org is not None:
        uow.orgs.save(replace(org, stripe_quantity_lease_until=later))
