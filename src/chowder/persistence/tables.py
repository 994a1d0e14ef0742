"""SQLAlchemy 2 tables. Migrations in `migrations/` are the source of truth for the schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chowder.core.clock import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes and returns them aware, also on SQLite (which drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "sqlite":
            return _utc_from_sqlite
        return super().result_processor(dialect, coltype)


def _utc_from_sqlite(value: str | None) -> datetime | None:
    """SQLAlchemy writes the time as UTC text without an offset ("2026-12-06 04:09:58.123456"): that is read aware
    in one step, 0.16 us, where its parse and then `as_utc` took 1.8 us a value (a tenth of a page of the list).
    Text written another way (with an offset, or a bare date) is read as `as_utc` reads it."""
    if value is None:
        return None
    if value[-6] not in "+-" and not value.endswith("Z"):
        return datetime.fromisoformat(value + "+00:00")
    return as_utc(datetime.fromisoformat(value))


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class OrganizationRow(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    subscription_tier: Mapped[str] = mapped_column(String(16), default="shrimp")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    # Set with every change of the instance count on a paid tier; cleared once Stripe holds the new quantity.
    stripe_quantity_due: Mapped[bool] = mapped_column(default=False, index=True)
    # While set, one process is pushing the quantity (or, after a failure, waits to retry until then).
    stripe_quantity_lease_until: Mapped[datetime | None]
    # `created` of the last Stripe event applied: an older one, delivered late, is not applied over it.
    stripe_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Spend caps: tokens the org may use per calendar month (UTC); None for no cap (`domain/spend.py`).
    monthly_token_limit: Mapped[int | None] = mapped_column(BigInteger)


class ModelKeyRow(Base):
    """One provider key of an org, encrypted with the server key."""

    __tablename__ = "model_keys"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Spend caps: tokens a scoped key's turns may use per calendar month (UTC); None for no cap.
    monthly_token_limit: Mapped[int | None] = mapped_column(BigInteger)


class KeyGrantRow(Base):
    """What a scoped key may do on one instance."""

    __tablename__ = "key_grants"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True)
    permissions: Mapped[list[str]]


class InstanceRow(Base):
    """An instance with its public fields, its desired state and the engine's bookkeeping."""

    __tablename__ = "instances"
    # An org's list, newest first, reads its page off this index (keyset pagination), never sorting the org.
    __table_args__ = (Index("ix_instances_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    desired_state: Mapped[str] = mapped_column(String(16))
    model_provider: Mapped[str] = mapped_column(String(16))
    sandbox_provider: Mapped[str] = mapped_column(String(32))
    sandbox_id: Mapped[str | None] = mapped_column(String(64))
    gateway_url: Mapped[str | None] = mapped_column(String(255))
    openclaw_version: Mapped[str] = mapped_column(String(32))
    openclaw_release: Mapped[str] = mapped_column(String(32))
    openclaw_config: Mapped[dict[str, Any] | None]
    region: Mapped[str | None] = mapped_column(String(64))
    egress: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    error_message: Mapped[str | None] = mapped_column(Text)
    gateway_token_enc: Mapped[str] = mapped_column(Text)
    model_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model_token_enc: Mapped[str] = mapped_column(Text)
    status_changed_at: Mapped[datetime]
    observed_at: Mapped[datetime | None]
    # A restart asked for: the engine stops the running gateway before booting instead of adopting it.
    replace_gateway: Mapped[bool] = mapped_column(default=False)
    torn_down: Mapped[bool] = mapped_column(default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    freeze_after_s: Mapped[int | None] = mapped_column(Integer)
    stop_after_s: Mapped[int | None] = mapped_column(Integer)
    power: Mapped[str] = mapped_column(String(8), default="awake", server_default="awake")
    idle_freeze_at: Mapped[datetime | None] = mapped_column(index=True)
    idle_stop_at: Mapped[datetime | None] = mapped_column(index=True)
    wake_at: Mapped[datetime | None] = mapped_column(index=True)
    # Scheduled backups (`domain/backups.py`): one every `backup_every_hours`, the newest `backup_keep` kept.
    backup_every_hours: Mapped[int | None] = mapped_column(Integer)
    backup_keep: Mapped[int | None] = mapped_column(Integer)
    backup_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # Restore and clone: the backup to put in place before the next boot (`domain/restores.py`).
    restore_backup_id: Mapped[str | None] = mapped_column(String(36))
    # An upgrade under way (`domain/upgrades.py`): the release it boots, the backup taken before, and once the new
    # release failed, why (the rollback then boots the old release on the backup's state).
    upgrade_version: Mapped[str | None] = mapped_column(String(32))
    upgrade_release: Mapped[str | None] = mapped_column(String(32))
    upgrade_backup_id: Mapped[str | None] = mapped_column(String(36))
    upgrade_error: Mapped[str | None] = mapped_column(Text)


class WarmGatewayRow(Base):
    """A warm pool member: a gateway booted for no instance yet (`domain/warm_pool.py`)."""

    __tablename__ = "warm_gateways"
    __table_args__ = (UniqueConstraint("provider", "release", "slot"),)

    sandbox_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    release: Mapped[str] = mapped_column(String(32))
    slot: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    gateway_token_enc: Mapped[str] = mapped_column(Text)
    model_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model_token_enc: Mapped[str] = mapped_column(Text)
    gateway_url: Mapped[str | None] = mapped_column(String(255))


class UsageEventRow(Base):
    """Tokens of one model call, attributed to the org, instance, session and API key behind it."""

    __tablename__ = "usage_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    session_id: Mapped[str | None] = mapped_column(String(255))
    key_id: Mapped[str | None] = mapped_column(String(36))
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(255))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(index=True)


class SessionTurnRow(Base):
    """The API key of the chat turn holding a session, written by its holder (`persistence/turns.py`); a row is
    current only while that session's advisory lock is held."""

    __tablename__ = "session_turns"

    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_id: Mapped[str | None] = mapped_column(String(36))


class StripeEventRow(Base):
    """A Stripe webhook event already applied: each event id takes effect once, however often Stripe sends it."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime]


class IdempotencyKeyRow(Base):
    """A request made with an Idempotency-Key: its fingerprint, the lease of the request running it, then its
    answer (`api/idempotency.py`). Kept 24 h from `created_at`."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(index=True)
    lease_until: Mapped[datetime]
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditEventRow(Base):
    """An audit log entry (`domain/audit.py`): appended, never changed."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    actor_key_id: Mapped[str | None] = mapped_column(String(36))
    actor_key_prefix: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(36), index=True)
    target_id: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# Spend caps (issue 18, item 6)


class MonthlyTokenSpendRow(Base):
    """The running total of one calendar month's tokens (UTC) of an organization or of a scoped key (`subject_id`
    is the org's id or the key's), added to with each usage event: a cap is checked on one row, not by summing
    the month's events (`persistence/spend.py`)."""

    __tablename__ = "monthly_token_spend"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    tokens: Mapped[int] = mapped_column(BigInteger)


# Lifecycle webhooks (issue 18, item 5)


class WebhookEndpointRow(Base):
    """An organization's webhook endpoint; its signing secret encrypted with the server key (`domain/webhooks.py`)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]]
    description: Mapped[str | None] = mapped_column(String(255))
    secret_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class WebhookEventRow(Base):
    """An event recorded in the transaction of the change it announces (the outbox)."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """One event to one endpoint: its state, attempts and last outcome, and the lease of the worker sending it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]


# Backups (issue 18 item 1)


class BackupRow(Base):
    """A backup of an instance's state (`domain/backups.py`); its archive is in the backup store under its id. Kept
    after the instance is deleted."""

    __tablename__ = "backups"
    __table_args__ = (Index("ix_backups_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    openclaw_version: Mapped[str] = mapped_column(String(32))
    openclaw_release: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
