"""The lifecycle engine alone: a real database, the fake sandbox provider and agent runtime, no gateway. Boots,
adoption after a crash, leases, timeouts, dying sandboxes, stop failures and deletes in every state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest

from chowder.core.clock import utcnow
from chowder.core.ids import sandbox_id_for
from chowder.domain import lifecycle
from chowder.domain.lifecycle import Event
from chowder.domain.model_calls import warm_up_session
from chowder.domain.models import Desired, Status
from chowder.domain.ports.instances import Claim, InstanceRecord
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.reconciler import MAX_PARALLEL_BOOTS, Engine
from tests.fakes.engine_env import EngineEnv, running

pytestmark = pytest.mark.persistence
T = TypeVar("T")


def _apply(env: EngineEnv, instance: InstanceRecord, event: Event) -> None:
    """An intent as the API records it."""
    status = env.read(instance.id).status
    assert env.tx.run_sync(
        lambda uow: lifecycle.apply(uow.instances, instance.organization_id, instance.id, status, event)
    )


def test_a_new_instance_boots_with_new_credentials(env: EngineEnv) -> None:
    created = env.add()
    sandbox_id = sandbox_id_for(created.id)

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(created.id, Status.RUNNING)

    booted = asyncio.run(scenario())
    assert booted.gateway_url == f"http://{sandbox_id}.fake:18789" and booted.sandbox_id == sandbox_id
    assert booted.observed_at is not None and booted.error_message is None
    assert env.provider.is_running(sandbox_id) and env.provider.count("start", sandbox_id) == 1
    assert env.runtime.installed == ["2026.1.1"]
    assert env.runtime.launched_tokens == [env.box.decrypt(booted.gateway_token_enc)]
    assert env.runtime.warmed_up == [warm_up_session(created.id)], "warmed up before it reported running"
    assert booted.gateway_token_enc != created.gateway_token_enc and booted.model_token_hash != created.model_token_hash


def test_a_gateway_found_running_after_a_crash_is_adopted_not_restarted(env: EngineEnv) -> None:
    """Crashed mid-boot (the gateway was launched, the row still says provisioning) and crashed while running:
    either way the gateway that runs is kept, with the credentials it was launched with."""
    mid_boot = env.add(observed_at=utcnow())
    was_running = env.add(status=Status.RUNNING, gateway_url="http://old", observed_at=utcnow() - timedelta(hours=1))
    for instance in (mid_boot, was_running):
        env.provider.left_running(sandbox_id_for(instance.id))

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until_status(mid_boot.id, Status.RUNNING)
            await env.until(was_running.id, lambda now: now.observed_at != was_running.observed_at)
            await asyncio.sleep(0.2)  # a few more liveness checks

    asyncio.run(scenario())
    assert [operation for operation, _ in env.provider.calls] == ["create"], "one idempotent create, nothing else"
    assert env.runtime.launched_tokens == [] and env.runtime.warmed_up == []
    assert env.read(mid_boot.id).gateway_token_enc == mid_boot.gateway_token_enc
    assert env.read(was_running.id).status == Status.RUNNING


def test_a_restart_mark_replaces_the_running_gateway(env: EngineEnv) -> None:
    """Crashed in the middle of a restart: the old gateway still runs, and must not be adopted."""
    restarting = env.add(observed_at=utcnow(), replace_gateway=True)
    sandbox_id = sandbox_id_for(restarting.id)
    env.provider.left_running(sandbox_id)

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(restarting.id, Status.RUNNING)

    restarted = asyncio.run(scenario())
    assert env.provider.calls[:2] == [("stop", sandbox_id), ("create", sandbox_id)]
    assert env.provider.count("start", sandbox_id) == 1 and env.provider.is_running(sandbox_id)
    assert not restarted.replace_gateway, "done: a later boot adopts again"
    assert env.runtime.launched_tokens == [env.box.decrypt(restarted.gateway_token_enc)]


def test_a_crashed_workers_lease_is_taken_over_once_it_expires(env: EngineEnv) -> None:
    instance = env.add()
    claimed_at = utcnow()
    lease = timedelta(seconds=env.settings.lease_s)
    claim = env.tx.run_sync(lambda uow: uow.engine.claim(instance.id, "crashed-worker", claimed_at, lease))
    assert claim is Claim.TAKEN

    async def scenario() -> None:
        async with running(env.engine()):
            await asyncio.sleep(env.settings.lease_s / 2)
            assert env.provider.calls == [], "the lease still holds"
            await env.until_status(instance.id, Status.RUNNING)

    asyncio.run(scenario())
    assert utcnow() - claimed_at >= lease


def test_two_engines_side_by_side_boot_each_instance_once(env: EngineEnv) -> None:
    instances = [env.add() for _ in range(6)]

    async def scenario() -> None:
        async with running(env.engine(), env.engine()):
            for instance in instances:
                await env.until_status(instance.id, Status.RUNNING)

    asyncio.run(scenario())
    for instance in instances:
        assert env.provider.count("start", sandbox_id_for(instance.id)) == 1


def test_an_engine_claims_no_more_boots_than_it_has_slots(env: EngineEnv) -> None:
    """The rest of a mass start stays unclaimed, for another worker to boot at once rather than after these."""
    instances = [env.add() for _ in range(MAX_PARALLEL_BOOTS + 2)]
    env.runtime.hang_readiness()
    first, second = env.engine(), env.engine()

    def held_by(engine: Engine) -> int:
        ids = [instance.id for instance in instances]
        return env.tx.run_sync(lambda uow: sum(uow.engine.leased(i, engine.owner) is not None for i in ids))

    async def scenario() -> None:
        async with running(first):
            await asyncio.sleep(env.settings.provision_timeout_s / 3)
            assert held_by(first) == MAX_PARALLEL_BOOTS
            async with running(second):
                await asyncio.sleep(env.settings.provision_timeout_s / 3)
                assert (held_by(first), held_by(second)) == (MAX_PARALLEL_BOOTS, 2)

    asyncio.run(scenario())


def test_a_gateway_never_ready_ends_in_error_with_the_timeout(env: EngineEnv) -> None:
    instance = env.add()
    env.runtime.hang_readiness()

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.ERROR)

    failed = asyncio.run(scenario())
    assert failed.error_message == "Timed out after 1 s waiting for the gateway to become ready."
    assert not env.provider.is_running(sandbox_id_for(instance.id)), "the half-booted sandbox is stopped"


@pytest.mark.parametrize("failing", ["create", "start", "readiness"])
def test_a_boot_that_fails_ends_in_error_with_the_reason(env: EngineEnv, failing: str) -> None:
    instance = env.add()
    reason = f"{failing} failed: no luck"
    if failing == "readiness":
        env.runtime.fail_readiness(reason)
    else:
        env.provider.fail("create" if failing == "create" else "start", reason)

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.ERROR)

    failed = asyncio.run(scenario())
    assert failed.error_message == reason
    assert not env.provider.is_running(sandbox_id_for(instance.id))


def test_a_refused_config_falls_back_to_the_last_good_one_with_a_note(env: EngineEnv) -> None:
    instance = env.add()
    env.runtime.refuse_config("Unrecognized key: bogus")

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.RUNNING)

    booted = asyncio.run(scenario())
    assert booted.error_message == (
        "Started with the last good configuration; the current one failed: Unrecognized key: bogus"
    )
    assert env.provider.count("start", sandbox_id_for(instance.id)) == 2


def test_a_sandbox_that_dies_while_running_is_booted_again(env: EngineEnv) -> None:
    instance = env.add()
    sandbox_id = sandbox_id_for(instance.id)

    async def scenario() -> None:
        async with running(env.engine()):
            first = await env.until_status(instance.id, Status.RUNNING)
            env.provider.die(sandbox_id)
            await env.until(instance.id, lambda now: now.status_changed_at > first.status_changed_at)
            await env.until_status(instance.id, Status.RUNNING)

    asyncio.run(scenario())
    assert env.provider.count("start", sandbox_id) == 2 and env.provider.is_running(sandbox_id)
    assert len(set(env.runtime.launched_tokens)) == 2, "the new gateway has new credentials"


def test_stop_ends_the_gateway_and_a_failed_stop_is_an_error(env: EngineEnv) -> None:
    stops, fails = env.add(), env.add()

    async def scenario() -> None:
        async with running(env.engine()):
            for instance in (stops, fails):
                await env.until_status(instance.id, Status.RUNNING)
            env.provider.fail("stop", "the cgroup would not empty")
            _apply(env, fails, Event.STOP)
            await env.until_status(fails.id, Status.ERROR)
            env.provider.heal()
            _apply(env, stops, Event.STOP)
            await env.until_status(stops.id, Status.STOPPED)

    asyncio.run(scenario())
    assert env.read(fails.id).error_message == "Could not stop the gateway: the cgroup would not empty"
    assert env.read(stops.id).desired_state == Desired.STOPPED
    assert not env.provider.is_running(sandbox_id_for(stops.id))


@pytest.mark.parametrize("state", ["provisioning", "mid-boot", "running", "stopped", "error"])
def test_a_delete_in_any_state_ends_torn_down(env: EngineEnv, state: str) -> None:
    instance = env.add()
    sandbox_id = sandbox_id_for(instance.id)

    if state == "provisioning":  # before any engine worked on it
        _apply(env, instance, Event.DELETE)

    async def scenario() -> None:
        async with running(env.engine()):
            if state == "mid-boot":
                env.runtime.hang_readiness()
                await env.until(instance.id, lambda _: env.provider.is_running(sandbox_id))
            elif state == "error":
                env.runtime.fail_readiness("no")
                await env.until_status(instance.id, Status.ERROR)
            elif state != "provisioning":
                await env.until_status(instance.id, Status.RUNNING)
            if state == "stopped":
                _apply(env, instance, Event.STOP)
                await env.until_status(instance.id, Status.STOPPED)
            if state != "provisioning":
                _apply(env, instance, Event.DELETE)
            await env.until(instance.id, lambda now: now.torn_down)

    asyncio.run(scenario())
    assert env.read(instance.id).status == Status.TERMINATED
    assert sandbox_id not in env.provider.sandboxes_by_id, "sandbox and files destroyed"


def test_sandboxes_no_instance_needs_are_destroyed_at_start(env: EngineEnv) -> None:
    """Deleted while no engine ran: the sandbox is found and destroyed; a live instance's sandbox is kept."""
    kept = env.add(status=Status.STOPPED, observed_at=utcnow())
    env.provider.left_running(sandbox_id_for(kept.id))
    env.provider.left_running("orphan")

    async def scenario() -> None:
        async with running(env.engine()):
            while "orphan" in env.provider.sandboxes_by_id:
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert set(env.provider.sandboxes_by_id) == {sandbox_id_for(kept.id)}


