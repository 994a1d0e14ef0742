"""The warm pool on the engine: members booted ahead of demand, a create claiming one (its sandbox, credentials
and config become the instance's), the pool refilling, a member that fails to take over, and the sweeps that
must and must not remove members; no refill without memory for it. A real database, the fake provider and runtime."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from chowder.core.clock import utcnow
from chowder.core.ids import hash_key, sandbox_id_for
from chowder.domain import warm_pool
from chowder.domain.admission import HostMemory
from chowder.domain.model_calls import warm_up_session
from chowder.domain.models import Status
from chowder.domain.ports.warm_pool import WarmGateway, WarmState
from chowder.domain.reconciler import Engine
from tests.fakes.engine_env import EngineEnv, running
from tests.fakes.runtime import RELEASE

pytestmark = pytest.mark.persistence


@pytest.fixture
def pooled(env: EngineEnv) -> EngineEnv:
    """One warm member on the fake provider (settings can only name a real provider: copied without checks)."""
    env.settings = env.settings.model_copy(update={"warm_pool_size": 1, "sandbox_provider": "fake"})
    return env


def _members(env: EngineEnv) -> list[WarmGateway]:
    return env.tx.run_sync(lambda uow: uow.warm_pool.members("fake", RELEASE))


async def _until_ready(env: EngineEnv, count: int, excluding: frozenset[str] = frozenset()) -> list[WarmGateway]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        ready = [m for m in _members(env) if m.state == WarmState.READY and m.sandbox_id not in excluding]
        if len(ready) >= count:
            return ready
        assert loop.time() < deadline, f"the pool did not fill: {_members(env)}"
        await asyncio.sleep(0.02)


def test_a_create_claims_a_warm_gateway_which_becomes_its_own_and_the_pool_refills(pooled: EngineEnv) -> None:
    env = pooled

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
            assert env.provider.is_running(member.sandbox_id)
            assert env.provider.sandboxes_by_id[member.sandbox_id].spec.labels == {"warm_pool": f"fake/{RELEASE}"}
            assert env.provider.sandboxes_by_id[member.sandbox_id].spec.egress == "none", "it serves nobody yet"
            assert env.runtime.warmed_up == [warm_up_session(member.sandbox_id)]

            created = env.add(egress="open")
            claimed = await env.until_status(created.id, Status.RUNNING)
            assert claimed.sandbox_id == member.sandbox_id != sandbox_id_for(created.id)
            assert claimed.gateway_url == f"http://{member.sandbox_id}.fake:18789"
            assert env.provider.count("start", member.sandbox_id) == 1, "claimed, not booted again"
            assert claimed.model_token_hash == member.model_token_hash != created.model_token_hash
            gateway_token = env.box.decrypt(claimed.gateway_token_enc)
            assert gateway_token == env.box.decrypt(member.gateway_token_enc)
            assert env.runtime.launched_tokens[0] == gateway_token, "the token the gateway was launched with"
            assert env.runtime.taken_over == [(member.sandbox_id, created.id)], "its config applied live"
            assert env.provider.sandboxes_by_id[member.sandbox_id].egress == "open", "the instance's egress"

            (refill,) = await _until_ready(env, 1, excluding=frozenset({member.sandbox_id}))
            assert refill.sandbox_id != member.sandbox_id and refill.model_token_hash != member.model_token_hash
            assert env.box.decrypt(refill.gateway_token_enc) != gateway_token
            assert [m.sandbox_id for m in _members(env)] == [refill.sandbox_id], "the claimed one left the pool"

    asyncio.run(scenario())


def test_a_member_that_cannot_take_over_is_destroyed_and_the_instance_boots_cold_in_its_place(
    pooled: EngineEnv,
) -> None:
    env = pooled
    env.runtime.refuse_take_over("config refused")

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
            created = env.add()
            booted = await env.until_status(created.id, Status.RUNNING)
            assert booted.sandbox_id == member.sandbox_id and booted.error_message is None
            assert env.provider.count("destroy", member.sandbox_id) == 1
            assert env.provider.count("start", member.sandbox_id) == 2, "booted cold into a fresh sandbox"
            assert booted.model_token_hash != member.model_token_hash, "new credentials at the cold boot"

    asyncio.run(scenario())


def test_instances_boot_cold_on_a_release_the_pool_does_not_serve(pooled: EngineEnv) -> None:
    env = pooled

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
            other = env.add(openclaw_release="2025.9.9")
            booted = await env.until_status(other.id, Status.RUNNING)
            assert booted.sandbox_id == sandbox_id_for(other.id)
            assert [m.sandbox_id for m in _members(env)] == [member.sandbox_id]

    asyncio.run(scenario())


def test_a_restarted_engine_keeps_ready_members_and_discards_one_left_booting(pooled: EngineEnv) -> None:
    """The orphan sweep keeps every recorded member; a member still booting long past any boot's end was left by
    a worker that died, and goes (sandbox and row) before its slot is filled again."""
    env = pooled
    stale_token = "left-by-a-dead-worker"
    stale = WarmGateway(
        sandbox_id=sandbox_id_for("dead-worker-member"),
        provider="fake",
        release=RELEASE,
        slot=1,
        state=WarmState.BOOTING,
        owner="gone:1:deadbeef",
        created_at=utcnow() - timedelta(hours=1),
        gateway_token_enc=env.box.encrypt(stale_token),
        model_token_hash=hash_key(stale_token),
        model_token_enc=env.box.encrypt(stale_token),
    )

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
        assert env.provider.is_running(member.sandbox_id), "a shutdown leaves a ready member running"
        env.settings = env.settings.model_copy(update={"warm_pool_size": 2})
        env.tx.run_sync(lambda uow: uow.warm_pool.add(stale))
        env.provider.left_running(stale.sandbox_id)
        async with running(env.engine()):
            ready = await _until_ready(env, 2)
        assert member.sandbox_id in {m.sandbox_id for m in ready}, "the ready member was kept"
        assert stale.sandbox_id not in {m.sandbox_id for m in _members(env)}
        assert stale.sandbox_id not in env.provider.sandboxes_by_id

    asyncio.run(scenario())


def test_a_shutdown_during_a_member_boot_leaves_nothing(pooled: EngineEnv) -> None:
    env = pooled
    env.runtime.hang_readiness()

    async def scenario() -> None:
        engine = Engine(env.tx, env.box, env.settings, env.providers, env.runtime)
        async with running(engine):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not any(op == "start" for op, _ in env.provider.calls):
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
        assert _members(env) == [] and env.provider.sandboxes_by_id == {}

    asyncio.run(scenario())


def test_a_gateway_a_crash_left_booting_is_adopted_not_replaced_by_a_member(pooled: EngineEnv) -> None:
    env = pooled

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
            created = env.add(observed_at=None)
            env.provider.left_running(sandbox_id_for(created.id))
            booted = await env.until_status(created.id, Status.RUNNING)
        assert booted.sandbox_id == sandbox_id_for(created.id) and env.runtime.taken_over == []
        assert [m.sandbox_id for m in _members(env)] == [member.sandbox_id], "the member is still pooled"

    asyncio.run(scenario())


def test_ready_members_are_warmed_up_again_while_they_wait(pooled: EngineEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenClaw's first turn after a minute without one is slow again: a waiting member gets a turn now and then."""
    monkeypatch.setattr(warm_pool, "KEEP_WARM_S", 0.1)
    env = pooled

    async def scenario() -> None:
        async with running(env.engine()):
            (member,) = await _until_ready(env, 1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while env.runtime.warmed_up.count(warm_up_session(member.sandbox_id)) < 3:
                assert loop.time() < deadline, env.runtime.warmed_up
                await asyncio.sleep(0.02)

    asyncio.run(scenario())


def test_the_pool_refills_only_while_the_host_has_room(pooled: EngineEnv, tmp_path: Path) -> None:
    env = pooled
    env.provider.local = True
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable: 1000000 kB\n")

    async def scenario() -> None:
        engine = env.engine()
        engine.host_memory = HostMemory(1536, meminfo)
        async with running(engine):
            await asyncio.sleep(0.3)
            assert _members(env) == [] and not env.provider.calls, "no room: no member"
            meminfo.write_text("MemAvailable: 2000000 kB\n")
            await _until_ready(env, 1)

    asyncio.run(scenario())
