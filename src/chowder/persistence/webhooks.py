"""SQL repository of lifecycle webhooks (the port in `domain/ports/webhooks.py`): endpoints, the event outbox and
its deliveries, claimed by the delivery workers with a compare-and-set lease."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from chowder.core.pagination import PageRequest
from chowder.domain.ports.webhooks import (
    AttemptOutcome,
    DeliveryRecord,
    DeliveryStatus,
    DueDelivery,
    EndpointRecord,
    EventRecord,
)
from chowder.persistence.leases import lapsed
from chowder.persistence.pages import newest_first
from chowder.persistence.records import changed_one, columns_of, record_of
from chowder.persistence.tables import WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow

_PENDING = str(DeliveryStatus.PENDING)


class SqlWebhookRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_endpoint(self, endpoint: EndpointRecord) -> None:
        self._session.add(WebhookEndpointRow(**columns_of(endpoint)))

    def endpoints(self, org_id: str, page: PageRequest = PageRequest()) -> list[EndpointRecord]:
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.organization_id == org_id)
        rows = self._session.scalars(newest_first(query, WebhookEndpointRow.created_at, WebhookEndpointRow.id, page))
        return [record_of(EndpointRecord, row) for row in rows]

    def endpoint(self, org_id: str, endpoint_id: str) -> EndpointRecord | None:
        row = self._session.scalars(
            select(WebhookEndpointRow).where(
                WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.organization_id == org_id
            )
        ).one_or_none()
        return None if row is None else record_of(EndpointRecord, row)

    def delete_endpoint(self, org_id: str, endpoint_id: str) -> bool:
        mine = (WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.organization_id == org_id)
        if self._session.scalar(select(WebhookEndpointRow.id).where(*mine)) is None:
            return False
        self._session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id))
        return changed_one(self._session, delete(WebhookEndpointRow).where(*mine))

    def record(self, event: EventRecord, now: datetime) -> int:
        self._session.add(WebhookEventRow(**columns_of(event)))
        subscribed = [endpoint for endpoint in self.endpoints(event.organization_id) if event.type in endpoint.events]
        self._session.flush()  # the event row first: the deliveries refer to it
        for endpoint in subscribed:
            self._session.add(
                WebhookDeliveryRow(
                    id="whd_" + secrets.token_hex(16),
                    organization_id=event.organization_id,
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    event_type=event.type,
                    status=_PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=event.created_at,
                )
            )
        return len(subscribed)

    def deliveries(self, org_id: str, endpoint_id: str, page: PageRequest) -> list[DeliveryRecord]:
        query = select(WebhookDeliveryRow).where(
            WebhookDeliveryRow.organization_id == org_id, WebhookDeliveryRow.endpoint_id == endpoint_id
        )
        rows = self._session.scalars(newest_first(query, WebhookDeliveryRow.created_at, WebhookDeliveryRow.id, page))
        return [record_of(DeliveryRecord, row) for row in rows]

    def claim_due(self, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[DueDelivery]:
        due = self._session.scalars(
            select(WebhookDeliveryRow.id)
            .where(*_due(now))
            .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
            .limit(limit)
        ).all()
        claimed = [
            delivery_id
            for delivery_id in due
            if changed_one(
                self._session,
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id, *_due(now))
                .values(lease_owner=owner, lease_until=lease_until),
            )
        ]
        if not claimed:
            return []
        rows = self._session.execute(
            select(WebhookDeliveryRow.id, WebhookDeliveryRow.attempts, WebhookEndpointRow, WebhookEventRow)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
            .where(WebhookDeliveryRow.id.in_(claimed))
        )
        return [
            DueDelivery(delivery_id, attempts, endpoint.url, endpoint.secret_enc, record_of(EventRecord, event))
            for delivery_id, attempts, endpoint, event in rows
        ]

    def settle(self, delivery_id: str, owner: str, outcome: AttemptOutcome) -> bool:
        return changed_one(
            self._session,
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.lease_owner == owner)
            .values(
                status=str(outcome.status),
                attempts=WebhookDeliveryRow.attempts + 1,
                next_attempt_at=outcome.next_attempt_at,
                last_attempt_at=outcome.at,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                lease_owner=None,
                lease_until=None,
            ),
        )

    def release(self, owner: str) -> None:
        self._session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        WebhookDeliveryRow.status == _PENDING,
        WebhookDeliveryRow.next_attempt_at <= now,
        lapsed(WebhookDeliveryRow.lease_until, now),
    )
