"""Leases: one worker at a time per instance, one Stripe quantity push at a time per org; an expired lease is
taken over."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.metrics import Metrics
from chowder.core.settings import Settings
from chowder.domain.billing import stripe_client
from chowder.domain.models import Status, Tier
from chowder.domain.ports.instances import Claim
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.quantity_sync import QuantitySync
from chowder.domain.reconciler import Engine
from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from tests.fakes.engine_env import EngineEnv, running
from tests.fakes.records import add_instance, new_org
from tests.fakes.stripe_api import FakeStripeApi

pytestmark = pytest.mark.persistence


def test_claim_is_exclusive_until_the_lease_expires(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    instance_id = tx.run_sync(lambda uow: add_instance(uow, SecretBox("leases")).id)
    lease = timedelta(seconds=30)
    now = utcnow()

    def worker_a_claims(uow: UnitOfWork) -> None:
        assert [(w.id, w.status) for w in uow.engine.needing_work(now)] == [(instance_id, Status.PROVISIONING)]
        assert uow.engine.claim(instance_id, "worker-a", now, lease) is Claim.TAKEN

    def worker_b_waits(uow: UnitOfWork) -> None:
        assert uow.engine.claim(instance_id, "worker-b", now + timedelta(seconds=10), lease) is Claim.REFUSED
        assert uow.engine.needing_work(now + timedelta(seconds=10)) == []
        renewed = uow.engine.claim(instance_id, "worker-a", now + timedelta(seconds=10), lease)
        assert renewed is Claim.TAKEN, "the owner renews"

    def worker_b_takes_over(uow: UnitOfWork) -> None:
        later = now + timedelta(seconds=41)
        assert [w.id for w in uow.engine.needing_work(later)] == [instance_id]
        assert uow.engine.claim(instance_id, "worker-b", later, lease) is Claim.TAKEN_OVER, "an expired lease"
        uow.engine.release(instance_id, "worker-a")

    def worker_a_cannot_renew(uow: UnitOfWork) -> None:
        late = now + timedelta(seconds=42)
        assert not uow.engine.renew(instance_id, "worker-a", late, lease), "a lapsed lease is not renewed"
        assert uow.engine.renew(instance_id, "worker-b", late, lease), "the holder extends its own"

    def a_late_renewal_takes_nothing_back(uow: UnitOfWork) -> None:
        uow.engine.release(instance_id, "worker-b")
        assert not uow.engine.renew(instance_id, "worker-b", now + timedelta(seconds=43), lease)
        free = uow.engine.needing_work(now + timedelta(seconds=43))
        assert [w.id for w in free] == [instance_id], "still free"

    def a_takeover_is_of_another_workers_lease(uow: UnitOfWork) -> None:
        assert uow.engine.claim(instance_id, "worker-b", now + timedelta(seconds=44), lease) is Claim.TAKEN, "free"
        lapsed_own = uow.engine.claim(instance_id, "worker-b", now + timedelta(seconds=80), lease)
        assert lapsed_own is Claim.TAKEN, "its own lapsed lease"

    for step in (worker_a_claims, worker_b_waits, worker_b_takes_over):
        tx.run_sync(step)
    assert tx.run_sync(lambda uow: uow.engine.leased(instance_id, "worker-b")) is not None, "only the owner releases"
    for step in (worker_a_cannot_renew, a_late_renewal_takes_nothing_back, a_takeover_is_of_another_workers_lease):
        tx.run_sync(step)
    db.dispose()


def test_one_process_pushes_an_orgs_quantity_at_a_time(data_dir: Path, database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    with FakeStripeApi("sk_test_lease") as stripe_api:
        sub = stripe_api.subscribe("cus_lease", "price_crab", quantity=1)
        # On crab with a subscription, its quantity due (as a tier change leaves it).
        paying = new_org(subscription_tier=Tier.CRAB, stripe_subscription_id=sub, stripe_quantity_due=True)
        tx = SqlTransactions(db)
        tx.run_sync(lambda uow: uow.orgs.add(paying))
        stripe_settings = {"stripe_secret_key": "sk_test_lease", "stripe_price_crab": "price_crab"}
        settings = Settings(data_dir=data_dir, stripe_api_base=stripe_api.url, **stripe_settings)
        client = stripe_client(settings)

        async def two_servers() -> None:
            await asyncio.gather(*(QuantitySync(settings, tx, client).sync_due() for _ in range(2)))

        asyncio.run(two_servers())
        assert [method for method, _path, _form in stripe_api.requests] == ["GET", "POST"], "one push, not two"
        assert stripe_api.quantity(sub) == 0
        asyncio.run(two_servers())
        assert len(stripe_api.requests) == 2, "settled: nothing left to push"
    db.dispose()


def test_the_engine_counts_the_leases_it_takes_over(env: EngineEnv) -> None:
    """A lease another worker let lapse unreleased is a takeover; a free one is a plain claim."""
    crashed, free = env.add(), env.add()
    lease = timedelta(seconds=env.settings.lease_s)
    lapsed = env.tx.run_sync(lambda uow: uow.engine.claim(crashed.id, "crashed-worker", utcnow() - 2 * lease, lease))
    assert lapsed is Claim.TAKEN
    metrics = Metrics()
    engine = Engine(env.tx, env.box, env.settings, env.providers, env.runtime, metrics)

    async def scenario() -> None:
        async with running(engine):
            for instance in (crashed, free):
                await env.until_status(instance.id, Status.RUNNING)

    asyncio.run(scenario())
    assert metrics.registry.get_sample_value("chowder_engine_lease_takeovers_total") == 1
