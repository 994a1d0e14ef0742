"""Scoped API keys (org key only)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Response, status

from chowder.api.deps import OrgPrincipal, Repo
from chowder.domain import keys
from chowder.domain.models import Permission
from chowder.schemas.keys import InstanceGrant, Key, KeyCreate, KeyCreated, KeyDetail

router = APIRouter(tags=["keys"])


KeyModel = TypeVar("KeyModel", bound=Key)


def _key(view: keys.KeyView, model: type[KeyModel], **extra: object) -> KeyModel:
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
            **extra,
        }
    )


@router.post("/v1/keys", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, principal: OrgPrincipal, repo: Repo) -> KeyCreated:
    """A key limited to `instance_ids` with `permissions` on each; `raw_key` is shown only here."""
    view, raw = keys.create_scoped(
        repo,
        principal.organization_id,
        body.name,
        body.instance_ids,
        [Permission(p) for p in body.permissions],
        body.expires_at,
    )
    return _key(view, KeyCreated, raw_key=raw)


@router.get("/v1/keys")
def list_keys(principal: OrgPrincipal, repo: Repo) -> list[Key]:
    return [_key(view, Key) for view in keys.list_scoped(repo, principal.organization_id)]


@router.get("/v1/keys/{key_id}")
def get_key(key_id: str, principal: OrgPrincipal, repo: Repo) -> KeyDetail:
    view = keys.get_scoped(repo, principal.organization_id, key_id)
    grants = [InstanceGrant(instance_id=i, permissions=p) for i, p in view.instances]
    return _key(view, KeyDetail, instances=grants)


@router.delete("/v1/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: str, principal: OrgPrincipal, repo: Repo) -> Response:
    """Immediate and permanent."""
    keys.revoke(repo, principal.organization_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
