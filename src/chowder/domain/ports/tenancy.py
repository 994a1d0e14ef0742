"""Tenancy records and their repositories: organizations (with their model keys and billing state), API keys and
their grants, usage events, Stripe deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from chowder.core.pagination import PageRequest
from chowder.domain.models import KeyKind, Permission, Tier


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: str
    name: str
    subscription_tier: Tier
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    # Set with every change of the instance count on a paid tier; cleared once Stripe holds the new quantity.
    stripe_quantity_due: bool
    # While set, one process is pushing the quantity (or, after a failure, waits to retry until then).
    stripe_quantity_lease_until: datetime | None
    # `created` of the last Stripe event applied: an older one, delivered late, is not applied over it.
    stripe_event_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrgRepository(Protocol):
    def add(self, org: OrgRecord) -> None: ...

    def get(self, org_id: str) -> OrgRecord | None: ...

    def lock(self, org_id: str) -> OrgRecord | None:
        """The org, locked until the transaction ends: serialises writers of one org (instance limit checks,
        tier changes) on PostgreSQL and SQLite alike."""
        ...

    def save(self, org: OrgRecord) -> None:
        """Writes back every field of a record read (and `dataclasses.replace`d) in this transaction."""
        ...

    def ids(self) -> list[str]:
        """Every org, oldest first: the operator's view (`chowder admin`), never reachable from the API."""
        ...

    def by_stripe_customer(self, customer_id: str) -> OrgRecord | None:
        """Cross-tenant by design (Stripe events name customers), locked like `lock`."""
        ...

    def model_providers(self, org_id: str) -> list[str]:
        """The providers the org holds a key for, sorted."""
        ...

    def model_key(self, org_id: str, provider: str) -> str | None:
        """The org's key for `provider`, as stored (encrypted)."""
        ...

    def set_model_key(self, org_id: str, provider: str, ciphertext: str | None, now: datetime) -> None:
        """Stores (or replaces) the encrypted key; None deletes it."""
        ...

    def quantity_syncs_due(self, now: datetime) -> list[str]:
        """Orgs whose Stripe quantity must be pushed and that no process is pushing (or waiting to retry)."""
        ...

    def claim_quantity_sync(self, org_id: str, now: datetime, until: datetime) -> bool:
        """Compare-and-set: only one process pushes an org's quantity at a time, so pushes never overtake."""
        ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    organization_id: str
    kind: KeyKind
    name: str
    key_hash: str
    key_prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """What a scoped key may do on one instance."""

    instance_id: str
    permissions: tuple[Permission, ...]


class KeyRepository(Protocol):
    def add(self, key: KeyRecord, grants: Sequence[Grant]) -> None: ...

    def by_hash(self, key_hash: str) -> KeyRecord | None:
        """The one cross-tenant key read: authentication, before the org is known."""
        ...

    def scoped(self, org_id: str, page: PageRequest = PageRequest()) -> list[KeyRecord]:
        """The org's scoped keys, newest first: those of the page, and one more if there is a next page."""
        ...

    def get_scoped(self, org_id: str, key_id: str) -> KeyRecord | None: ...

    def grants(self, org_id: str, key_id: str) -> list[Grant]:
        """The key's grants, by instance id."""
        ...

    def save(self, key: KeyRecord) -> None:
        """Writes back `last_used_at` and `revoked_at`, the fields of a key that ever change."""
        ...

    def drop_grants_of_instance(self, org_id: str, instance_id: str) -> None: ...


UsageGroup = Literal["session_id", "model", "instance_id", "key_id"]


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Tokens of one model call, attributed to the org, instance, session and API key behind it."""

    organization_id: str
    instance_id: str
    session_id: str | None
    key_id: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class UsageTotals:
    group: str | None
    requests: int
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class UsageCell:
    """The sums of the events sharing a value of each of two columns."""

    groups: tuple[str | None, str | None]
    requests: int
    input_tokens: int
    output_tokens: int


class UsageRepository(Protocol):
    def record(self, event: UsageEvent, at: datetime) -> None: ...

    def cells(
        self,
        org_id: str,
        by: tuple[UsageGroup, UsageGroup],
        since: datetime | None,
        until: datetime | None,
        instance_id: str | None = None,
    ) -> list[UsageCell]:
        """One statement's sums over the org's events (optionally one instance's) in [since, until), grouped by
        two columns: a report rolls its total and both breakdowns up from it, so they always count the same
        events (separate statements need not: SQLite runs each read on the latest data)."""
        ...


class StripeEventRepository(Protocol):
    def first_delivery(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Records the event as applied; False when it already was (then the caller applies nothing). The record
        commits with the event's effects, so a failure leaves the event to be applied on retry."""
        ...
