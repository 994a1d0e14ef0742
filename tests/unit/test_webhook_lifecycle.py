"""The lifecycle's webhook events, recorded by the transitions themselves (the engine on a real database, fake
sandbox provider and runtime): each status reached is announced once, with the instance as it then was, in the
transition's transaction (a transition that loses its race or rolls back announces nothing); intents are not
announced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from chowder.domain import lifecycle
from chowder.domain.lifecycle import Event
from chowder.domain.models import Status
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.webhooks import Webhooks
from chowder.persistence.tables import WebhookDeliveryRow, WebhookEventRow
from tests.fakes.engine_env import EngineEnv, running

pytestmark = pytest.mark.persistence


def _events(env: EngineEnv, org_id: str) -> list[tuple[str, dict[str, Any]]]:
    with env.db.session() as session:
        rows = session.execute(
            select(WebhookEventRow.type, WebhookEventRow.data)
            .where(WebhookEventRow.organization_id == org_id)
            .order_by(WebhookEventRow.created_at)
        )
        return [(row.type, row.data) for row in rows]


def _subscribe(env: EngineEnv, org_id: str) -> None:
    asyncio.run(Webhooks(env.tx, env.box).create(org_id, "https://hooks.example.com/", None, None))


def _deliveries(env: EngineEnv) -> list[str]:
    with env.db.session() as session:
        return list(session.scalars(select(WebhookDeliveryRow.event_type).order_by(WebhookDeliveryRow.created_at)))


def _intent(env: EngineEnv, instance: InstanceRecord, event: Event) -> None:
    status = env.read(instance.id).status
    assert env.tx.run_sync(
        lambda uow: lifecycle.apply(uow.instances, instance.organization_id, instance.id, status, event)
    )


def test_an_instances_life_is_announced_status_by_status(env: EngineEnv) -> None:
    instance = env.add()
    org_id = instance.organization_id
    _subscribe(env, org_id)

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until_status(instance.id, Status.RUNNING)
            _intent(env, instance, Event.STOP)
            await env.until_status(instance.id, Status.STOPPED)
            _intent(env, instance, Event.START)
            await env.until_status(instance.id, Status.RUNNING)
            _intent(env, instance, Event.DELETE)
            await env.until(instance.id, lambda now: now.torn_down)

    asyncio.run(scenario())
    events = _events(env, org_id)
    assert [kind for kind, _ in events] == [
        "instance.running",
        "instance.stopped",
        "instance.running",
        "instance.deleted",
    ]
    described = {"id": instance.id, "name": "agent", "error_message": None, "openclaw_version": "v1"}
    assert events[0][1] == {"instance": described | {"status": "running"}, "previous_status": "provisioning"}
    assert events[1][1] == {"instance": described | {"status": "stopped"}, "previous_status": "running"}
    assert events[3][1] == {"instance": described | {"status": "terminated"}, "previous_status": "terminated"}
    assert _deliveries(env) == [kind for kind, _ in events], "one delivery each to the endpoint"


def test_a_failed_boot_is_announced_as_an_error_with_its_reason(env: EngineEnv) -> None:
    instance = env.add()
    env.runtime.fail_readiness("the gateway said no")

    async def scenario() -> None:
        async with running(env.engine()):
            await env.until_status(instance.id, Status.ERROR)

    asyncio.run(scenario())
    [(kind, data)] = _events(env, instance.organization_id)
    assert kind == "instance.error" and data["previous_status"] == "provisioning"
    assert data["instance"]["status"] == "error" and "the gateway said no" in data["instance"]["error_message"]


def test_nothing_is_announced_by_a_transition_that_loses_its_race_or_rolls_back(env: EngineEnv) -> None:
    instance = env.add()
    _subscribe(env, instance.organization_id)

    def boot_then_fail(uow: UnitOfWork) -> None:
        assert lifecycle.apply(uow.instances, instance.organization_id, instance.id, Status.PROVISIONING, Event.BOOTED)
        raise RuntimeError("the rest of the unit of work failed")

    with pytest.raises(RuntimeError):
        env.tx.run_sync(boot_then_fail)
    assert env.read(instance.id).status == Status.PROVISIONING and _events(env, instance.organization_id) == []

    _intent(env, instance, Event.DELETE)
    lost = env.tx.run_sync(
        lambda uow: lifecycle.apply(
            uow.instances, instance.organization_id, instance.id, Status.PROVISIONING, Event.BOOTED, InstanceChanges()
        )
    )
    assert not lost and _events(env, instance.organization_id) == [], "a delete is an intent: not announced"
    assert _deliveries(env) == []