def test_a_worker_whose_lease_was_taken_over_stops(env: EngineEnv, caplog: pytest.LogCaptureFixture) -> None:
    """A worker that stalled past its lease (another took the instance over meanwhile) stops at its next renewal:
    it reports nothing more and leaves the new holder's lease alone."""
    instance = env.add()
    env.runtime.hang_readiness()
    engine = env.engine()
    lease = timedelta(seconds=env.settings.lease_s)

    def held_by(owner: str) -> bool:
        return env.tx.run_sync(lambda uow: uow.engine.leased(instance.id, owner)) is not None

    async def scenario() -> None:
        async with running(engine):
            await env.until(instance.id, lambda _: held_by(engine.owner) and env.provider.is_running(sandbox))
            taken = env.tx.run_sync(lambda uow: uow.engine.claim(instance.id, "other", utcnow() + lease, 20 * lease))
            assert taken is not Claim.REFUSED
            await asyncio.sleep(2 * env.settings.provision_timeout_s)  # past the boot's timeout: it would report
            assert env.read(instance.id).status == Status.PROVISIONING, "no report from the worker that lost it"
            assert held_by("other"), "neither renewed nor released by the worker that lost it"

    sandbox = sandbox_id_for(instance.id)
    with caplog.at_level("INFO", logger="chowder.engine"):
        asyncio.run(scenario())
    assert "work abandoned (its lease lapsed)" in caplog.text


