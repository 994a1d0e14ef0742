"""`/internal/model/{provider}/...`: the endpoint sandboxes' gateways call for every model request."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from chowder.api.deps import State
from chowder.core.errors import BadRequest, Unauthorized
from chowder.domain import model_access
from chowder.modelgw.forward import UpstreamUnavailable, forward, presented_credential, provider_error, upstreams
from chowder.persistence.repositories import TenantRepository

router = APIRouter(include_in_schema=False)


@router.api_route("/internal/model/{provider}/{tail:path}", methods=["GET", "POST"])
async def model_call(provider: str, tail: str, request: Request, state: State) -> Response:
    """Authenticated by the instance's own credential, never by a customer's API key."""
    upstream = upstreams(state.settings).get(provider)
    if upstream is None:
        return provider_error(provider, 404, f"Unknown model provider '{provider}'.")
    credential = presented_credential(request)
    if credential is None:
        return provider_error(provider, 401, "Missing instance credential.")

    def lookup() -> model_access.ModelAccess:
        with state.db.session() as session:
            return model_access.resolve(TenantRepository(session), state.box, credential, provider)

    try:
        access = await asyncio.to_thread(lookup)
    except Unauthorized as exc:
        return provider_error(provider, 401, str(exc.detail))
    except BadRequest as exc:
        return provider_error(provider, 400, str(exc.detail))
    try:
        return await forward(state.http, upstream, access.api_key, tail, request, state.settings.model_timeout_s)
    except UpstreamUnavailable as exc:
        return provider_error(provider, 502, str(exc))
