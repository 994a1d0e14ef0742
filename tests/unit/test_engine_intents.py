"""The use cases that record intent and wait for the engine (start, stop, restart), with the engine running on
the fake provider and runtime: each is one engine operation the request waits on."""

from __future__ import annotations

import asyncio

import pytest

from chowder.core.errors import GatewayUnavailable, InvalidState
from chowder.core.ids import sandbox_id_for
from chowder.domain.instance_views import InstanceView
from chowder.domain.models import KeyKind, Principal, Status
from chowder.domain.ports.instances import InstanceRecord
from tests.fakes.engine_env import EngineEnv, running

pytestmark = pytest.mark.persistence


def _owner(instance: InstanceRecord) -> Principal:
    return Principal(instance.organization_id, "key", KeyKind.ORG)


def test_stop_and_start_answer_with_the_final_state(env: EngineEnv) -> None:
    instance = env.add()
    sandbox_id = sandbox_id_for(instance.id)
    engine = env.engine()

    async def scenario() -> tuple[InstanceView, InstanceView]:
        async with running(engine):
            await env.until_status(instance.id, Status.RUNNING)
            stopped = await env.use_cases(engine).stop(_owner(instance), instance.id)
            assert not env.provider.is_running(sandbox_id)
            return stopped, await env.use_cases(engine).start(_owner(instance), instance.id)

    stopped, started = asyncio.run(scenario())
    assert (stopped.status, started.status) == (Status.STOPPED, Status.RUNNING)
    assert env.provider.is_running(sandbox_id) and env.provider.count("start", sandbox_id) == 2


def test_restart_is_one_engine_operation_that_replaces_the_gateway(env: EngineEnv) -> None:
    instance = env.add()
    sandbox_id = sandbox_id_for(instance.id)
    engine = env.engine()

    async def scenario() -> InstanceView:
        async with running(engine):
            await env.until_status(instance.id, Status.RUNNING)
            return await env.use_cases(engine).restart(_owner(instance), instance.id)

    restarted = asyncio.run(scenario())
    assert restarted.status == Status.RUNNING
    operations = [operation for operation, _ in env.provider.calls]
    assert operations == ["create", "start", "stop", "create", "start"], "stopped by the engine, then booted"
    assert env.provider.is_running(sandbox_id)
    after = env.read(instance.id)
    assert not after.replace_gateway
    assert len(set(env.runtime.launched_tokens)) == 2, "the new gateway has new credentials"
    assert env.runtime.launched_tokens[-1] == env.box.decrypt(after.gateway_token_enc)


def test_a_restart_that_does_not_come_back_is_a_502_with_the_reason(env: EngineEnv) -> None:
    instance = env.add()
    engine = env.engine()

    async def scenario() -> None:
        async with running(engine):
            await env.until_status(instance.id, Status.RUNNING)
            env.runtime.fail_readiness("Config invalid: channels.telegram.botToken")
            with pytest.raises(GatewayUnavailable, match="^Config invalid: channels.telegram.botToken$"):
                await env.use_cases(engine).restart(_owner(instance), instance.id)

    asyncio.run(scenario())
    assert env.read(instance.id).status == Status.ERROR


def test_recover_boots_an_errored_instance_again_in_its_own_sandbox(env: EngineEnv) -> None:
    instance = env.add()
    sandbox_id = sandbox_id_for(instance.id)
    engine = env.engine()

    async def scenario() -> InstanceView:
        async with running(engine):
            await env.until_status(instance.id, Status.RUNNING)
            env.runtime.fail_readiness("the gateway could not load its plugins")
            with pytest.raises(GatewayUnavailable):
                await env.use_cases(engine).restart(_owner(instance), instance.id)
            with pytest.raises(InvalidState, match="^Instance is error; it must be stopped to start.$"):
                await env.use_cases(engine).start(_owner(instance), instance.id)
            env.runtime.heal()
            recovered = await env.use_cases(engine).recover(_owner(instance), instance.id)
            with pytest.raises(InvalidState, match="^Instance is running; it must be error to recover.$"):
                await env.use_cases(engine).recover(_owner(instance), instance.id)
            return recovered

    recovered = asyncio.run(scenario())
    assert recovered.status == Status.RUNNING and recovered.error_message is None
    assert recovered.sandbox_id == sandbox_id and env.provider.is_running(sandbox_id), "its own sandbox and data"
    assert env.provider.count("destroy", sandbox_id) == 0
    assert not env.read(instance.id).replace_gateway
