"""Version upgrades with rollback (extension; issue 18): another OpenClaw release booted on an instance's state,
and the old release with the state of before when the new one does not come up.

`PATCH /v1/instances/{id}` with `openclaw_version` first takes a backup of the running instance (`Backups.take`,
trigger `upgrade`: its gateway quiesced, serialized with the engine by the instance's lease; a failed backup is a
502 with nothing else changed, the old gateway untouched), then records the `upgrade` intent with the target and the
backup's id on the row, so whatever happens to the control plane from then on resumes from the row:

- upgrading (`upgrade_release` set, no `upgrade_error`): the engine boots the target release on the instance's
  state, always replacing the gateway it finds (after a crash, the half-done attempt is redone), within
  `CHOWDER_UPGRADE_TIMEOUT_S`, and requires `/readyz` and the warm-up turn to pass (a health turn; a plain boot only
  logs its failure). Then `upgraded`: the row's `openclaw_version`/`openclaw_release` become the target's and
  `instance.upgraded` is recorded in the same transaction.
- failed: the new gateway stopped, `upgrade_failed` records why and marks the backup for restore
  (`restore_backup_id`, `domain/restores.py`): OpenClaw may have migrated the state on its boot, so it comes back
  from the backup, and the old release (still the row's) boots on it. Then `rolled_back`: running, with
  `error_message` "Upgrade to <version> was rolled back: <reason>" and `instance.upgrade_rolled_back`, in one
  transaction. Should that boot fail too, the instance is `error` saying so (`recover` boots the old release).

OpenClaw migrates its state forward on a release's first boot and an older release refuses a migrated state, so a
downgrade past a migration is rolled back with OpenClaw's reason. `upgrade_from_backup` is OpenClaw's documented way
back (the backup taken before the upgrade, with its release): the intent also marks that backup for restore, which
the engine puts in place before the target release launches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chowder.core.errors import BadRequest, GatewayUnavailable
from chowder.core.settings import Settings
from chowder.domain import lifecycle
from chowder.domain.instance_access import visible
from chowder.domain.instance_views import InstanceView
from chowder.domain.intents import EngineWait, view_of
from chowder.domain.lifecycle import Event, IllegalTransition
from chowder.domain.models import Principal, Status
from chowder.domain.ports.backups import BackupTrigger
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord
from chowder.domain.ports.runtime import AgentRuntime
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.restores import BackupSource, completed
from chowder.domain.webhooks import record_event


def upgrading(instance: InstanceRecord) -> bool:
    """The engine must boot the upgrade's target release (not yet failed)."""
    return instance.upgrade_release is not None and instance.upgrade_error is None


def rolled_back(instance: InstanceRecord) -> str:
    """The error message an instance keeps once its failed upgrade is rolled back."""
    return f"Upgrade to {instance.upgrade_version} was rolled back: {instance.upgrade_error}"


def boot_failure(instance: InstanceRecord, reason: str, failed: Event) -> tuple[Event, InstanceChanges]:
    """How a boot that failed with `reason` is reported: an upgrade's new release rolls back to its backup; a
    rollback's own boot fails as any boot (error), saying both reasons; any other is `failed`."""
    if upgrading(instance):
        return Event.UPGRADE_FAILED, InstanceChanges(upgrade_error=reason, restore_backup_id=instance.upgrade_backup_id)
    if instance.upgrade_error is not None:
        both = (
            f"Upgrade to {instance.upgrade_version} failed ({instance.upgrade_error}), and so did the "
            f"rollback to {instance.openclaw_version}: {reason}"
        )
        return Event.BOOT_FAILED, InstanceChanges(error_message=both)
    return failed, InstanceChanges(error_message=reason)


def finish(uow: UnitOfWork, instance: InstanceRecord, booted: InstanceChanges) -> bool:
    """An upgrade's boot done (the new release, or the old one on the backup's state): the switch or the rollback
    written and announced together. False when an intent changed the instance meanwhile (e.g. a delete)."""
    org_id = instance.organization_id
    if upgrading(instance):
        assert instance.upgrade_version is not None and instance.upgrade_release is not None
        event, kind = Event.UPGRADED, "instance.upgraded"
        changes = InstanceChanges(openclaw_version=instance.upgrade_version, openclaw_release=instance.upgrade_release)
        extra: dict[str, Any] = {"previous_version": instance.openclaw_version}
    else:
        event, kind = Event.ROLLED_BACK, "instance.upgrade_rolled_back"
        changes = InstanceChanges(error_message=rolled_back(instance))
        extra = {"target_version": instance.upgrade_version, "reason": instance.upgrade_error}
    written = replace(booted, **changes.given())
    if not lifecycle.apply(uow.instances, org_id, instance.id, Status.PROVISIONING, event, written):
        return False
    after = visible(uow.instances.get(org_id, instance.id))
    announced = {name: getattr(after, name) for name in ("id", "name", "error_message", "openclaw_version")}
    record_event(uow, org_id, kind, {"instance": {**announced, "status": str(after.status)}, **extra})
    return True


class Upgrades:
    """The API's side of an upgrade: the backup, the intent, and the wait for the engine."""

    def __init__(
        self,
        transactions: Transactions,
        runtime: AgentRuntime,
        backups: BackupSource,
        engine_wait: EngineWait,
        settings: Settings,
    ) -> None:
        self._tx = transactions
        self._runtime = runtime
        self._backups = backups
        self._engine_wait = engine_wait
        self._settings = settings

    async def upgrade(
        self, principal: Principal, instance_id: str, requested: str, from_backup: str | None = None
    ) -> InstanceView:
        """The running instance on `requested` (an alias or a release of the catalog; 400 otherwise), answered
        once it runs it; on the state of `from_backup` (a completed backup of the org) when given, as OpenClaw's
        own recovery goes back past a state migration: the backup taken before the upgrade, on its release. The
        release it runs already: nothing is done (400 with a backup: that is a restore). 409 unless running; 502
        when the backup fails (nothing changed), or with the rollback's message when the new release failed (the
        instance runs the old one again, on its state of before)."""
        org_id = principal.organization_id
        release = self._runtime.resolve_version(requested)
        instance = await self._tx(lambda uow: visible(uow.instances.get(org_id, instance_id)))
        if release == instance.openclaw_release and from_backup is None:
            return await self._tx(lambda uow: view_of(uow, org_id, instance_id))
        if release == instance.openclaw_release:
            raise BadRequest("The instance runs this release already: restore the backup instead.")
        if instance.status != Status.RUNNING:
            raise IllegalTransition(Event.UPGRADE, instance.status)
        if from_backup is not None:
            await completed(self._backups, org_id, from_backup)
        backup = await self._backups.take(org_id, instance_id, BackupTrigger.UPGRADE)
        changes = InstanceChanges(
            upgrade_version=requested,
            upgrade_release=release,
            upgrade_backup_id=backup.id,
            restore_backup_id=from_backup,
        )
        settings = self._settings
        timeout_s = settings.upgrade_timeout_s + 2 * settings.stop_grace_s + settings.start_timeout_s + 30
        view = await self._engine_wait.change(
            org_id, instance_id, Event.UPGRADE, Status.PROVISIONING, Status.RUNNING, timeout_s, changes
        )
        if view.openclaw_version != requested:
            raise GatewayUnavailable(view.error_message or f"The upgrade to {requested} did not happen.")
        return view
