"""Idempotency keys (extension): a request made again with the same key gets the first one's answer, never a
second run of its work. `api/idempotency.py` applies it to requests; this is its bookkeeping.

A key is the caller's own (the hash of its API key), kept 24 h. While the first request runs it holds a lease,
renewed every `HEARTBEAT_S`: a request arriving meanwhile is told it is in flight (409), and a request whose process
died leaves a lease that runs out, after which the same request may run again."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import timedelta

from chowder.core.clock import utcnow
from chowder.domain.ports.idempotency import KeyedRequest, StoredAnswer
from chowder.domain.ports.storage import Transactions, UnitOfWork

RETENTION = timedelta(hours=24)
LEASE = timedelta(seconds=60)
HEARTBEAT_S = 20.0


class IdempotencyKeys:
    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

    async def claim(self, caller: str, key: str, fingerprint: str) -> KeyedRequest | None:
        """None: the request is the caller's to run now; else what the key was first used for."""
        now = utcnow()
        return await self._tx(
            lambda uow: uow.idempotency.claim(caller, key, fingerprint, now + LEASE, now - RETENTION, now)
        )

    @contextlib.asynccontextmanager
    async def held(self, caller: str, key: str) -> AsyncIterator[None]:
        """The lease renewed while the request runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                await self._tx(functools.partial(_extend, caller=caller, key=key))

        renewal = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewal

    async def answer(self, caller: str, key: str, answer: StoredAnswer) -> None:
        await self._tx(lambda uow: uow.idempotency.answer(caller, key, answer))

    async def release(self, caller: str, key: str) -> None:
        """The request did not give an answer worth replaying: the key is free for a retry to run it."""
        await self._tx(lambda uow: uow.idempotency.release(caller, key))


def _extend(uow: UnitOfWork, caller: str, key: str) -> None:
    uow.idempotency.extend(caller, key, utcnow() + LEASE)
