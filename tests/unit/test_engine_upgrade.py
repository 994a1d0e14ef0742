"""Version upgrades with rollback in the engine and their use case: a real database, the fake provider, runtime and
backups, no gateway. An upgrade backs up, boots the target release with its health turn required and switches, in
both directions; a new release that exits, hangs or fails its health turn is stopped, the backup restored and the
old release booted (running, the reason in error_message, cleared by the next operation); a crash in the middle
resumes the upgrade or the rollback from the row; a failed backup changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from chowder.core.errors import BadRequest, GatewayUnavailable
from chowder.core.ids import sandbox_id_for
from chowder.domain import lifecycle
from chowder.domain.intents import EngineWait
from chowder.domain.lifecycle import Event, IllegalTransition
from chowder.domain.models import KeyKind, Principal, Status
from chowder.domain.ports.backups import BackupTrigger
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord
from chowder.domain.reconciler import Engine
from chowder.domain.upgrades import Upgrades
from chowder.domain.webhooks import Webhooks
from chowder.persistence.tables import WebhookEventRow
from tests.fakes.engine_env import EngineEnv, running
from tests.fakes.runtime import NEXT_RELEASE, RELEASE

pytestmark = pytest.mark.persistence
ARCHIVE = b"the state before the upgrade"


@pytest.fixture
def upgrade_env(env: EngineEnv) -> EngineEnv:
    """Backups succeed; the new release has 1 s to pass /readyz and its health turn."""
    env.settings = env.settings.model_copy(update={"upgrade_timeout_s": 1.0})
    env.backups.archives["take"] = ARCHIVE
    return env


def _upgrades(env: EngineEnv, engine: Engine) -> Upgrades:
    return Upgrades(env.tx, env.runtime, env.backups, EngineWait(env.tx, engine.wake), env.settings)


def _org_key(instance: InstanceRecord) -> Principal:
    return Principal(instance.organization_id, "key", KeyKind.ORG)


def _events(env: EngineEnv, org_id: str) -> list[tuple[str, dict[str, Any]]]:
    with env.db.session() as session:
        rows = session.execute(
            select(WebhookEventRow.type, WebhookEventRow.data)
            .where(WebhookEventRow.organization_id == org_id)
            .order_by(WebhookEventRow.created_at)
        )
        return [(row.type, row.data) for row in rows]


def _intent(
    env: EngineEnv, instance: InstanceRecord, event: Event, changes: InstanceChanges = InstanceChanges()
) -> None:
    status = env.read(instance.id).status
    org_id = instance.organization_id
    assert env.tx.run_sync(lambda uow: lifecycle.apply(uow.instances, org_id, instance.id, status, event, changes))


def _upgrade_intent(env: EngineEnv, instance: InstanceRecord) -> str:
    """The intent as the use case records it after its backup; the backup's id."""
    backup = env.backups.add(instance.organization_id, instance.id, ARCHIVE)
    changes = InstanceChanges(upgrade_version=NEXT_RELEASE, upgrade_release=NEXT_RELEASE, upgrade_backup_id=backup.id)
    _intent(env, instance, Event.UPGRADE, changes)
    return backup.id


