"""Queries. Every read of tenant data takes the organization id; there is no unscoped instance lookup
except the engine's, which works across tenants by design and lives in `EngineRepository`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session

from chowder.domain.models import Desired, Status
from chowder.persistence.leases import lapsed
from chowder.persistence.tables import InstanceRow, KeyGrantRow, ModelKeyRow, OrganizationRow

LIVE = (Status.PROVISIONING, Status.RUNNING, Status.STOPPED, Status.ERROR)


class TenantRepository:
    """Reads and writes on behalf of one request; the caller's org id scopes every lookup. Only what
    `domain/instances.py` still uses until it moves to the storage ports (its owner's change in flight); then this
    class goes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)
        self.session.flush()

    def lock_org(self, org_id: str) -> OrganizationRow | None:
        """Serialise writers of one org (instance limit checks) on PostgreSQL and SQLite alike."""
        self.session.execute(update(OrganizationRow).where(OrganizationRow.id == org_id).values(id=OrganizationRow.id))
        return self.session.execute(
            select(OrganizationRow).where(OrganizationRow.id == org_id).with_for_update()
        ).scalar_one_or_none()

    def model_key(self, org_id: str, provider: str) -> ModelKeyRow | None:
        return self.session.get(ModelKeyRow, (org_id, provider))

    def live_instance_count(self, org_id: str) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(InstanceRow)
                .where(InstanceRow.organization_id == org_id, InstanceRow.status.in_(LIVE))
            )
            or 0
        )

    def instance(self, org_id: str, instance_id: str) -> InstanceRow | None:
        """A visible instance: of this org and not deleted."""
        return self.session.scalars(
            select(InstanceRow).where(
                InstanceRow.id == instance_id,
                InstanceRow.organization_id == org_id,
                InstanceRow.status.in_(LIVE),
            )
        ).one_or_none()

    def instances(self, org_id: str) -> Sequence[InstanceRow]:
        return self.session.scalars(
            select(InstanceRow)
            .where(InstanceRow.organization_id == org_id, InstanceRow.status.in_(LIVE))
            .order_by(InstanceRow.created_at.desc(), InstanceRow.id)
        ).all()

    def drop_grants_of_instance(self, instance_id: str) -> None:
        for grant in self.session.scalars(select(KeyGrantRow).where(KeyGrantRow.instance_id == instance_id)):
            self.session.delete(grant)
        self.session.flush()


class EngineRepository:
    """The lifecycle engine's queries: across tenants, guarded by leases instead of org ids."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def needing_work(self, now: datetime, observe_before: datetime) -> list[str]:
        """Instances whose observed state differs from the desired one, or whose liveness check is due."""
        rows = self.session.scalars(
            select(InstanceRow.id).where(
                or_(
                    InstanceRow.status == Status.PROVISIONING,
                    (InstanceRow.status == Status.RUNNING) & (InstanceRow.desired_state != Desired.RUNNING),
                    (InstanceRow.status == Status.RUNNING)
                    & or_(InstanceRow.observed_at.is_(None), InstanceRow.observed_at < observe_before),
                    (InstanceRow.status == Status.TERMINATED) & InstanceRow.torn_down.is_(False),
                ),
                lapsed(InstanceRow.lease_expires_at, now),
            )
        )
        return list(rows)

    def claim(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Compare-and-set: take a free or expired lease (or renew our own)."""
        result = self.session.execute(
            update(InstanceRow)
            .where(
                InstanceRow.id == instance_id,
                or_(lapsed(InstanceRow.lease_expires_at, now), InstanceRow.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_expires_at=now + lease)
        )
        return cast("CursorResult[Any]", result).rowcount == 1

    def release(self, instance_id: str, owner: str) -> None:
        self.session.execute(
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )

    def get(self, instance_id: str) -> InstanceRow | None:
        return self.session.get(InstanceRow, instance_id)

    def state_of(self, instance_id: str) -> tuple[str, str] | None:
        row = self.session.execute(
            select(InstanceRow.status, InstanceRow.desired_state).where(InstanceRow.id == instance_id)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def not_torn_down(self, provider: str) -> set[str]:
        """Ids of the instances on a provider whose sandbox must not be treated as an orphan."""
        rows = self.session.scalars(
            select(InstanceRow.id).where(InstanceRow.sandbox_provider == provider, InstanceRow.torn_down.is_(False))
        )
        return set(rows)
