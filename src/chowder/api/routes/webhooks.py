"""Lifecycle webhook endpoints and their delivery logs (extension; org key only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from chowder.api.deps import OrgPrincipal, State
from chowder.api.pagination import PageParams, paged
from chowder.domain.ports.webhooks import DeliveryRecord, EndpointRecord
from chowder.schemas.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEndpointCreate, WebhookEndpointCreated

router = APIRouter(tags=["webhooks"])
_ENDPOINT_FIELDS = ("id", "url", "events", "description", "created_at")
_DELIVERY_FIELDS = tuple(WebhookDelivery.model_fields)


def _endpoint(record: EndpointRecord) -> WebhookEndpoint:
    return WebhookEndpoint.model_validate({name: getattr(record, name) for name in _ENDPOINT_FIELDS})


def _delivery(record: DeliveryRecord) -> WebhookDelivery:
    return WebhookDelivery.model_validate({name: getattr(record, name) for name in _DELIVERY_FIELDS})


@router.post("/v1/webhooks/endpoints", status_code=status.HTTP_201_CREATED)
async def create_endpoint(body: WebhookEndpointCreate, principal: OrgPrincipal, state: State) -> WebhookEndpointCreated:
    """Events are signed with `secret` (shown only here): `Chowder-Signature: t=<unix>,v1=<hex HMAC-SHA256>`."""
    record, secret = await state.webhooks.create(principal.organization_id, body.url, body.events, body.description)
    return WebhookEndpointCreated(**_endpoint(record).model_dump(), secret=secret)


@router.get("/v1/webhooks/endpoints")
async def list_endpoints(
    principal: OrgPrincipal, state: State, page: PageParams, request: Request, response: Response
) -> list[WebhookEndpoint]:
    """Newest first. Pages on request (`limit`, `cursor`)."""
    records = await state.webhooks.list(principal.organization_id, page)
    return [_endpoint(record) for record in paged(records, request, response)]


@router.get("/v1/webhooks/endpoints/{endpoint_id}")
async def get_endpoint(endpoint_id: str, principal: OrgPrincipal, state: State) -> WebhookEndpoint:
    return _endpoint(await state.webhooks.get(principal.organization_id, endpoint_id))


@router.delete("/v1/webhooks/endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(endpoint_id: str, principal: OrgPrincipal, state: State) -> Response:
    """At once; deliveries still pending are dropped."""
    await state.webhooks.delete(principal.organization_id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/webhooks/endpoints/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: str, principal: OrgPrincipal, state: State, page: PageParams, request: Request, response: Response
) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first. Pages on request (`limit`, `cursor`)."""
    records = await state.webhooks.deliveries(principal.organization_id, endpoint_id, page)
    return [_delivery(record) for record in paged(records, request, response)]
