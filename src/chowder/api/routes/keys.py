"""Scoped API keys (org key only)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request, Response, status

from chowder.api.deps import OrgPrincipal, State
from chowder.api.pagination import PageParams, paged
from chowder.domain.keys import KeyView
from chowder.domain.models import Permission
from chowder.schemas.keys import InstanceGrant, Key, KeyCreate, KeyCreated, KeyDetail, KeyUpdate

router = APIRouter(tags=["keys"])


KeyModel = TypeVar("KeyModel", bound=Key)


def _key(view: KeyView, model: type[KeyModel], **extra: object) -> KeyModel:
    return model.model_validate(
        {
            "id": view.id,
            "organization_id": view.organization_id,
            "name": view.name,
            "key_prefix": view.key_prefix,
            "is_active": view.is_active,
            "expires_at": view.expires_at,
            "last_used_at": view.last_used_at,
            "created_at": view.created_at,
            "monthly_token_limit": view.monthly_token_limit,
            "monthly_tokens_used": view.monthly_tokens_used,
            **extra,
        }
    )


@router.post("/v1/keys", status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyCreate, principal: OrgPrincipal, state: State) -> KeyCreated:
    """A key limited to `instance_ids` with `permissions` on each; `raw_key` is shown only here."""
    permissions = [Permission(p) for p in body.permissions]
    view, raw = await state.keys.create_scoped(
        principal.organization_id, body.name, body.instance_ids, permissions, body.expires_at, body.monthly_token_limit
    )
    return _key(view, KeyCreated, raw_key=raw)


@router.get("/v1/keys")
async def list_keys(
    principal: OrgPrincipal, state: State, page: PageParams, request: Request, response: Response
) -> list[Key]:
    """Newest first. Pages on request (`limit`, `cursor`: extension)."""
    views = await state.keys.scoped(principal.organization_id, page)
    return [_key(view, Key) for view in paged(views, request, response)]


@router.get("/v1/keys/{key_id}")
async def get_key(key_id: str, principal: OrgPrincipal, state: State) -> KeyDetail:
    return _detail(await state.keys.get_scoped(principal.organization_id, key_id))


@router.patch("/v1/keys/{key_id}")
async def update_key(key_id: str, body: KeyUpdate, principal: OrgPrincipal, state: State) -> KeyDetail:
    """Extension. `monthly_token_limit` caps the tokens of the key's chat turns per calendar month (UTC); null
    lifts the cap. A field not given is kept."""
    if "monthly_token_limit" not in body.model_fields_set:
        return await get_key(key_id, principal, state)
    limit = body.monthly_token_limit
    return _detail(await state.keys.set_token_limit(principal.organization_id, key_id, limit))


def _detail(view: KeyView) -> KeyDetail:
    grants = [
        InstanceGrant(instance_id=g.instance_id, permissions=[p.value for p in g.permissions]) for g in view.grants
    ]
    return _key(view, KeyDetail, instances=grants)


@router.delete("/v1/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: str, principal: OrgPrincipal, state: State) -> Response:
    """Immediate and permanent."""
    await state.keys.revoke(principal.organization_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
