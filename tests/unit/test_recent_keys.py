"""Keys that authenticated a moment ago are not looked up again, and a revocation, an expiry or a lookup that
raced a revocation is never papered over by what is held."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest

from chowder.core.clock import utcnow
from chowder.core.errors import Unauthorized
from chowder.domain.keys import ApiKeys, mint
from chowder.domain.models import KeyKind, Permission, Principal
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import Grant
from chowder.domain.recent_keys import RecentKeys
from chowder.persistence.store import SqlTransactions
from tests.factories import add_instance_of, new_org

T = TypeVar("T")


class CountingTransactions:
    """The real transactions, counted. With `hold` set, the next one, once done, waits for `release` before its
    caller sees the answer (`done` tells it is done): a revocation can then commit in between."""

    def __init__(self, tx: SqlTransactions) -> None:
        self._tx = tx
        self.count = 0
        self.hold = False
        self.done, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        self.count += 1
        held, self.hold = self.hold, False
        answer = await self._tx(work)
        if held:
            self.done.set()
            await self.release.wait()
        return answer


def scoped_key(tx: SqlTransactions, expires_in: timedelta | None = None) -> tuple[str, str, str]:
    """A new org's scoped key on one of its instances: (org id, key id, raw key)."""
    org_id = new_org(tx, "Keys")

    def make(uow: UnitOfWork) -> tuple[str, str]:
        instance_id = add_instance_of(uow, org_id)
        expires_at = None if expires_in is None else utcnow() + expires_in
        key, raw = mint(uow, org_id, KeyKind.SCOPED, "k", expires_at, [Grant(instance_id, (Permission.READ,))])
        return key.id, raw

    key_id, raw = tx.run_sync(make)
    return org_id, key_id, raw


def test_a_key_is_looked_up_once_within_the_ttl_and_again_after_it(tx: SqlTransactions) -> None:
    counted = CountingTransactions(tx)
    keys = ApiKeys(counted, RecentKeys(ttl_s=0.3))
    _, key_id, raw = scoped_key(tx)

    async def scenario() -> None:
        first = await keys.authenticate(raw)
        assert (await keys.authenticate(raw)) == first and first.key_id == key_id
        assert counted.count == 1, "the second request was served from what is held"
        await asyncio.sleep(0.35)
        await keys.authenticate(raw)
        assert counted.count == 2, "looked up again once the ttl passed"

    asyncio.run(scenario())


def test_a_revocation_through_this_process_refuses_the_key_at_once(tx: SqlTransactions) -> None:
    keys = ApiKeys(tx, RecentKeys(ttl_s=60))
    org_id, key_id, raw = scoped_key(tx)

    async def scenario() -> None:
        await keys.authenticate(raw)
        await keys.revoke(org_id, key_id)
        with pytest.raises(Unauthorized):
            await keys.authenticate(raw)

    asyncio.run(scenario())


def test_a_lookup_that_raced_a_revocation_is_made_again_and_never_held(tx: SqlTransactions) -> None:
    """The lookup reads the key active; the revocation commits before the lookup's answer is used: held, the key
    would outlive its revocation by a ttl in this process; answered, a request would pass after it."""
    org_id, key_id, raw = scoped_key(tx)

    async def scenario() -> None:
        counted = CountingTransactions(tx)
        keys = ApiKeys(counted, RecentKeys(ttl_s=60))
        counted.hold = True
        lookup = asyncio.ensure_future(keys.authenticate(raw))
        await counted.done.wait()  # the lookup has read the key, still active
        await keys.revoke(org_id, key_id)
        counted.release.set()
        with pytest.raises(Unauthorized):
            await lookup
        with pytest.raises(Unauthorized):
            await keys.authenticate(raw)

    asyncio.run(scenario())


def test_requests_that_miss_a_key_together_share_one_lookup(tx: SqlTransactions) -> None:
    """Every connection of a poller misses the key at the same instant once its ttl ends."""
    _, key_id, raw = scoped_key(tx)

    async def scenario() -> None:
        counted = CountingTransactions(tx)
        keys = ApiKeys(counted, RecentKeys(ttl_s=60))
        principals = await asyncio.gather(*(keys.authenticate(raw) for _ in range(32)))
        assert {principal.key_id for principal in principals} == {key_id}
        assert counted.count == 1

    asyncio.run(scenario())


def test_a_refusal_reaches_every_request_that_shared_the_lookup(tx: SqlTransactions) -> None:
    keys = ApiKeys(tx, RecentKeys(ttl_s=60))

    async def scenario() -> list[BaseException | Principal]:
        return await asyncio.gather(*(keys.authenticate("chd_sk_unknown") for _ in range(3)), return_exceptions=True)

    assert all(isinstance(outcome, Unauthorized) for outcome in asyncio.run(scenario()))


def test_a_held_key_is_refused_once_it_expires(tx: SqlTransactions) -> None:
    keys = ApiKeys(tx, RecentKeys(ttl_s=60))
    _, _, raw = scoped_key(tx, expires_in=timedelta(seconds=0.5))

    async def scenario() -> None:
        await keys.authenticate(raw)
        await asyncio.sleep(0.6)
        with pytest.raises(Unauthorized):
            await keys.authenticate(raw)

    asyncio.run(scenario())


def test_a_zero_ttl_looks_every_key_up(tx: SqlTransactions) -> None:
    counted = CountingTransactions(tx)
    keys = ApiKeys(counted, RecentKeys(ttl_s=0))
    _, _, raw = scoped_key(tx)

    async def scenario() -> None:
        for _ in range(3):
            await keys.authenticate(raw)

    asyncio.run(scenario())
    assert counted.count == 3


def test_the_oldest_key_goes_first_past_the_capacity(tx: SqlTransactions) -> None:
    counted = CountingTransactions(tx)
    keys = ApiKeys(counted, RecentKeys(ttl_s=60, capacity=2))
    raws = [scoped_key(tx)[2] for _ in range(3)]

    async def scenario() -> None:
        for raw in raws:
            await keys.authenticate(raw)
        await keys.authenticate(raws[2])
        await keys.authenticate(raws[1])
        assert counted.count == 3, "the two newest are held"
        await keys.authenticate(raws[0])
        assert counted.count == 4, "the oldest was dropped"

    asyncio.run(scenario())
