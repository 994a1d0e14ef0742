"""Webhooks in the SDK (extension): the endpoint routes as `Call`s, and what a receiver needs to trust a delivery.

from chowder.client import WebhookSignatureError, verify_webhook

event = verify_webhook(request_body, request.headers["Chowder-Signature"], "whsec_...")
if not already_seen(event.id):   # deliveries are at least once: de-duplicate on the event id
    handle(event.type, event.data)
"""

from __future__ import annotations

from collections.abc import Sequence

from chowder.client.calls import Call, Page, body, call, nothing, one, page
from chowder.client.routes import segment
from chowder.core.webhooks import DEFAULT_TOLERANCE_S, verify
from chowder.schemas.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEvent,
)

_ENDPOINTS = "/v1/webhooks/endpoints"


def verify_webhook(payload: bytes, header: str, secret: str, tolerance_s: float = DEFAULT_TOLERANCE_S) -> WebhookEvent:
    """The event a delivery carries, once its `Chowder-Signature` header proves it was signed with `secret` over
    exactly these bytes (the raw body, before any JSON parsing) within `tolerance_s` of now; else raises
    `WebhookSignatureError`."""
    verify(payload, header, secret, tolerance_s)
    return WebhookEvent.model_validate_json(payload)


def create_webhook_endpoint(
    url: str,
    *,
    events: Sequence[str] | None = None,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> Call[WebhookEndpointCreated]:
    """An endpoint for `events` (all when None); its signing `secret` is in this answer only."""
    fields = {"url": url} | ({} if events is None else {"events": list(events)})
    fields |= {} if description is None else {"description": description}
    payload = body(WebhookEndpointCreate.model_validate(fields))
    return call("POST", _ENDPOINTS, one(WebhookEndpointCreated), json=payload, idempotency_key=idempotency_key)


def list_webhook_endpoints() -> Call[list[WebhookEndpoint]]:
    """Every endpoint of the organization, newest first."""
    return call("GET", _ENDPOINTS, page(WebhookEndpoint)).then(lambda found: found.items)


def get_webhook_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    return call("GET", f"{_ENDPOINTS}/{segment(endpoint_id)}", one(WebhookEndpoint))


def delete_webhook_endpoint(endpoint_id: str) -> Call[None]:
    """At once; its pending deliveries are dropped."""
    return call("DELETE", f"{_ENDPOINTS}/{segment(endpoint_id)}", nothing)


def webhook_deliveries(endpoint_id: str, *, limit: int, cursor: str | None = None) -> Call[Page[WebhookDelivery]]:
    """One page of the endpoint's delivery log, newest first; pass `next_cursor` back as `cursor` for the next."""
    path = f"{_ENDPOINTS}/{segment(endpoint_id)}/deliveries"
    return call("GET", path, page(WebhookDelivery), params={"limit": limit, "cursor": cursor})
