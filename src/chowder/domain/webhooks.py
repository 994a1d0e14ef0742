"""Lifecycle webhooks (extension): an organization's endpoints, and the one call every feature makes to announce
an event (`record_event`).

An event is written to an outbox in the transaction of the change it announces, with one delivery row per
subscribed endpoint, so it is announced if and only if the change committed, and a restart loses nothing; the
delivery worker (`domain/webhook_delivery.py`) sends it later. The lifecycle's own events (`instance.running`,
`.stopped`, `.error`, `.deleted`) are recorded by the transition itself (`lifecycle.TRANSITIONS`, `announced`).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, NotFound
from chowder.core.pagination import Cursor, Page, PageRequest
from chowder.core.webhooks import EVENT_TYPES, SECRET_PREFIX
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.webhooks import DeliveryRecord, EndpointRecord, EventRecord, WebhookRepository

MAX_URL_CHARS = 2048
_NOT_FOUND = "Webhook endpoint not found."


def new_event(org_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
    """An event of the org, now, with its own id (receivers de-duplicate on it). ValueError for a type that is not
    one of EVENT_TYPES: a caller's mistake, never a client's."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not a webhook event type: {event_type!r}")
    return EventRecord("evt_" + secrets.token_hex(16), org_id, event_type, data, utcnow())


def announce(webhooks: WebhookRepository, org_id: str, event_type: str, data: dict[str, Any]) -> str:
    """`record_event` on a repository (the instance repository's transitions, which hold no unit of work)."""
    event = new_event(org_id, event_type, data)
    webhooks.record(event, event.created_at)
    return event.id


def record_event(uow: UnitOfWork, org_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Records `event_type` with `data` (JSON) for the org's subscribed endpoints, in `uow`'s transaction: sent
    once that commits, never if it rolls back. The event's id ("evt_…")."""
    return announce(uow.webhooks, org_id, event_type, data)


def subscribed_types(events: list[str] | None) -> list[str]:
    """The event types an endpoint asks for, in EVENT_TYPES order (all when not given); BadRequest naming an
    unknown one."""
    if events is None:
        return list(EVENT_TYPES)
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise BadRequest(f"Unknown event type '{unknown[0]}'. Known types: {', '.join(EVENT_TYPES)}.")
    if not events:
        raise BadRequest("`events` must name at least one event type; leave it out to receive all of them.")
    return [name for name in EVENT_TYPES if name in events]


def checked_url(url: str) -> str:
    """An absolute http(s) URL with a host; BadRequest otherwise. Where it points is checked at every delivery
    (`webhook_delivery.AddressGuard`), since a name may resolve elsewhere later."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        httpx.URL(url)  # what the delivery worker will send to
    except (ValueError, httpx.InvalidURL):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL_CHARS:
        raise BadRequest(f"Webhook URL must be an absolute http or https URL of at most {MAX_URL_CHARS} characters.")
    return url


class Webhooks:
    """The endpoint use cases of the API (org key only)."""

    def __init__(self, tx: Transactions, box: SecretBox) -> None:
        self._tx = tx
        self._box = box

    async def create(
        self, org_id: str, url: str, events: list[str] | None, description: str | None
    ) -> tuple[EndpointRecord, str]:
        """The new endpoint and its signing secret ("whsec_…"), which only this answer shows."""
        secret = SECRET_PREFIX + secrets.token_hex(32)
        endpoint = EndpointRecord(
            id="whe_" + secrets.token_hex(16),
            organization_id=org_id,
            url=checked_url(url),
            events=subscribed_types(events),
            description=description,
            secret_enc=self._box.encrypt(secret),
            created_at=utcnow(),
        )
        await self._tx(lambda uow: uow.webhooks.add_endpoint(endpoint))
        return endpoint, secret

    async def list(self, org_id: str, page: PageRequest) -> Page[EndpointRecord]:
        found = await self._tx(lambda uow: uow.webhooks.endpoints(org_id, page))
        return Page.of(found, page, Cursor.after)

    async def get(self, org_id: str, endpoint_id: str) -> EndpointRecord:
        return await self._tx(lambda uow: _endpoint(uow, org_id, endpoint_id))

    async def delete(self, org_id: str, endpoint_id: str) -> None:
        """At once: its pending deliveries are dropped with it."""
        if not await self._tx(lambda uow: uow.webhooks.delete_endpoint(org_id, endpoint_id)):
            raise NotFound(_NOT_FOUND)

    async def deliveries(self, org_id: str, endpoint_id: str, page: PageRequest) -> Page[DeliveryRecord]:
        def read(uow: UnitOfWork) -> list[DeliveryRecord]:
            _endpoint(uow, org_id, endpoint_id)
            return uow.webhooks.deliveries(org_id, endpoint_id, page)

        return Page.of(await self._tx(read), page, Cursor.after)


def _endpoint(uow: UnitOfWork, org_id: str, endpoint_id: str) -> EndpointRecord:
    found = uow.webhooks.endpoint(org_id, endpoint_id)
    if found is None:
        raise NotFound(_NOT_FOUND)
    return found