def test_an_upgrade_and_a_downgrade_back_up_boot_the_release_checked_and_switch(upgrade_env: EngineEnv) -> None:
    env = upgrade_env
    instance = env.add()
    org_id = instance.organization_id
    asyncio.run(Webhooks(env.tx, env.box).create(org_id, "https://hooks.example.com/", None, None))

    async def scenario() -> tuple[InstanceRecord, str, InstanceRecord, str]:
        engine = env.engine()
        upgrades = _upgrades(env, engine)
        async with running(engine):
            before = await env.until_status(instance.id, Status.RUNNING)
            up = await upgrades.upgrade(_org_key(instance), instance.id, NEXT_RELEASE)
            upgraded = env.read(instance.id)
            down = await upgrades.upgrade(_org_key(instance), instance.id, "v1")
            return before, up.openclaw_version, upgraded, down.openclaw_version

    before, up, upgraded, down = asyncio.run(scenario())
    assert (up, upgraded.openclaw_release, upgraded.status) == (NEXT_RELEASE, NEXT_RELEASE, Status.RUNNING)
    assert upgraded.gateway_token_enc != before.gateway_token_enc, "a new gateway with new credentials"
    assert (upgraded.upgrade_release, upgraded.upgrade_backup_id, upgraded.error_message) == (None, None, None)
    assert (down, env.read(instance.id).openclaw_release) == ("v1", RELEASE)
    assert env.runtime.launched_releases == [RELEASE, NEXT_RELEASE, RELEASE]
    assert env.runtime.version_changes == [False, True, True], "a downgrade may run on a newer release's state"
    assert env.backups.taken == [(instance.id, BackupTrigger.UPGRADE)] * 2, "a backup before each"
    assert env.runtime.restored == [], "nothing restored: both came up"
    events = _events(env, org_id)
    assert [kind for kind, _ in events] == ["instance.running", "instance.upgraded", "instance.upgraded"]
    described = {"id": instance.id, "name": "agent", "error_message": None, "status": "running"}
    assert events[1][1] == {"instance": described | {"openclaw_version": NEXT_RELEASE}, "previous_version": "v1"}
    assert events[2][1] == {"instance": described | {"openclaw_version": "v1"}, "previous_version": NEXT_RELEASE}


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("exits", f"openclaw {NEXT_RELEASE} exited with status 1 before it became ready."),
        ("hangs", "Timed out after 1 s waiting for the gateway to become ready."),
        ("warm_up", "The agent's turn failed: model call refused."),
    ],
)
def test_a_failing_new_release_is_rolled_back_onto_the_backup_and_the_old_release(
    upgrade_env: EngineEnv, how: str, reason: str
) -> None:
    env = upgrade_env
    instance = env.add()
    org_id = instance.organization_id
    asyncio.run(Webhooks(env.tx, env.box).create(org_id, "https://hooks.example.com/", None, None))
    env.runtime.break_release(NEXT_RELEASE, how)

    async def scenario() -> tuple[str, InstanceRecord, InstanceRecord]:
        engine = env.engine()
        async with running(engine):
            await env.until_status(instance.id, Status.RUNNING)
            with pytest.raises(GatewayUnavailable) as refused:
                await _upgrades(env, engine).upgrade(_org_key(instance), instance.id, NEXT_RELEASE)
            rolled_back = env.read(instance.id)
            _intent(env, instance, Event.RESTART)  # a later operation that succeeds clears the message
            return str(refused.value.detail), rolled_back, await env.until_status(instance.id, Status.RUNNING)

    detail, rolled_back, restarted = asyncio.run(scenario())
    message = f"Upgrade to {NEXT_RELEASE} was rolled back: {reason}"
    assert detail == message
    assert (rolled_back.status, rolled_back.openclaw_version, rolled_back.openclaw_release) == (
        Status.RUNNING,
        "v1",
        RELEASE,
    )
    assert rolled_back.error_message == message
    assert (rolled_back.upgrade_release, rolled_back.upgrade_error, rolled_back.restore_backup_id) == (None, None, None)
    assert env.runtime.restored == [(sandbox_id_for(instance.id), ARCHIVE, False)], "the state of before, restored"
    assert env.runtime.launched_releases == [RELEASE, NEXT_RELEASE, RELEASE, RELEASE]
    assert env.runtime.version_changes == [False, True, False, False], "the rollback runs on its own release's state"
    assert restarted.error_message is None
    events = [(kind, data) for kind, data in _events(env, org_id) if kind != "instance.running"]
    assert [kind for kind, _ in events] == ["instance.upgrade_rolled_back"]
    assert events[0][1]["instance"]["openclaw_version"] == "v1"
    assert (events[0][1]["target_version"], events[0][1]["reason"]) == (NEXT_RELEASE, reason)


def test_a_failed_backup_aborts_the_upgrade_with_the_old_gateway_untouched(upgrade_env: EngineEnv) -> None:
    env = upgrade_env
    del env.backups.archives["take"]
    instance = env.add()

    async def scenario() -> tuple[InstanceRecord, str]:
        engine = env.engine()
        async with running(engine):
            before = await env.until_status(instance.id, Status.RUNNING)
            with pytest.raises(GatewayUnavailable) as failed:
                await _upgrades(env, engine).upgrade(_org_key(instance), instance.id, NEXT_RELEASE)
            await asyncio.sleep(0.2)
            return before, str(failed.value.detail)

    before, detail = asyncio.run(scenario())
    after = env.read(instance.id)
    assert detail == "backup failed: scripted"
    assert (after.status, after.openclaw_release, after.upgrade_release) == (Status.RUNNING, RELEASE, None)
    assert after.gateway_token_enc == before.gateway_token_enc, "the same gateway, never stopped"
    assert env.runtime.launched_releases == [RELEASE]


def test_an_upgrade_needs_a_running_instance_and_the_release_it_runs_is_no_change(upgrade_env: EngineEnv) -> None:
    env = upgrade_env
    stopped = env.add(status=Status.STOPPED)
    current = env.add(status=Status.RUNNING)

    async def scenario() -> str:
        upgrades = _upgrades(env, env.engine())
        with pytest.raises(IllegalTransition) as refused:
            await upgrades.upgrade(_org_key(stopped), stopped.id, NEXT_RELEASE)
        assert refused.value.detail == "Instance is stopped; it must be running to upgrade."
        return (await upgrades.upgrade(_org_key(current), current.id, RELEASE)).openclaw_version

    assert asyncio.run(scenario()) == "v1"
    assert env.backups.taken == [], "no backup for nothing"
    assert env.read(current.id).updated_at == current.updated_at


