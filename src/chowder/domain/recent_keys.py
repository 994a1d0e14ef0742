"""The principals of keys authenticated a moment ago, so a client polling a route does not pay a database
transaction (and a thread hop, which under load waits on the GIL) for its key on every request.

Only keys that authenticated are held, each for at most `ttl_s` and never past its own expiry, so an expired key
is refused on time. A revocation made through this process drops the key here at once; one made through another
process (a worker, a replica) takes effect here within `ttl_s`: the bound the operator chooses
(`CHOWDER_AUTH_CACHE_S`), as Kubernetes' webhook token authenticator does with its cache TTL. A scoped key's
grants never change after its creation except when their instance is deleted, which then answers 404 anyway, so
they are safe to hold."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from chowder.core.clock import utcnow
from chowder.domain.models import Principal


@dataclass(frozen=True, slots=True)
class _Held:
    principal: Principal
    until_monotonic: float
    key_expires_at: datetime | None


class RecentKeys:
    """By key hash, bounded to `capacity` keys (the oldest goes first). Used from the event loop's thread only."""

    def __init__(self, ttl_s: float, capacity: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._held: dict[str, _Held] = {}
        self._revocations = 0

    def ticket(self) -> int:
        """Taken before a lookup and handed to `put`: a key read before a revocation made meanwhile is not held,
        since the lookup may have seen it still active."""
        return self._revocations

    def get(self, key_hash: str) -> Principal | None:
        held = self._held.get(key_hash)
        if held is None:
            return None
        if held.until_monotonic <= time.monotonic() or (
            held.key_expires_at is not None and held.key_expires_at <= utcnow()
        ):
            del self._held[key_hash]
            return None
        return held.principal

    def put(self, key_hash: str, principal: Principal, key_expires_at: datetime | None, ticket: int) -> None:
        if self._ttl_s <= 0 or ticket != self._revocations:
            return
        self._held.pop(key_hash, None)
        while len(self._held) >= self._capacity:
            del self._held[next(iter(self._held))]
        self._held[key_hash] = _Held(principal, time.monotonic() + self._ttl_s, key_expires_at)

    def forget(self, key_id: str) -> None:
        """Drops the key (revoked through this process)."""
        self._revocations += 1
        for key_hash in [h for h, held in self._held.items() if held.principal.key_id == key_id]:
            del self._held[key_hash]
