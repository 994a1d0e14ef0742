"""Request dependencies: the app's services, the calling principal and permission checks. Routes reach the
database only through the services, each use case its own transaction, committed before the answer is sent.

Every dependency is `async def`, even those that never await: FastAPI runs a plain `def` one in its thread pool,
a thread hop per dependency per request (measured: most of an authenticated read's cost besides the database)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from chowder.api.audit import CALLER_ORG
from chowder.api.rate_limits import ORG_VERDICT
from chowder.api.state import AppState
from chowder.core.actors import act_as, current_actor
from chowder.core.errors import Forbidden, NotFound, RateLimited, Unauthorized
from chowder.core.ids import KEY_DISPLAY_CHARS
from chowder.domain.models import Permission, Principal


async def get_state(request: Request) -> AppState:
    return state_of(request)


State = Annotated[AppState, Depends(get_state)]


def state_of(request: Request) -> AppState:
    """The app's state for the routes pollers call most, which take the request instead of `State`: each
    dependency FastAPI solves costs a request ~30 us (a status read ~500 us in all). Those that also call their
    guard themselves (rather than as a dependency) declare `GUARDED` as their `openapi_extra`."""
    state: AppState = request.app.state.chowder
    return state


async def get_principal(request: Request) -> Principal:
    """Resolved once per request (`ApiKeys.authenticate`); the request is then charged to its organization's rate
    limit (`api/rate_limits.py`)."""
    state = state_of(request)
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Missing API key.")
    principal = await state.keys.authenticate(key)
    setattr(request.state, CALLER_ORG, principal.organization_id)
    act_as(replace(current_actor(), key_id=principal.key_id, key_prefix=key[:KEY_DISPLAY_CHARS]))
    verdict = state.rate_limits.organization(principal.organization_id)
    if verdict is not None:
        setattr(request.state, ORG_VERDICT, verdict)
        if not verdict.allowed:
            state.metrics.rate_limited.labels("organization").inc()
            detail = f"Rate limit exceeded: {verdict.limit} requests per minute for this organization."
            raise RateLimited(f"{detail} Retry after {verdict.retry_after_s} s.", verdict.headers())
    return principal


_SCHEME = "HTTPBearer"
# The OpenAPI document's security of a route that calls its guard itself: as for one that depends on it.
GUARDED: dict[str, Any] = {"security": [{_SCHEME: []}]}


class BearerKey(SecurityBase):
    """A guard: a dependency that authenticates the caller by the API key of its Authorization header. As a
    security scheme itself, FastAPI documents it on every route it guards (`HTTPBearer`), and it has no
    dependency of its own: each one FastAPI solves costs a request ~30 us, and pollers call these routes most."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="An organization key (chd_org_…) or a scoped key (chd_sk_…).")
        self.scheme_name = _SCHEME


class _OrgKey(BearerKey):
    async def __call__(self, request: Request) -> Principal:
        principal = await get_principal(request)
        if not principal.is_org:
            raise Forbidden("This endpoint requires an organization key.")
        return principal


OrgPrincipal = Annotated[Principal, Depends(_OrgKey())]


class InstanceGuard(BearerKey):
    """An instance route's guard: org keys pass; scoped keys need a grant on the instance (else 404,
    no existence leak) holding the permission (else 403). Whether the instance exists is the service's, but for
    a 403: a key held for a moment (`RecentKeys`) may still hold the grant of an instance deleted since, which
    is 404 as for a key that never had it."""

    def __init__(self, permission: Permission) -> None:
        super().__init__()
        self._permission = permission

    async def __call__(self, instance_id: str, request: Request) -> Principal:
        principal = await get_principal(request)
        if principal.is_org:
            return principal
        granted = principal.grants.get(instance_id)
        if granted is None:
            raise NotFound("Instance not found.")
        if self._permission not in granted:
            await state_of(request).instances.status(principal, instance_id)  # NotFound once deleted
            raise Forbidden(f"This key lacks the '{self._permission.value}' permission for this instance.")
        return principal


def require(permission: Permission) -> InstanceGuard:
    return InstanceGuard(permission)