def test_an_upgrade_interrupted_by_a_crash_is_resumed_by_the_next_worker(upgrade_env: EngineEnv) -> None:
    env = upgrade_env
    instance = env.add(status=Status.RUNNING)
    _upgrade_intent(env, instance)
    env.runtime.break_release(NEXT_RELEASE, "hangs")

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            while NEXT_RELEASE not in env.runtime.launched_releases:  # a fixed wait was too short on a loaded CI
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)  # the new release is being launched: this worker dies in it
        assert env.read(instance.id).upgrade_release == NEXT_RELEASE, "still under way"
        env.runtime.heal()
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.RUNNING)

    resumed = asyncio.run(scenario())
    assert (resumed.openclaw_release, resumed.upgrade_release, resumed.error_message) == (NEXT_RELEASE, None, None)
    assert env.runtime.launched_releases == [NEXT_RELEASE, NEXT_RELEASE], "launched again, not adopted"


def test_a_rollback_interrupted_by_a_crash_is_finished_by_the_next_worker(upgrade_env: EngineEnv) -> None:
    env = upgrade_env
    instance = env.add(status=Status.RUNNING)
    backup_id = _upgrade_intent(env, instance)
    env.runtime.break_release(NEXT_RELEASE, "exits")
    env.runtime.hang_restore()

    async def scenario() -> InstanceRecord:
        async with running(env.engine()):
            await env.until(instance.id, lambda now: now.upgrade_error is not None)
            await asyncio.sleep(0.3)  # the backup is being restored: this worker dies in it
        pending = env.read(instance.id)
        assert (pending.status, pending.restore_backup_id) == (Status.PROVISIONING, backup_id)
        env.runtime.heal()
        async with running(env.engine()):
            return await env.until_status(instance.id, Status.RUNNING)

    finished = asyncio.run(scenario())
    reason = f"openclaw {NEXT_RELEASE} exited with status 1 before it became ready."
    assert finished.error_message == f"Upgrade to {NEXT_RELEASE} was rolled back: {reason}"
    assert (finished.openclaw_release, finished.upgrade_error) == (RELEASE, None)
    assert env.runtime.launched_releases == [NEXT_RELEASE, RELEASE], "the new release never launched again"
    assert len(env.runtime.restored) == 1


def test_a_rollback_that_fails_too_is_an_error_naming_both_and_recover_boots_the_old_release(
    upgrade_env: EngineEnv,
) -> None:
    env = upgrade_env
    instance = env.add(status=Status.RUNNING)
    backup_id = _upgrade_intent(env, instance)
    env.runtime.break_release(NEXT_RELEASE, "exits")
    env.runtime.refuse_restore("The backup holds a FIFO: x.")

    async def scenario() -> tuple[InstanceRecord, InstanceRecord]:
        async with running(env.engine()):
            failed = await env.until_status(instance.id, Status.ERROR)
            env.runtime.refuse_restore("")
            _intent(env, instance, Event.RECOVER)
            return failed, await env.until_status(instance.id, Status.RUNNING)

    failed, recovered = asyncio.run(scenario())
    assert failed.error_message == (
        f"Upgrade to {NEXT_RELEASE} failed (openclaw {NEXT_RELEASE} exited with status 1 before it became ready.), "
        f"and so did the rollback to v1: Backup {backup_id} was refused: The backup holds a FIFO: x."
    )
    assert (failed.upgrade_release, failed.upgrade_error, failed.restore_backup_id) == (None, None, None)
    assert (recovered.openclaw_release, recovered.error_message) == (RELEASE, None)
    assert env.runtime.launched_releases[-1] == RELEASE


def test_a_downgrade_past_a_state_migration_boots_the_older_release_on_the_backup_of_before(
    upgrade_env: EngineEnv,
) -> None:
    env = upgrade_env
    instance = env.add(status=Status.RUNNING, openclaw_version=NEXT_RELEASE, openclaw_release=NEXT_RELEASE)
    before_upgrade = env.backups.add(instance.organization_id, instance.id, b"the state the old release wrote")

    async def scenario() -> str:
        engine = env.engine()
        async with running(engine):
            upgrades = _upgrades(env, engine)
            with pytest.raises(BadRequest, match="runs this release already: restore the backup instead"):
                await upgrades.upgrade(_org_key(instance), instance.id, NEXT_RELEASE, before_upgrade.id)
            view = await upgrades.upgrade(_org_key(instance), instance.id, "v1", before_upgrade.id)
            return view.openclaw_version

    assert asyncio.run(scenario()) == "v1"
    downgraded = env.read(instance.id)
    assert (downgraded.openclaw_release, downgraded.restore_backup_id) == (RELEASE, None)
    assert downgraded.error_message is None
    assert env.runtime.restored == [(sandbox_id_for(instance.id), b"the state the old release wrote", False)]
    assert env.backups.taken == [(instance.id, BackupTrigger.UPGRADE)], "the state it leaves is backed up too"
