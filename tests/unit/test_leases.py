"""Leases: one worker at a time per instance; an expired lease is taken over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chowder.core.clock import utcnow
from chowder.domain import orgs
from chowder.persistence.db import Database, migrate
from chowder.persistence.repositories import EngineRepository, TenantRepository
from chowder.persistence.tables import InstanceRow

pytestmark = pytest.mark.persistence


def _instance(db: Database) -> str:
    with db.session() as session:
        org, _ = orgs.signup(TenantRepository(session), "Lease Co")
        now = utcnow()
        row = InstanceRow(
            id="11111111-1111-4111-8111-111111111111",
            organization_id=org.id,
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
