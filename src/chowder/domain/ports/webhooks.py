"""Lifecycle webhooks as storage sees them: an organization's endpoints, the events it was sent (an outbox) and
one delivery per event and subscribed endpoint, claimed by a delivery worker with a lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from chowder.core.pagination import PageRequest


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """`events` empty: every event type. The secret is stored encrypted (it must be reused to sign)."""

    id: str
    organization_id: str
    url: str
    events: list[str]
    description: str | None
    secret_enc: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    organization_id: str
    type: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event to one endpoint: `pending` until a 2xx answer (`delivered`) or the retry window's end
    (`failed`); `next_attempt_at` is when it is due while pending."""

    id: str
    organization_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What a worker needs to send one claimed delivery: the event, where to, and the secret to sign with."""

    delivery_id: str
    attempts: int
    url: str
    secret_enc: str
    event: EventRecord


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt came to, written back by the worker that held the lease."""

    status: DeliveryStatus
    at: datetime
    next_attempt_at: datetime | None
    status_code: int | None = None
    error: str | None = None


class WebhookRepository(Protocol):
    def add_endpoint(self, endpoint: EndpointRecord) -> None: ...

    def endpoints(self, org_id: str, page: PageRequest = PageRequest()) -> list[EndpointRecord]:
        """Newest first: the page's endpoints, and one more if there is a next page."""
        ...

    def endpoint(self, org_id: str, endpoint_id: str) -> EndpointRecord | None: ...

    def delete_endpoint(self, org_id: str, endpoint_id: str) -> bool:
        """The endpoint and its deliveries (pending ones are never sent); False when the org has no such one."""
        ...

    def record(self, event: EventRecord, now: datetime) -> int:
        """The event, and a delivery due `now` to each of the org's endpoints subscribed to its type: how many."""
        ...

    def deliveries(self, org_id: str, endpoint_id: str, page: PageRequest) -> list[DeliveryRecord]:
        """The endpoint's delivery log, newest first, one past the page if there is a next."""
        ...

    def claim_due(self, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[DueDelivery]:
        """Cross-tenant by design (the delivery worker): up to `limit` pending deliveries due by `now` whose lease
        is free, each taken with a compare-and-set on its lease, so two workers never claim one delivery."""
        ...

    def settle(self, delivery_id: str, owner: str, outcome: AttemptOutcome) -> bool:
        """Writes an attempt's outcome and frees the lease, only if `owner` still holds it."""
        ...

    def release(self, owner: str) -> None:
        """Frees every lease `owner` holds (its worker stops), so the next worker resends those at once."""
        ...
