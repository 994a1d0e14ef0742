"""API keys: authentication, scoped keys and their per-instance grants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest, NotFound, Unauthorized
from chowder.core.ids import KEY_DISPLAY_CHARS, SCOPED_KEY_PREFIX, hash_key, new_api_key, new_id
from chowder.domain.models import KeyKind, Permission, Principal
from chowder.persistence.repositories import TenantRepository
from chowder.persistence.tables import ApiKeyRow, KeyGrantRow

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    organization_id: str
    name: str
    key_prefix: str
    is_active: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    instances: list[tuple[str, list[str]]]


def authenticate(repo: TenantRepository, raw_key: str) -> Principal:
    """Unknown, revoked and expired keys get the same answer, so the answer leaks nothing."""
    row = repo.key_by_hash(hash_key(raw_key))
    now = utcnow()
    if row is None or not _active(row, now):
        raise Unauthorized("Invalid API key.")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    grants = {g.instance_id: frozenset(Permission(p) for p in g.permissions) for g in repo.grants(row.id)}
    return Principal(organization_id=row.organization_id, key_id=row.id, kind=KeyKind(row.kind), grants=grants)


def create_scoped(
    repo: TenantRepository,
    org_id: str,
    name: str,
    instance_ids: list[str],
    permissions: list[Permission],
    expires_at: datetime | None,
) -> tuple[KeyView, str]:
    """A key limited to the given instances and permissions; the raw key is returned only here."""
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise BadRequest("expires_at must be in the future.")
    for instance_id in dict.fromkeys(instance_ids):
        if repo.instance(org_id, instance_id) is None:
            raise NotFound(f"Instance not found: {instance_id}")
    raw = new_api_key(SCOPED_KEY_PREFIX)
    row = ApiKeyRow(
        id=new_id(),
        organization_id=org_id,
        kind=KeyKind.SCOPED,
        name=name,
        key_hash=hash_key(raw),
        key_prefix=raw[:KEY_DISPLAY_CHARS],
        expires_at=expires_at,
        created_at=now,
    )
    repo.add(row)
    perms = sorted(dict.fromkeys(p.value for p in permissions))
    for instance_id in dict.fromkeys(instance_ids):
        repo.add(KeyGrantRow(key_id=row.id, instance_id=instance_id, permissions=perms))
    return _view(repo, row), raw


def list_scoped(repo: TenantRepository, org_id: str) -> list[KeyView]:
    return [_view(repo, row) for row in repo.scoped_keys(org_id)]


def get_scoped(repo: TenantRepository, org_id: str, key_id: str) -> KeyView:
    row = repo.scoped_key(org_id, key_id)
    if row is None:
        raise NotFound("Key not found.")
    return _view(repo, row)


def revoke(repo: TenantRepository, org_id: str, key_id: str) -> None:
    """Permanent and immediate; the row stays so the list can show it inactive."""
    row = repo.scoped_key(org_id, key_id)
    if row is None:
        raise NotFound("Key not found.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        repo.session.flush()


def _active(row: ApiKeyRow, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def _view(repo: TenantRepository, row: ApiKeyRow) -> KeyView:
    return KeyView(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        key_prefix=row.key_prefix,
        is_active=_active(row, utcnow()),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        instances=[(g.instance_id, list(g.permissions)) for g in repo.grants(row.id)],
    )
