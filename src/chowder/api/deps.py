"""Request dependencies: the app's services, the calling principal and permission checks. Routes reach the
database only through the services, each use case its own transaction, committed before the answer is sent.

Every dependency is `async def`, even those that never await: FastAPI runs a plain `def` one in its thread pool,
a thread hop per dependency per request (measured: most of an authenticated read's cost besides the database)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chowder.api.audit import CALLER_ORG
from chowder.api.rate_limits import ORG_VERDICT
from chowder.api.state import AppState
from chowder.core.actors import act_as, current_actor
from chowder.core.errors import Forbidden, NotFound, RateLimited, Unauthorized
from chowder.core.ids import KEY_DISPLAY_CHARS
from chowder.domain.models import Permission, Principal

_bearer = HTTPBearer(auto_error=False, description="An organization key (chd_org_…) or a scoped key (chd_sk_…).")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.chowder
    return state


State = Annotated[AppState, Depends(get_state)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(request: Request, credentials: Credentials) -> Principal:
    """Resolved once per request (`ApiKeys.authenticate`); the request is then charged to its organization's rate
    limit (`api/rate_limits.py`). Reads the app's state itself: each dependency FastAPI solves costs a request
    tens of microseconds."""
    state: AppState = request.app.state.chowder
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing API key.")
    principal = await state.keys.authenticate(credentials.credentials)
    setattr(request.state, CALLER_ORG, principal.organization_id)
    key_prefix = credentials.credentials[:KEY_DISPLAY_CHARS]
    act_as(replace(current_actor(), key_id=principal.key_id, key_prefix=key_prefix))
    verdict = state.rate_limits.organization(principal.organization_id)
    if verdict is not None:
        setattr(request.state, ORG_VERDICT, verdict)
        if not verdict.allowed:
            state.metrics.rate_limited.labels("organization").inc()
            detail = f"Rate limit exceeded: {verdict.limit} requests per minute for this organization."
            raise RateLimited(f"{detail} Retry after {verdict.retry_after_s} s.", verdict.headers())
    return principal


AnyPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_org_principal(principal: AnyPrincipal) -> Principal:
    if not principal.is_org:
        raise Forbidden("This endpoint requires an organization key.")
    return principal


OrgPrincipal = Annotated[Principal, Depends(get_org_principal)]


def require(
    permission: Permission,
) -> Callable[[str, Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """An instance route's guard: org keys pass; scoped keys need a grant on the instance (else 404,
    no existence leak) holding the permission (else 403). Whether the instance exists is the service's, but for
    a 403: a key held for a moment (`RecentKeys`) may still hold the grant of an instance deleted since, which
    is 404 as for a key that never had it."""

    async def check(instance_id: str, request: Request, credentials: Credentials) -> Principal:
        principal = await get_principal(request, credentials)
        if principal.is_org:
            return principal
        granted = principal.grants.get(instance_id)
        if granted is None:
            raise NotFound("Instance not found.")
        if permission not in granted:
            state: AppState = request.app.state.chowder
            await state.instances.status(principal, instance_id)  # NotFound once deleted
            raise Forbidden(f"This key lacks the '{permission.value}' permission for this instance.")
        return principal

    return check
