"""API keys: authentication, scoped keys and their per-instance grants."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest, NotFound, Unauthorized
from chowder.core.ids import KEY_DISPLAY_CHARS, ORG_KEY_PREFIX, SCOPED_KEY_PREFIX, hash_key, new_api_key, new_id
from chowder.core.pagination import Cursor, Page, PageRequest
from chowder.domain import spend
from chowder.domain.models import KeyKind, Permission, Principal
from chowder.domain.ports.spend import Cap
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import Grant, KeyRecord
from chowder.domain.recent_keys import RecentKeys

# `last_used_at` is stamped at most this often, so authenticating is a write only once a minute per key.
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
    grants: list[Grant]
    # Spend caps: the key's cap (None: none) and its tokens this calendar month (UTC).
    monthly_token_limit: int | None
    monthly_tokens_used: int


def mint(
    uow: UnitOfWork, org_id: str, kind: KeyKind, name: str, expires_at: datetime | None, grants: Sequence[Grant]
) -> tuple[KeyRecord, str]:
    """Stores a new key of the org; the raw key is returned only here (we keep its hash and display prefix)."""
    raw = new_api_key(ORG_KEY_PREFIX if kind is KeyKind.ORG else SCOPED_KEY_PREFIX)
    key = KeyRecord(
        id=new_id(),
        organization_id=org_id,
        kind=kind,
        name=name,
        key_hash=hash_key(raw),
        key_prefix=raw[:KEY_DISPLAY_CHARS],
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
        created_at=utcnow(),
    )
    uow.keys.add(key, grants)
    return key, raw


class ApiKeys:
    """Authentication and the scoped-key use cases, each one transaction."""

    def __init__(self, tx: Transactions, recent: RecentKeys) -> None:
        self._tx = tx
        self._recent = recent
        self._lookups: dict[str, asyncio.Future[Principal]] = {}

    async def authenticate(self, raw_key: str) -> Principal:
        """Raises Unauthorized for unknown, revoked and expired keys alike, so the answer leaks nothing. A key
        that authenticated a moment ago is not looked up again (`RecentKeys`), and the requests that find it
        gone together share one lookup: each of a poller's connections missed it at the same instant once a
        second, and their lookups stalled every request in flight for 20-30 ms (the p99 of a status poll)."""
        key_hash = hash_key(raw_key)
        while True:
            held = self._recent.get(key_hash)
            if held is not None:
                return held
            ticket = self._recent.ticket()
            principal = await asyncio.shield(self._lookup(key_hash))
            if self._recent.ticket() == ticket:
                return principal
            # A revocation while the shared lookup ran, which may have read the key before it: look again.

    def _lookup(self, key_hash: str) -> asyncio.Future[Principal]:
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = self._lookups[key_hash] = asyncio.ensure_future(self._look_up(key_hash))
            lookup.add_done_callback(lambda done: self._looked_up(key_hash, done))
        return lookup

    async def _look_up(self, key_hash: str) -> Principal:
        ticket = self._recent.ticket()
        principal, expires_at = await self._tx(lambda uow: _authenticate(uow, key_hash))
        self._recent.put(key_hash, principal, expires_at, ticket)
        return principal

    def _looked_up(self, key_hash: str, done: asyncio.Future[Principal]) -> None:
        del self._lookups[key_hash]
        if not done.cancelled():
            done.exception()  # retrieved: the callers that awaited it may all have gone

    async def create_scoped(
        self,
        org_id: str,
        name: str,
        instance_ids: list[str],
        permissions: list[Permission],
        expires_at: datetime | None,
        monthly_token_limit: int | None = None,
    ) -> tuple[KeyView, str]:
        """A key limited to the given instances of the org and permissions, and to `monthly_token_limit` tokens a
        month; the raw key is returned only here. Raises BadRequest for an expiry in the past, NotFound for an
        instance the org does not have."""
        if expires_at is not None and expires_at <= utcnow():
            raise BadRequest("expires_at must be in the future.")
        perms = tuple(sorted(dict.fromkeys(permissions)))
        grants = [Grant(instance_id, perms) for instance_id in dict.fromkeys(instance_ids)]

        def create(uow: UnitOfWork) -> tuple[KeyView, str]:
            for grant in grants:
                if uow.instances.get(org_id, grant.instance_id) is None:
                    raise NotFound(f"Instance not found: {grant.instance_id}")
            key, raw = mint(uow, org_id, KeyKind.SCOPED, name, expires_at, grants)
            spend.set_limit(uow, org_id, key.id, monthly_token_limit)
            return _view(uow, key), raw

        return await self._tx(create)

    async def scoped(self, org_id: str, page: PageRequest = PageRequest()) -> Page[KeyView]:
        """The org's scoped keys, newest first, revoked and expired ones included (shown inactive)."""
        views = await self._tx(lambda uow: _views(uow, org_id, uow.keys.scoped(org_id, page)))
        return Page.of(views, page, Cursor.after)

    async def get_scoped(self, org_id: str, key_id: str) -> KeyView:
        """Raises NotFound for a key of another org, as for one that never existed."""
        return await self._tx(lambda uow: _view(uow, _scoped(uow, org_id, key_id)))

    async def set_token_limit(self, org_id: str, key_id: str, limit: int | None) -> KeyView:
        """Caps the key's monthly tokens (None lifts the cap), revoked keys' too. Raises NotFound."""

        def update(uow: UnitOfWork) -> KeyView:
            key = _scoped(uow, org_id, key_id)
            spend.set_limit(uow, org_id, key.id, limit)
            return _view(uow, key)

        return await self._tx(update)

    async def revoke(self, org_id: str, key_id: str) -> None:
        """Permanent and immediate; the key stays so the list can show it inactive. Raises NotFound."""

        def revoke(uow: UnitOfWork) -> None:
            key = _scoped(uow, org_id, key_id)
            if key.revoked_at is None:
                uow.keys.save(replace(key, revoked_at=utcnow()))

        await self._tx(revoke)
        self._recent.forget(key_id)


