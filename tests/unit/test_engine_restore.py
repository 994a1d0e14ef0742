"""Restore and clone in the engine and their use cases: a real database, the fake provider, runtime and backups, no
gateway. The backup's state goes in with the gateway stopped and before a new one launches (new credentials), a
crash in the middle redoes it whole, a restore that cannot be done leaves the instance `error` with the reason and
recoverable as it was; the use cases' refusals (404, 409, 400) and the clone's fresh backup."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from chowder.core.errors import BadRequest, GatewayUnavailable, InvalidState, NotFound, QuotaExceeded
from chowder.core.ids import sandbox_id_for
from chowder.domain import lifecycle
from chowder.domain.instance_views import CreateRequest
from chowder.domain.intents import EngineWait
from chowder.domain.lifecycle import Event, IllegalTransition
from chowder.domain.models import Desired, KeyKind, Principal, Status, Tier
from chowder.domain.ports.backups import BackupStatus, BackupTrigger
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord
from chowder.domain.reconciler import Engine
from chowder.domain.restores import Restores
from tests.fakes.engine_env import EngineEnv, running
from tests.fakes.records import new_instance

pytestmark = pytest.mark.persistence
ARCHIVE = b"an archive of the state"


def _restore_intent(env: EngineEnv, instance: InstanceRecord, backup_id: str) -> None:
    status = env.read(instance.id).status
    changes, org_id = InstanceChanges(restore_backup_id=backup_id), instance.organization_id
    assert env.tx.run_sync(
        lambda uow: lifecycle.apply(uow.instances, org_id, instance.id, status, Event.RESTORE, changes)
    )


def _sibling(env: EngineEnv, of: InstanceRecord, **fields: Any) -> InstanceRecord:
    """Another instance of the same org."""
    instance = new_instance(of.organization_id, env.box, **fields)
    env.tx.run_sync(lambda uow: uow.instances.add(instance))
    return instance


def _restores(env: EngineEnv, engine: Engine) -> Restores:
    return Restores(env.tx, env.use_cases(engine), env.backups, EngineWait(env.tx, engine.wake), env.settings)


def _upgrade(env: EngineEnv, org_id: str) -> None:
    def work(uow: Any) -> None:
        org = uow.orgs.lock(org_id)
        uow.orgs.save(replace(org, subscription_tier=Tier.CRAB))

    env.tx.run_sync(work)


def _org_key(instance: InstanceRecord) -> Principal:
    return Principal(instance.organization_id, "key", KeyKind.ORG)


@pytest.mark.parametrize("status", [Status.RUNNING, Status.STOPPED, Status.ERROR])
def test_a_restore_puts_the_state_in_place_under_a_stopped_gateway_then_boots_with_new_credentials(
    env: EngineEnv, status: Status
) -> None:
    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            instance = await env.until_status(env.add().id, Status.RUNNING)
            if status == Status.STOPPED:
                _apply_stop(env, instance)
                await env.until_status(instance.id, Status.STOPPED)
            elif status == Status.ERROR:
                assert env.tx.run_sync(lambda uow: _force_error(uow, instance))
            backup = env.backups.add(instance.organization_id, instance.id, ARCHIVE)
            before = env.read(instance.id)
            _restore_intent(env, instance, backup.id)
            restored = await env.until_status(instance.id, Status.RUNNING)
            assert restored.gateway_token_enc != before.gateway_token_enc
            assert restored.model_token_hash != before.model_token_hash
            return restored

    restored = asyncio.run(scenario())
    sandbox_id = sandbox_id_for(restored.id)
    assert env.runtime.restored == [(sandbox_id, ARCHIVE, False)], "its own backup: channels kept"
    assert env.runtime.launched_tokens[-1] == env.box.decrypt(restored.gateway_token_enc)
    assert restored.restore_backup_id is None and not restored.replace_gateway and restored.error_message is None
    assert restored.desired_state == Desired.RUNNING
    assert not list((env.settings.data_dir / "restores").iterdir()), "no scratch copy of the archive is left"


def _apply_stop(env: EngineEnv, instance: InstanceRecord) -> None:
    org_id = instance.organization_id
    assert env.tx.run_sync(lambda uow: lifecycle.apply(uow.instances, org_id, instance.id, Status.RUNNING, Event.STOP))


def _force_error(uow: Any, instance: InstanceRecord) -> bool:
    changes = InstanceChanges(error_message="failed to stop")
    org_id = instance.organization_id
    return lifecycle.apply(uow.instances, org_id, instance.id, Status.RUNNING, Event.STOP_FAILED, changes)


def test_restore_is_refused_while_provisioning(env: EngineEnv) -> None:
    instance = env.add()
    with pytest.raises(IllegalTransition) as refused:
        _restore_intent(env, instance, "b")
    assert refused.value.detail == "Instance is provisioning; it must be running, stopped or error to restore a backup."


def test_a_clone_boots_on_the_original_state_without_its_channels_and_never_from_the_warm_pool(env: EngineEnv) -> None:
    original = env.add(status=Status.RUNNING, gateway_url="http://original")
    backup = env.backups.add(original.organization_id, original.id, ARCHIVE)
    clone = _sibling(env, original, restore_backup_id=backup.id)

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            return await env.until_status(clone.id, Status.RUNNING)

    booted = asyncio.run(scenario())
    assert env.runtime.restored == [(sandbox_id_for(clone.id), ARCHIVE, True)], "another instance's state: foreign"
    assert booted.restore_backup_id is None
    assert env.runtime.taken_over == []


def test_a_restore_interrupted_by_a_crash_is_redone_whole_by_the_next_worker(env: EngineEnv) -> None:
    instance = env.add(status=Status.STOPPED)
    backup = env.backups.add(instance.organization_id, instance.id, ARCHIVE)
    _restore_intent(env, instance, backup.id)
    env.runtime.hang_restore()

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            await asyncio.sleep(0.3)  # the restore has begun and hangs: this worker dies in it
        assert env.read(instance.id).restore_backup_id == backup.id, "still pending: nothing launched"
        env.runtime.heal()
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.RUNNING)

    booted = asyncio.run(scenario())
    assert env.runtime.restored == [(sandbox_id_for(instance.id), ARCHIVE, False)]
    assert booted.restore_backup_id is None


@pytest.mark.parametrize("failure", ["gone", "refused", "oversize"])
def test_a_restore_that_cannot_be_done_is_an_error_with_the_reason_and_recover_boots_the_state_as_it_was(
    env: EngineEnv, failure: str
) -> None:
    instance = env.add(status=Status.STOPPED)
    backup = env.backups.add(instance.organization_id, instance.id, ARCHIVE)
    _restore_intent(env, instance, backup.id)
    if failure == "gone":
        env.backups.forget(backup.id)
    elif failure == "oversize":
        env.settings = env.settings.model_copy(update={"sandbox_disk_mb": 1})
        env.backups.archives[backup.id] = b"x" * (2 * 1024 * 1024)
    else:
        env.runtime.refuse_restore("The backup holds a link to an absolute path: x/y.")

    async def scenario() -> tuple[InstanceRecord, InstanceRecord]:
        async with running(env.engine()):
            failed = await env.until_status(instance.id, Status.ERROR)
            env.runtime.refuse_restore("")
            org_id = instance.organization_id
            assert env.tx.run_sync(
                lambda uow: lifecycle.apply(uow.instances, org_id, instance.id, Status.ERROR, Event.RECOVER)
            )
            return failed, await env.until_status(instance.id, Status.RUNNING)

    failed, recovered = asyncio.run(scenario())
    reason = {
        "gone": f"Backup {backup.id} cannot be restored: Backup not found.",
        "refused": f"Backup {backup.id} was refused: The backup holds a link to an absolute path: x/y.",
        "oversize": f"Backup {backup.id} was refused: It holds 2 MiB, more than the instance's disk.",
    }[failure]
    assert failed.error_message == reason and failed.restore_backup_id is None
    assert env.runtime.restored == [], "nothing restored: recover booted the state as it was"
    assert recovered.error_message is None


def test_the_restore_use_case_answers_once_running_and_refuses_what_it_cannot_restore(env: EngineEnv) -> None:
    async def scenario() -> None:
        engine = env.engine()
        restores = _restores(env, engine)
        async with running(engine):
            instance = await env.until_status(env.add().id, Status.RUNNING)
            key = _org_key(instance)
            other_org = env.add()
            foreign = env.backups.add(other_org.organization_id, other_org.id, ARCHIVE)
            with pytest.raises(NotFound, match=r"^Backup not found\.$"):
                await restores.restore(key, instance.id, foreign.id)
            creating = env.backups.add(instance.organization_id, instance.id, b"", BackupStatus.CREATING)
            with pytest.raises(InvalidState, match=r"^Backup is creating; it must be completed to restore\.$"):
                await restores.restore(key, instance.id, creating.id)
            with pytest.raises(NotFound, match=r"^Instance not found\.$"):
                await restores.restore(_org_key(other_org), instance.id, foreign.id)
            sibling = _sibling(env, instance, status=Status.STOPPED)
            theirs = env.backups.add(instance.organization_id, sibling.id, ARCHIVE)
            view = await restores.restore(key, instance.id, theirs.id)
            assert view.status == Status.RUNNING and view.id == instance.id
            env.runtime.refuse_restore("The backup holds a special file: x/dev.")
            with pytest.raises(GatewayUnavailable, match="was refused: The backup holds a special file"):
                await restores.restore(key, instance.id, theirs.id)
            assert env.read(instance.id).status == Status.ERROR

    asyncio.run(scenario())
    assert [foreign for _, _, foreign in env.runtime.restored] == [True], "another instance's backup: as a clone"


def test_clone_takes_a_fresh_backup_of_the_original_or_uses_the_backup_given(env: EngineEnv) -> None:
    env.settings = env.settings.model_copy(update={"dev_model": True})  # no model key needed to create

    async def scenario() -> None:
        engine = env.engine()
        restores = _restores(env, engine)
        request = CreateRequest("clone", "anthropic", "fake", "v1", None, None)
        async with running(engine):
            original = await env.until_status(env.add(openclaw_config={"a": 1}).id, Status.RUNNING)
            key = _org_key(original)
            with pytest.raises(BadRequest, match=r"^Give either from_backup or clone_from, not both\.$"):
                await restores.clone(key, request, "b", original.id)
            with pytest.raises(NotFound, match=r"^Instance not found\.$"):
                await restores.clone(key, request, None, "no-such-instance")
            with pytest.raises(NotFound, match=r"^Backup not found\.$"):
                await restores.clone(key, request, "no-such-backup", None)
            env.backups.archives["take"] = ARCHIVE
            with pytest.raises(QuotaExceeded, match=r"^Instance limit reached \(1/1\)\. Upgrade your subscription\.$"):
                await restores.clone(key, request, None, original.id)
            assert env.backups.taken == [], "over the limit: no backup taken for nothing"
            _upgrade(env, original.organization_id)
            view = await restores.clone(key, request, None, original.id)
            assert view.status == Status.PROVISIONING and view.openclaw_config == {"a": 1}
            await env.until_status(view.id, Status.RUNNING)
            given = env.backups.add(original.organization_id, original.id, b"another archive")
            from_backup = await restores.clone(key, request, given.id, None)
            await env.until_status(from_backup.id, Status.RUNNING)
        assert env.backups.taken == [(original.id, BackupTrigger.CLONE)]
        now = env.read(original.id)
        assert now.status == Status.RUNNING and now.gateway_token_enc == original.gateway_token_enc, "left alone"

    asyncio.run(scenario())
    restored = [(archive, foreign) for _, archive, foreign in env.runtime.restored]
    assert restored == [(ARCHIVE, True), (b"another archive", True)]
