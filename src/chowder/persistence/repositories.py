"""Queries. Every read of tenant data takes the organization id; there is no unscoped instance lookup
except the engine's, which works across tenants by design and lives in `persistence/instances.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from chowder.domain.lifecycle import LIVE
from chowder.persistence.tables import (
    ApiKeyRow,
    InstanceRow,
    KeyGrantRow,
    ModelKeyRow,
    OrganizationRow,
    StripeEventRow,
)


class TenantRepository:
    """Reads and writes on behalf of one request; the caller's org id scopes every lookup."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)
        self.session.flush()

    def org(self, org_id: str) -> OrganizationRow | None:
        return self.session.get(OrganizationRow, org_id)

    def lock_org(self, org_id: str) -> OrganizationRow | None:
        """Serialise writers of one org (instance limit checks) on PostgreSQL and SQLite alike."""
        self.session.execute(update(OrganizationRow).where(OrganizationRow.id == org_id).values(id=OrganizationRow.id))
        return self.session.execute(
            select(OrganizationRow).where(OrganizationRow.id == org_id).with_for_update()
        ).scalar_one_or_none()

    def model_keys(self, org_id: str) -> Sequence[ModelKeyRow]:
        return self.session.scalars(
            select(ModelKeyRow).where(ModelKeyRow.organization_id == org_id).order_by(ModelKeyRow.provider)
        ).all()

    def model_key(self, org_id: str, provider: str) -> ModelKeyRow | None:
        return self.session.get(ModelKeyRow, (org_id, provider))

    def delete(self, row: object) -> None:
        self.session.delete(row)
        self.session.flush()

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

    def key_by_hash(self, key_hash: str) -> ApiKeyRow | None:
        """The one cross-tenant read: authentication, before the org is known."""
        return self.session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash)).one_or_none()

    def instance_by_model_token(self, token_hash: str) -> InstanceRow | None:
        """Cross-tenant by design: the model gateway learns the org from the instance's credential."""
        return self.session.scalars(
            select(InstanceRow).where(InstanceRow.model_token_hash == token_hash, InstanceRow.status.in_(LIVE))
        ).one_or_none()

    def scoped_keys(self, org_id: str) -> Sequence[ApiKeyRow]:
        return self.session.scalars(
            select(ApiKeyRow)
            .where(ApiKeyRow.organization_id == org_id, ApiKeyRow.kind == "scoped")
            .order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)
        ).all()

    def scoped_key(self, org_id: str, key_id: str) -> ApiKeyRow | None:
        return self.session.scalars(
            select(ApiKeyRow).where(
                ApiKeyRow.id == key_id, ApiKeyRow.organization_id == org_id, ApiKeyRow.kind == "scoped"
            )
        ).one_or_none()

    def grants(self, key_id: str) -> Sequence[KeyGrantRow]:
        return self.session.scalars(
            select(KeyGrantRow).where(KeyGrantRow.key_id == key_id).order_by(KeyGrantRow.instance_id)
        ).all()

    def drop_grants_of_instance(self, instance_id: str) -> None:
        for grant in self.session.scalars(select(KeyGrantRow).where(KeyGrantRow.instance_id == instance_id)):
            self.session.delete(grant)
        self.session.flush()


class BillingRepository:
    """Stripe webhooks name customers and subscriptions, not our orgs: these lookups span tenants."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def first_delivery(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Records the event as applied; False when it already was (then the caller applies nothing).
        The row commits with the event's effects, so a failure leaves the event to be applied on retry."""
        if self.session.get(StripeEventRow, event_id) is not None:
            return False
        self.session.add(StripeEventRow(id=event_id, type=event_type, received_at=now))
        self.session.flush()
        return True

    def org_of_customer(self, customer_id: str) -> OrganizationRow | None:
        return self.session.scalars(
            select(OrganizationRow).where(OrganizationRow.stripe_customer_id == customer_id).with_for_update()
        ).first()

    def quantity_syncs_due(self, now: datetime) -> list[str]:
        """Orgs whose Stripe quantity must be pushed and that no process is pushing (or waiting to retry)."""
        return list(
            self.session.scalars(
                select(OrganizationRow.id).where(
                    OrganizationRow.stripe_quantity_due.is_(True),
                    _lapsed(OrganizationRow.stripe_quantity_lease_until, now),
                )
            )
        )

    def claim_quantity_sync(self, org_id: str, now: datetime, until: datetime) -> bool:
        """Compare-and-set: only one process pushes an org's quantity at a time, so pushes never overtake."""
        result = self.session.execute(
            update(OrganizationRow)
            .where(
                OrganizationRow.id == org_id,
                _lapsed(OrganizationRow.stripe_quantity_lease_until, now),
            )
            .values(stripe_quantity_lease_until=until)
        )
        return cast("CursorResult[Any]", result).rowcount == 1


class OperatorRepository:
    """The operator's queries (`chowder admin`): across tenants, never reachable from the API."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def org_ids(self) -> list[str]:
        return list(self.session.scalars(select(OrganizationRow.id).order_by(OrganizationRow.created_at)))


def _lapsed(lease_until: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """A lease column that is free: never taken, or expired."""
    return or_(lease_until.is_(None), lease_until < now)