def _authenticate(uow: UnitOfWork, key_hash: str) -> tuple[Principal, datetime | None]:
    """The key's principal, and when the key expires."""
    key = uow.keys.by_hash(key_hash)
    now = utcnow()
    if key is None or not _active(key, now):
        raise Unauthorized("Invalid API key.")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        uow.keys.save(replace(key, last_used_at=now))
    grants = (
        {g.instance_id: frozenset(g.permissions) for g in uow.keys.grants(key.organization_id, key.id)}
        if key.kind is KeyKind.SCOPED
        else {}  # an org key reaches every instance of its org: no grant to read
    )
    principal = Principal(organization_id=key.organization_id, key_id=key.id, kind=key.kind, grants=grants)
    return principal, key.expires_at


def _scoped(uow: UnitOfWork, org_id: str, key_id: str) -> KeyRecord:
    key = uow.keys.get_scoped(org_id, key_id)
    if key is None:
        raise NotFound("Key not found.")
    return key


def _active(key: KeyRecord, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def _view(uow: UnitOfWork, key: KeyRecord) -> KeyView:
    [view] = _views(uow, key.organization_id, [key])
    return view


def _views(uow: UnitOfWork, org_id: str, keys: list[KeyRecord]) -> list[KeyView]:
    """The org's keys as shown, their caps read together."""
    caps = uow.spend.key_caps(org_id, [key.id for key in keys], spend.month_of(utcnow()))
    return [_one_view(uow, key, caps.get(key.id, spend.NO_CAP)) for key in keys]


def _one_view(uow: UnitOfWork, key: KeyRecord, cap: Cap) -> KeyView:
    return KeyView(
        id=key.id,
        organization_id=key.organization_id,
        name=key.name,
        key_prefix=key.key_prefix,
        is_active=_active(key, utcnow()),
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        created_at=key.created_at,
        grants=uow.keys.grants(key.organization_id, key.id),
        monthly_token_limit=cap.limit,
        monthly_tokens_used=cap.used,
    )