class _Outage:
    """The engine's transactions, failing while `down` as they would through a database restart."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions
        self.down = False

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        if self.down:
            raise ConnectionError("the database is unreachable")
        return await self._transactions(work)


def test_a_database_outage_stops_the_work_in_hand_and_the_engine_resumes_after(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """Its lease unrenewable, the boot in hand is dropped before the lease can lapse (another worker could take it);
    the engine's loop outlives the outage and finishes the boot once the database is back."""
    instance = env.add()
    env.runtime.hang_readiness()
    outage = _Outage(env.tx)
    patient = env.settings.model_copy(update={"provision_timeout_s": 30.0})
    engine = Engine(outage, env.box, patient, env.providers, env.runtime)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with running(engine):
            await env.until(instance.id, lambda _: env.provider.is_running(sandbox_id_for(instance.id)))
            outage.down = True
            await asyncio.sleep(3 * env.settings.lease_s)
            assert "work abandoned (its lease could not be renewed)" in caplog.text
            outage.down = False
            env.runtime.heal()
            await env.until_status(instance.id, Status.RUNNING)

    with caplog.at_level("INFO", logger="chowder.engine"):
        asyncio.run(scenario())
    assert "engine tick failed" in caplog.text
    assert env.provider.count("start", sandbox_id_for(instance.id)) == 1, "the gateway started then was adopted"


class _CountingClaims(Engine):
    claims = 0

    async def _claim(self, instance_id: str) -> bool:
        self.claims += 1
        return await super()._claim(instance_id)


def test_running_instances_are_seen_alive_in_bulk_without_a_lease(env: EngineEnv) -> None:
    instances = [env.add() for _ in range(5)]
    engine = _CountingClaims(env.tx, env.box, env.settings, env.providers, env.runtime)

    async def scenario() -> None:
        async with running(engine):
            booted = [await env.until_status(instance.id, Status.RUNNING) for instance in instances]
            claims = engine.claims
            for before in booted:  # seen again within seconds (a loaded machine runs the checks late), never claimed
                seen = before.observed_at
                assert seen is not None
                await env.until(
                    before.id, lambda now, seen=seen: now.observed_at is not None and now.observed_at > seen
                )
            assert engine.claims == claims, "no instance claimed to be seen alive"

    asyncio.run(scenario())
