"""Sleep when idle, wake on the next call: the engine's side (freeze, sleep, wake for a scheduled job, what keeps an
instance awake) and the calls' side (`PowerControl.ready`: thaw, one shared wake, a failed wake), on a real
database with the fake provider and runtime. Idle deadlines are written in the past instead of waited for."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from chowder.core.clock import utcnow
from chowder.core.errors import GatewayUnavailable
from chowder.core.ids import new_id, sandbox_id_for
from chowder.domain.models import Power, Status
from chowder.domain.ports.instances import IdleStage, InstanceChanges, InstanceRecord
from chowder.domain.power import PowerControl, public_power
from tests.fakes.engine_env import EngineEnv, running

pytestmark = pytest.mark.persistence

LATER = timedelta(hours=1)


def _idle(env: EngineEnv, *, freeze_in: timedelta, stop_in: timedelta, **fields: Any) -> InstanceRecord:
    """A running instance with `auto_stop` (awake unless `fields` say otherwise) whose gateway runs unless asleep,
    its idle deadlines `freeze_in` and `stop_in` from now."""
    now, instance_id = utcnow(), new_id()
    instance = env.add(
        id=instance_id,
        status=Status.RUNNING,
        gateway_url="http://gateway",
        sandbox_id=sandbox_id_for(instance_id),
        observed_at=now,
        freeze_after_s=60,
        stop_after_s=600,
        idle_freeze_at=now + freeze_in,
        idle_stop_at=now + stop_in,
        **fields,
    )
    if instance.power != Power.ASLEEP:
        env.provider.left_running(sandbox_id_for(instance_id))
    return instance


def _power(env: EngineEnv, engine_wake: Any = lambda: None) -> PowerControl:
    return PowerControl(env.tx, env.providers, env.settings, engine_wake)


def test_an_idle_instance_is_frozen_then_put_to_sleep_and_stays_running(env: EngineEnv) -> None:
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=timedelta(seconds=0.5))
    sandbox_id = sandbox_id_for(instance.id)

    async def scenario() -> tuple[bool, InstanceRecord]:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.power == Power.FROZEN)
            frozen_in_provider = sandbox_id in env.provider.frozen
            await env.until(instance.id, lambda now: now.power == Power.ASLEEP)
            await asyncio.sleep(0.2)  # liveness checks pass over it: an asleep gateway is not a dead one
            return frozen_in_provider, env.read(instance.id)

    frozen_in_provider, asleep = asyncio.run(scenario())
    assert frozen_in_provider
    assert asleep.status == Status.RUNNING and asleep.wake_at is None
    assert not env.provider.is_running(sandbox_id) and sandbox_id not in env.provider.frozen
    assert env.provider.count("start", sandbox_id) == 0, "not booted again by a liveness check"


def test_a_call_thaws_a_frozen_instance_and_wakes_an_asleep_one_once_for_concurrent_calls(env: EngineEnv) -> None:
    frozen = _idle(env, freeze_in=LATER, stop_in=LATER, power=Power.FROZEN)
    asleep = _idle(env, freeze_in=LATER, stop_in=LATER, power=Power.ASLEEP)
    env.provider.frozen.add(sandbox_id_for(frozen.id))

    async def scenario() -> None:
        engine = env.engine()
        power = _power(env, engine.wake)
        async with running(engine), power.scope():
            await power.ready(frozen.organization_id, frozen.id)
            calls = [power.ready(asleep.organization_id, asleep.id) for _ in range(3)]
            await asyncio.gather(*calls)

    asyncio.run(scenario())
    thawed, woken = env.read(frozen.id), env.read(asleep.id)
    assert thawed.power == Power.AWAKE and sandbox_id_for(frozen.id) not in env.provider.frozen
    assert woken.power == Power.AWAKE and woken.status == Status.RUNNING
    assert env.provider.count("start", sandbox_id_for(asleep.id)) == 1, "three calls, one wake"
    assert woken.gateway_token_enc != asleep.gateway_token_enc, "a woken gateway has new credentials"
    assert woken.idle_stop_at is not None and woken.idle_stop_at > utcnow() + timedelta(seconds=500)


def test_with_swap_an_idle_instance_sleeps_paged_out_and_a_call_thaws_it(env: EngineEnv) -> None:
    env.provider.swap = True
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=timedelta(seconds=0.5))
    sandbox_id = sandbox_id_for(instance.id)

    async def scenario() -> tuple[InstanceRecord, bool]:
        engine = env.engine()
        power = _power(env, engine.wake)
        async with running(engine):
            await env.until(instance.id, lambda now: now.power == Power.PAGED)
            await asyncio.sleep(0.2)  # liveness checks pass over it: its processes are there, frozen
            paged, held = env.read(instance.id), sandbox_id in env.provider.paged
            async with power.scope():
                await power.ready(instance.organization_id, instance.id)
            return paged, held

    paged, held = asyncio.run(scenario())
    assert held and paged.status == Status.RUNNING and public_power(paged) == Power.ASLEEP
    woken = env.read(instance.id)
    assert woken.power == Power.AWAKE and env.provider.is_running(sandbox_id)
    assert sandbox_id not in env.provider.frozen and sandbox_id not in env.provider.paged
    assert env.provider.count("stop", sandbox_id) == env.provider.count("start", sandbox_id) == 0, "thawed, not booted"
    assert woken.gateway_token_enc == instance.gateway_token_enc, "the same gateway, its credentials unchanged"


def test_a_page_out_that_fails_stops_the_gateway_instead(env: EngineEnv) -> None:
    env.provider.swap = True
    env.provider.fail("page_out", "The host's swap has 12 MiB free.")
    instance = _idle(env, freeze_in=LATER, stop_in=-timedelta(seconds=1))
    sandbox_id = sandbox_id_for(instance.id)

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.power == Power.ASLEEP)

    asyncio.run(scenario())
    assert env.provider.count("page_out", sandbox_id) == 1
    assert not env.provider.is_running(sandbox_id) and sandbox_id not in env.provider.frozen


def test_a_wake_that_fails_is_a_502_and_an_error(env: EngineEnv) -> None:
    asleep = _idle(env, freeze_in=LATER, stop_in=LATER, power=Power.ASLEEP)
    env.runtime.fail_readiness("the gateway could not load its plugins")

    async def scenario() -> None:
        engine = env.engine()
        power = _power(env, engine.wake)
        async with running(engine):
            await power.ready(asleep.organization_id, asleep.id)

    with pytest.raises(GatewayUnavailable) as raised:
        asyncio.run(scenario())
    assert raised.value.detail == {"error": "the gateway could not load its plugins"}
    assert env.read(asleep.id).status == Status.ERROR


def test_an_enabled_channel_keeps_an_instance_awake(env: EngineEnv) -> None:
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=-timedelta(seconds=1))
    env.runtime.enabled = frozenset({"telegram"})

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.idle_stop_at is None)
            await asyncio.sleep(0.2)

    asyncio.run(scenario())
    kept = env.read(instance.id)
    assert kept.power == Power.AWAKE and kept.idle_freeze_at is None
    assert env.provider.is_running(sandbox_id_for(instance.id)) and not env.provider.frozen


def test_a_scheduled_job_is_waited_for_awake_or_woken_for(env: EngineEnv) -> None:
    """A job due too soon keeps the instance awake past it; a later one is remembered, and the instance woken
    ahead of it (here: already due)."""
    due_soon = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=LATER)
    asleep = _idle(env, freeze_in=LATER, stop_in=LATER, power=Power.ASLEEP, wake_at=utcnow() - timedelta(seconds=1))
    job_due = utcnow() + timedelta(seconds=1)
    env.runtime.job_due = job_due

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until(due_soon.id, lambda now: now.idle_freeze_at is not None and now.idle_freeze_at > job_due)
            await env.until(asleep.id, lambda now: now.power == Power.AWAKE)

    asyncio.run(scenario())
    assert env.read(due_soon.id).power == Power.AWAKE and not env.provider.frozen
    assert env.provider.count("start", sandbox_id_for(asleep.id)) == 1


def test_a_later_job_is_remembered_when_freezing(env: EngineEnv) -> None:
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=LATER)
    job_due = utcnow() + timedelta(minutes=10)
    env.runtime.job_due = job_due

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.power == Power.FROZEN)

    asyncio.run(scenario())
    assert env.read(instance.id).wake_at == job_due - timedelta(seconds=2)


def test_a_provider_that_cannot_freeze_goes_straight_to_sleep(env: EngineEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env.provider, "freezes", False)
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=timedelta(seconds=0.3))

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.idle_freeze_at is None)
            assert env.read(instance.id).power == Power.AWAKE
            await env.until(instance.id, lambda now: now.power == Power.ASLEEP)

    asyncio.run(scenario())
    assert not env.provider.frozen


def test_a_call_since_the_deadline_makes_the_engine_compare_and_set_fail(env: EngineEnv) -> None:
    """The engine decided at `decided`; a call recorded after that pushed the deadline past it."""
    instance = _idle(env, freeze_in=-timedelta(seconds=1), stop_in=-timedelta(seconds=1))
    decided = utcnow()
    env.tx.run_sync(lambda uow: uow.instances.touch(instance.organization_id, instance.id, utcnow()))

    def freeze(uow: Any) -> bool:
        stage = IdleStage("freeze", decided)
        awake = frozenset({Power.AWAKE})
        return bool(
            uow.instances.set_power(
                instance.organization_id, instance.id, awake, Power.FROZEN, InstanceChanges(), stage
            )
        )

    assert not env.tx.run_sync(freeze)
    assert env.read(instance.id).power == Power.AWAKE


def test_an_in_flight_call_keeps_its_instance_recorded_as_in_use(env: EngineEnv) -> None:
    instance = _idle(env, freeze_in=LATER, stop_in=LATER)

    async def scenario() -> tuple[InstanceRecord, InstanceRecord]:
        power = _power(env)
        heartbeat = asyncio.create_task(power.run())
        try:
            async with power.scope():
                await power.ready(instance.organization_id, instance.id)
                first = env.read(instance.id)
                await asyncio.sleep(1.2)  # two heartbeats
                return first, env.read(instance.id)
        finally:
            heartbeat.cancel()

    first, later = asyncio.run(scenario())
    assert first.idle_freeze_at is not None and later.idle_freeze_at is not None
    assert later.idle_freeze_at >= first.idle_freeze_at + timedelta(seconds=0.9)
