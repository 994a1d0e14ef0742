"""Token buckets (the rate limits extension): each caller may spend `capacity` requests at once and gets them back
at `capacity / period_s` per second. Held in this process's memory: a request is checked without a database
round trip, and with several API replicas each enforces its own buckets (a caller spread over N replicas gets up
to N times the quota; put the limits behind a sticky balancer, or divide them by N). The workers of one
`chowder serve --workers N` divide them by N themselves (`Quotas.of`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from chowder.core.settings import Settings

# Buckets are dropped once full again (an idle caller costs nothing) whenever this many are held.
_PRUNE_AT = 10_000


@dataclass(frozen=True, slots=True)
class Quota:
    """`capacity` requests per `period_s`; 0 is no limit."""

    capacity: int
    period_s: float

    @property
    def rate(self) -> float:
        return self.capacity / self.period_s


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the X-RateLimit headers say: the quota, what is left, when the bucket is full again (Unix seconds);
    `retry_after_s` only when the request was refused."""

    limit: int
    remaining: int
    reset: int
    retry_after_s: int | None = None

    @property
    def allowed(self) -> bool:
        return self.retry_after_s is None

    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        ]
        return headers if self.allowed else [*headers, ("Retry-After", str(self.retry_after_s))]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def charge(self, kind: str, who: str, quota: Quota) -> Verdict | None:
        """Takes one request from `who`'s bucket of `kind`; None when `quota` sets no limit."""
        if quota.capacity <= 0:
            return None
        now = self._clock()
        if len(self._buckets) >= _PRUNE_AT:
            self._prune(now, quota)
        bucket = self._buckets.setdefault((kind, who), _Bucket(float(quota.capacity), now))
        bucket.tokens = min(quota.capacity, bucket.tokens + (now - bucket.at) * quota.rate)
        bucket.at = now
        refused = bucket.tokens < 1
        if not refused:
            bucket.tokens -= 1
        reset = math.ceil(self._wall() + (quota.capacity - bucket.tokens) / quota.rate)
        retry_after = math.ceil((1 - bucket.tokens) / quota.rate) if refused else None
        return Verdict(quota.capacity, math.floor(bucket.tokens), reset, retry_after)

    def _prune(self, now: float, quota: Quota) -> None:
        """Drops the buckets that have had time to fill up again (as if at `quota`'s rate: a bucket of a larger
        quota dropped early only starts full a little sooner)."""
        full = [key for key, bucket in self._buckets.items() if (now - bucket.at) * quota.rate >= quota.capacity]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True, slots=True)
class Quotas:
    key: Quota
    org: Quota
    signup: Quota

    @classmethod
    def of(cls, settings: Settings) -> Quotas:
        """The settings' quotas, each divided among the server's workers (at least 1 each): every worker holds
        its own buckets and the kernel spreads connections across them, so no caller gets past a quota; one on
        a single connection reaches one worker and gets its share."""

        def share(capacity: int) -> int:
            return max(1, capacity // settings.workers) if capacity else 0  # 0 stays "no limit"

        return cls(
            key=Quota(share(settings.rate_limit_key_per_min), 60),
            org=Quota(share(settings.rate_limit_org_per_min), 60),
            signup=Quota(share(settings.rate_limit_signup_per_hour), 3600),
        )


class ApiRateLimits:
    """The API's buckets: per API key (or client address), per organization, and signups per client address."""

    def __init__(self, quotas: Quotas, limiter: RateLimiter | None = None) -> None:
        self.quotas = quotas
        self._limiter = limiter or RateLimiter()

    def caller(self, kind: str, who: str) -> Verdict | None:
        return self._limiter.charge(kind, who, self.quotas.key)

    def organization(self, org_id: str) -> Verdict | None:
        return self._limiter.charge("org", org_id, self.quotas.org)

    def signup(self, address: str) -> Verdict | None:
        return self._limiter.charge("signup", address, self.quotas.signup)
