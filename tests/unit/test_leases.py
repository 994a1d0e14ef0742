"""Leases: one worker at a time per instance, one Stripe quantity push at a time per org; an expired lease is
taken over."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain import orgs
from chowder.domain.billing import stripe_client
from chowder.domain.models import Tier
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.quantity_sync import QuantitySync
from chowder.persistence.db import Database, migrate
from chowder.persistence.repositories import EngineRepository
from chowder.persistence.store import SqlTransactions
from chowder.persistence.tables import InstanceRow
from tests.factories import new_org
from tests.fakes.stripe_api import FakeStripeApi

pytestmark = pytest.mark.persistence


def _instance(db: Database) -> str:
    org_id = new_org(SqlTransactions(db), "Lease Co")
    with db.session() as session:
        now = utcnow()
        row = InstanceRow(
            id="11111111-1111-4111-8111-111111111111",
            organization_id=org_id,
            name="i",
            status="provisioning",
            desired_state="running",
            model_provider="anthropic",
            sandbox_provider="process",
            openclaw_version="v1",
            openclaw_release="2026.9.6",
            gateway_token_enc="x",
            model_token_hash="h",
            model_token_enc="y",
            status_changed_at=now,
            torn_down=False,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        return row.id


def test_claim_is_exclusive_until_the_lease_expires(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    instance_id = _instance(db)
    lease = timedelta(seconds=30)
    now = utcnow()
    with db.session() as session:
        repo = EngineRepository(session)
        assert repo.needing_work(now, now) == [instance_id]
        assert repo.claim(instance_id, "worker-a", now, lease)
    with db.session() as session:
        repo = EngineRepository(session)
        assert not repo.claim(instance_id, "worker-b", now + timedelta(seconds=10), lease)
        assert repo.needing_work(now + timedelta(seconds=10), now) == []
        assert repo.claim(instance_id, "worker-a", now + timedelta(seconds=10), lease), "the owner renews"
    later = now + timedelta(seconds=41)
    with db.session() as session:
        repo = EngineRepository(session)
        assert repo.needing_work(later, later) == [instance_id]
        assert repo.claim(instance_id, "worker-b", later, lease), "an expired lease is taken over"
        repo.release(instance_id, "worker-a")
    with db.session() as session:
        row = EngineRepository(session).get(instance_id)
        assert row is not None and row.lease_owner == "worker-b", "only the owner can release"
    db.dispose()


def test_one_process_pushes_an_orgs_quantity_at_a_time(data_dir: Path, database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    with FakeStripeApi("sk_test_lease") as stripe_api:
        sub = stripe_api.subscribe("cus_lease", "price_crab", quantity=1)
        tx = SqlTransactions(db)
        org_id = new_org(tx, "Two Servers Co")

        def subscribed(uow: UnitOfWork) -> None:
            org = uow.orgs.lock(org_id)
            assert org is not None
            uow.orgs.save(replace(org, stripe_subscription_id=sub))

        tx.run_sync(subscribed)
        tx.run_sync(lambda uow: orgs.set_tier(uow, org_id, Tier.CRAB))  # marks the quantity due
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
