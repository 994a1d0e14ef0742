"""SQL repositories of organizations, API keys, usage and Stripe deliveries (the ports in
`domain/ports/tenancy.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from chowder.core.ids import new_id
from chowder.core.pagination import PageRequest
from chowder.domain.ports.tenancy import (
    Grant,
    KeyRecord,
    OrgRecord,
    UsageCell,
    UsageEvent,
    UsageGroup,
)
from chowder.persistence.leases import lapsed
from chowder.persistence.pages import newest_first
from chowder.persistence.records import columns_of, copy_onto, grant_of, record_of, records_of
from chowder.persistence.tables import (
    ApiKeyRow,
    KeyGrantRow,
    ModelKeyRow,
    OrganizationRow,
    StripeEventRow,
    UsageEventRow,
)

# Authentication's read, once per request: a Core statement on the table built once (as the hot instance reads,
# `persistence/instances.py`), not an ORM query built anew.
_KEYS = ApiKeyRow.__table__
_BY_HASH = select(_KEYS).where(_KEYS.c.key_hash == bindparam("key_hash"))


class SqlOrgRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, org: OrgRecord) -> None:
        self._session.add(OrganizationRow(**columns_of(org)))
        self._session.flush()

    def get(self, org_id: str) -> OrgRecord | None:
        row = self._session.get(OrganizationRow, org_id)
        return None if row is None else record_of(OrgRecord, row)

    def lock(self, org_id: str) -> OrgRecord | None:
        # SQLite has no FOR UPDATE: a write takes its database lock, so both engines serialise here.
        self._session.execute(update(OrganizationRow).where(OrganizationRow.id == org_id).values(id=OrganizationRow.id))
        row = self._session.execute(
            select(OrganizationRow).where(OrganizationRow.id == org_id).with_for_update()
        ).scalar_one_or_none()
        return None if row is None else record_of(OrgRecord, row)

    def save(self, org: OrgRecord) -> None:
        row = self._session.get(OrganizationRow, org.id)
        if row is not None:
            copy_onto(row, org)
            self._session.flush()

    def ids(self) -> list[str]:
        return list(self._session.scalars(select(OrganizationRow.id).order_by(OrganizationRow.created_at)))

    def by_stripe_customer(self, customer_id: str) -> OrgRecord | None:
        row = self._session.scalars(
            select(OrganizationRow).where(OrganizationRow.stripe_customer_id == customer_id).with_for_update()
        ).first()
        return None if row is None else record_of(OrgRecord, row)

    def model_providers(self, org_id: str) -> list[str]:
        return list(
            self._session.scalars(
                select(ModelKeyRow.provider).where(ModelKeyRow.organization_id == org_id).order_by(ModelKeyRow.provider)
            )
        )

    def model_key(self, org_id: str, provider: str) -> str | None:
        row = self._session.get(ModelKeyRow, (org_id, provider))
        return None if row is None else row.ciphertext

    def set_model_key(self, org_id: str, provider: str, ciphertext: str | None, now: datetime) -> None:
        row = self._session.get(ModelKeyRow, (org_id, provider))
        if ciphertext is None:
            if row is not None:
                self._session.delete(row)
        elif row is None:
            self._session.add(
                ModelKeyRow(organization_id=org_id, provider=provider, ciphertext=ciphertext, updated_at=now)
            )
        else:
            row.ciphertext = ciphertext
            row.updated_at = now
        self._session.flush()

    def quantity_syncs_due(self, now: datetime) -> list[str]:
        return list(
            self._session.scalars(
                select(OrganizationRow.id).where(
                    OrganizationRow.stripe_quantity_due.is_(True),
                    lapsed(OrganizationRow.stripe_quantity_lease_until, now),
                )
            )
        )

    def claim_quantity_sync(self, org_id: str, now: datetime, until: datetime) -> bool:
        result = self._session.execute(
            update(OrganizationRow)
            .where(OrganizationRow.id == org_id, lapsed(OrganizationRow.stripe_quantity_lease_until, now))
            .values(stripe_quantity_lease_until=until)
        )
        return cast("CursorResult[Any]", result).rowcount == 1


class SqlKeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, key: KeyRecord, grants: Sequence[Grant]) -> None:
        self._session.add(ApiKeyRow(**columns_of(key)))
        self._session.flush()
        for grant in grants:
            self._session.add(
                KeyGrantRow(key_id=key.id, instance_id=grant.instance_id, permissions=list(grant.permissions))
            )
        self._session.flush()

    def by_hash(self, key_hash: str) -> KeyRecord | None:
        found = records_of(KeyRecord, self._session.execute(_BY_HASH, {"key_hash": key_hash}))
        return found[0] if found else None

    def scoped(self, org_id: str, page: PageRequest = PageRequest()) -> list[KeyRecord]:
        scoped = select(ApiKeyRow).where(ApiKeyRow.organization_id == org_id, ApiKeyRow.kind == "scoped")
        rows = self._session.scalars(newest_first(scoped, ApiKeyRow.created_at, ApiKeyRow.id, page))
        return [record_of(KeyRecord, row) for row in rows]

    def get_scoped(self, org_id: str, key_id: str) -> KeyRecord | None:
        row = self._session.scalars(
            select(ApiKeyRow).where(
                ApiKeyRow.id == key_id, ApiKeyRow.organization_id == org_id, ApiKeyRow.kind == "scoped"
            )
        ).one_or_none()
        return None if row is None else record_of(KeyRecord, row)

    def grants(self, org_id: str, key_id: str) -> list[Grant]:
        rows = self._session.scalars(
            select(KeyGrantRow)
            .join(ApiKeyRow, ApiKeyRow.id == KeyGrantRow.key_id)
            .where(KeyGrantRow.key_id == key_id, ApiKeyRow.organization_id == org_id)
            .order_by(KeyGrantRow.instance_id)
        )
        return [grant_of(row) for row in rows]

    def save(self, key: KeyRecord) -> None:
        self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key.id, ApiKeyRow.organization_id == key.organization_id)
            .values(last_used_at=key.last_used_at, revoked_at=key.revoked_at)
        )

    def drop_grants_of_instance(self, org_id: str, instance_id: str) -> None:
        rows = self._session.scalars(
            select(KeyGrantRow)
            .join(ApiKeyRow, ApiKeyRow.id == KeyGrantRow.key_id)
            .where(KeyGrantRow.instance_id == instance_id, ApiKeyRow.organization_id == org_id)
        )
        for grant in rows:
            self._session.delete(grant)
        self._session.flush()


class SqlUsageRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, event: UsageEvent, at: datetime) -> None:
        self._session.add(UsageEventRow(id=new_id(), created_at=at, **columns_of(event)))

    def cells(
        self,
        org_id: str,
        by: tuple[UsageGroup, UsageGroup],
        since: datetime | None,
        until: datetime | None,
        instance_id: str | None = None,
    ) -> list[UsageCell]:
        first, second = (getattr(UsageEventRow, name) for name in by)
        query = _summed((first, second), org_id, since, until, instance_id).group_by(first, second)
        return [
            UsageCell((row[0], row[1]), int(row[2]), int(row[3]), int(row[4])) for row in self._session.execute(query)
        ]


def _summed(
    columns: tuple[Any, ...], org_id: str, since: datetime | None, until: datetime | None, instance_id: str | None
) -> Select[Any]:
    """The count and token sums of the org's events (one instance's) in [since, until), after `columns`."""
    query = select(
        *columns,
        func.count(),
        func.coalesce(func.sum(UsageEventRow.input_tokens), 0),
        func.coalesce(func.sum(UsageEventRow.output_tokens), 0),
    ).where(UsageEventRow.organization_id == org_id)
    if instance_id is not None:
        query = query.where(UsageEventRow.instance_id == instance_id)
    if since is not None:
        query = query.where(UsageEventRow.created_at >= since)
    if until is not None:
        query = query.where(UsageEventRow.created_at < until)
    return query


class SqlStripeEventRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def first_delivery(self, event_id: str, event_type: str, now: datetime) -> bool:
        if self._session.get(StripeEventRow, event_id) is not None:
            return False
        self._session.add(StripeEventRow(id=event_id, type=event_type, received_at=now))
        self._session.flush()
        return True
