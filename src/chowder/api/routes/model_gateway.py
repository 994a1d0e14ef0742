"""`/model/{provider}/...` on the sandbox-facing listener: the endpoint sandboxes' gateways call for every model
request, and only the routes each provider protocol needs."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response

from chowder.api.deps import State
from chowder.core.endpoints import MODEL_PATH
from chowder.core.errors import BadRequest, Unauthorized
from chowder.domain import model_access, usage
from chowder.domain.ports.tenancy import UsageEvent
from chowder.modelgw.forward import (
    MODEL_ROUTES,
    UpstreamUnavailable,
    echo_answer,
    forward,
    presented_credential,
    provider_error,
    upstreams,
)
from chowder.modelgw.usage import UsageMeter, model_of, session_of
from chowder.persistence.repositories import TenantRepository

router = APIRouter(include_in_schema=False)
log = logging.getLogger("chowder.modelgw")


@router.api_route(MODEL_PATH + "/{provider}/{tail:path}", methods=["GET", "POST"])
async def model_call(provider: str, tail: str, request: Request, state: State) -> Response:
    """Authenticated by the instance's own credential, never by a customer's API key. With the dev model on,
    the built-in echo model answers and the organization needs no provider key."""
    upstream = upstreams(state.settings).get(provider)
    if upstream is None:
        return provider_error(provider, 404, f"Unknown model provider '{provider}'.")
    if (request.method, tail.strip("/")) not in MODEL_ROUTES[provider]:
        return provider_error(provider, 404, f"Not a model route: {request.method} /{tail.strip('/')}.")
    credential = presented_credential(request)
    if credential is None:
        return provider_error(provider, 401, "Missing instance credential.")

    def lookup() -> model_access.ModelAccess:
        with state.db.session() as session:
            repo = TenantRepository(session)
            return model_access.resolve(repo, state.box, credential, provider, need_key=not state.settings.dev_model)

    try:
        access = await asyncio.to_thread(lookup)
    except Unauthorized as exc:
        return provider_error(provider, 401, str(exc.detail))
    except BadRequest as exc:
        return provider_error(provider, 400, str(exc.detail))
    body = await request.body()
    session_id = session_of(body)

    async def on_usage(meter: UsageMeter) -> None:
        event = UsageEvent(
            organization_id=access.organization_id,
            instance_id=access.instance_id,
            session_id=session_id,
            key_id=state.sessions.key_of(access.instance_id, session_id) if session_id else None,
            provider=provider,
            model=model_of(body),
            input_tokens=meter.input_tokens,
            output_tokens=meter.output_tokens,
        )

        def write() -> None:
            with state.db.session() as session:
                usage.record(session, event)

        try:
            await asyncio.to_thread(write)
        except Exception:
            log.exception("could not record usage of instance %s", access.instance_id)

    if access.api_key is None:
        return await echo_answer(provider, tail, request, on_usage)
    try:
        return await forward(
            state.http, upstream, access.api_key, tail, request, state.settings.model_timeout_s, on_usage
        )
    except UpstreamUnavailable as exc:
        return provider_error(provider, 502, str(exc))
