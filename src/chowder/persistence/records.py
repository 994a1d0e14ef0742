"""Rows to records and back: the only place that knows both shapes."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from chowder.domain.models import Desired, KeyKind, Permission, Status, Tier
from chowder.domain.ports.instances import InstanceRecord
from chowder.domain.ports.tenancy import Grant, KeyRecord, OrgRecord
from chowder.persistence.tables import ApiKeyRow, InstanceRow, KeyGrantRow, OrganizationRow

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def columns_of(record: DataclassInstance) -> dict[str, Any]:
    """A record's fields as column values (enums are str subclasses and store as their values)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def copy_onto(row: object, record: DataclassInstance) -> None:
    """Writes a record's fields back onto the row it was read from (the id never changes)."""
    for name, value in columns_of(record).items():
        if name != "id":
            setattr(row, name, value)


def org_of(row: OrganizationRow) -> OrgRecord:
    return OrgRecord(
        id=row.id,
        name=row.name,
        subscription_tier=Tier(row.subscription_tier),
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        stripe_quantity_due=row.stripe_quantity_due,
        stripe_quantity_lease_until=row.stripe_quantity_lease_until,
        stripe_event_at=row.stripe_event_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def key_of(row: ApiKeyRow) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        organization_id=row.organization_id,
        kind=KeyKind(row.kind),
        name=row.name,
        key_hash=row.key_hash,
        key_prefix=row.key_prefix,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
    )


def grant_of(row: KeyGrantRow) -> Grant:
    return Grant(row.instance_id, tuple(Permission(p) for p in row.permissions))


def instance_of(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        status=Status(row.status),
        desired_state=Desired(row.desired_state),
        model_provider=row.model_provider,
        sandbox_provider=row.sandbox_provider,
        sandbox_id=row.sandbox_id,
        gateway_url=row.gateway_url,
        openclaw_version=row.openclaw_version,
        openclaw_release=row.openclaw_release,
        openclaw_config=row.openclaw_config,
        region=row.region,
        egress="none" if row.egress == "none" else "open",
        error_message=row.error_message,
        gateway_token_enc=row.gateway_token_enc,
        model_token_hash=row.model_token_hash,
        model_token_enc=row.model_token_enc,
        status_changed_at=row.status_changed_at,
        observed_at=row.observed_at,
        replace_gateway=row.replace_gateway,
        torn_down=row.torn_down,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )
