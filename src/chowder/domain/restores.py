"""Restore and clone: an instance's state replaced by a backup's, or a new instance booted on a copy of another's.

Both are an intent on the instance row (`restore_backup_id`), so they survive a control-plane crash: the API records
it (the `restore` event, or a create carrying it) and the engine, before it launches a gateway, puts the backup's
state in place (`StateRestore`, through the runtime's `restore_state`). The `launching` event that follows clears the
mark in the same write that stores the new gateway token and model credential, so a restore interrupted anywhere
before it is redone whole, and one done is never redone. A restore that fails is reported like a failed boot
(`boot_failed`, which drops the mark): the instance is `error` with the reason, its state dir as it was when the
archive was refused, and `recover` boots it as it is.

No token or credential of the backup is reused: the gateway gets a new token and model credential at every launch,
the restored config loses every key the control plane owns, and the state of another instance (a clone, or a
restore from another instance's backup: `foreign`) also loses its channels, their credentials and its inbound hooks,
because two gateways on one bot account would fight over it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from chowder.core.errors import BadRequest, ChowderError, InvalidState, ProviderError
from chowder.core.settings import MIB, Settings
from chowder.domain.instance_access import visible
from chowder.domain.instance_views import CreateRequest, InstanceView
from chowder.domain.instances import Instances, room_for_one
from chowder.domain.intents import EngineWait
from chowder.domain.lifecycle import Event
from chowder.domain.models import Principal, Status
from chowder.domain.ports.backups import BackupRecord, BackupStatus, BackupTrigger
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord
from chowder.domain.ports.runtime import AgentLauncher, InstanceRuntimeSpec
from chowder.domain.ports.storage import Transactions
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder.engine")


class ArchiveStream(Protocol):
    """A stored archive as it is read back: its size, then its bytes."""

    @property
    def size(self) -> int: ...

    @property
    def chunks(self) -> AsyncIterator[bytes]: ...


class BackupSource(Protocol):
    """What restore and clone need of the backups (`domain/backups.py`'s `Backups`): the org's backup, its archive
    (NotFound for another org's or an unknown id; InvalidState unless completed), and a backup taken now."""

    async def get(self, org_id: str, backup_id: str) -> BackupRecord: ...

    async def archive(self, org_id: str, backup_id: str) -> ArchiveStream: ...

    async def take(self, org_id: str, instance_id: str, trigger: BackupTrigger) -> BackupRecord: ...


class StateRestore:
    """The engine's step: the instance's pending backup put in place in its stopped sandbox."""

    def __init__(self, runtime: AgentLauncher, backups: BackupSource | None, settings: Settings) -> None:
        self._runtime = runtime
        self._backups = backups
        self._settings = settings
        self._scratch = settings.data_dir / "restores"

    async def put_in_place(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, instance: InstanceRecord
    ) -> None:
        """Nothing unless a restore is pending; ProviderError with the reason when it cannot be done."""
        backup_id = instance.restore_backup_id
        if backup_id is None:
            return
        if self._backups is None:
            raise ProviderError("Backups cannot be restored by this process (no backup store configured).")
        try:
            backup = await self._backups.get(instance.organization_id, backup_id)
            archive = await self._backups.archive(instance.organization_id, backup_id)
        except ChowderError as exc:
            raise ProviderError(f"Backup {backup_id} cannot be restored: {exc.detail}") from exc
        started = time.monotonic()
        path = self._scratch / f"{instance.id}.tar.gz"
        try:
            if archive.size > self._settings.sandbox_disk_mb * MIB:
                raise BadRequest(f"It holds {archive.size // MIB} MiB, more than the instance's disk.")
            await provider.stop(spec.sandbox_id, self._settings.stop_grace_s)
            await _download(archive, path)
            foreign = backup.instance_id != instance.id
            await self._runtime.restore_state(provider, spec, path, foreign=foreign)
        except BadRequest as exc:
            raise ProviderError(f"Backup {backup_id} was refused: {exc.detail}") from exc
        except OSError as exc:
            raise ProviderError(f"Backup {backup_id} could not be copied for the restore: {exc}") from exc
        finally:
            if (close := getattr(archive.chunks, "aclose", None)) is not None:
                await close()  # the store's stream, when not read to its end
            path.unlink(missing_ok=True)
        took = time.monotonic() - started
        log.info("instance %s: backup %s (%d bytes) in place in %.1f s", instance.id, backup_id, archive.size, took)


async def _download(archive: ArchiveStream, path: Path) -> None:
    """The archive into a private scratch file of the control plane (the runtime checks it before it enters the
    sandbox); written under the host's open-file rules, never followed through a link."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with path.open("xb") as out:
        async for chunk in archive.chunks:
            out.write(chunk)


class Restores:
    """The API's side: `POST /v1/instances/{id}/restore`, and create with `from_backup` or `clone_from`."""

    def __init__(
        self,
        transactions: Transactions,
        instances: Instances,
        backups: BackupSource,
        engine_wait: EngineWait,
        settings: Settings,
    ) -> None:
        self._tx = transactions
        self._instances = instances
        self._backups = backups
        self._engine_wait = engine_wait
        self._settings = settings

    async def restore(self, principal: Principal, instance_id: str, backup_id: str) -> InstanceView:
        """From running, stopped or error; ends running (like start), with the backup's state and new credentials.
        Another instance's backup of the org is allowed (its channels are left out, as in a clone). 404 for an
        unknown or another org's backup, 409 for one not completed; 502 with the reason when the restored gateway
        does not come up."""
        org_id = principal.organization_id
        await self._tx(lambda uow: visible(uow.instances.get(org_id, instance_id)))
        await completed(self._backups, org_id, backup_id)
        timeout_s = self._settings.stop_grace_s + self._settings.start_timeout_s + 30
        changes = InstanceChanges(restore_backup_id=backup_id)
        return await self._engine_wait.change(
            org_id, instance_id, Event.RESTORE, Status.PROVISIONING, Status.RUNNING, timeout_s, changes
        )

    async def clone(
        self, principal: Principal, request: CreateRequest, from_backup: str | None, clone_from: str | None
    ) -> InstanceView:
        """A new instance (201, provisioning) that boots on the backup's state, or on a backup of `clone_from` taken
        now (trigger `clone`; the original keeps running). Created like any instance (tier limit, model key), with
        the original's `openclaw_config` when it still exists; its channels are not carried over."""
        if from_backup is not None and clone_from is not None:
            raise BadRequest("Give either from_backup or clone_from, not both.")
        if request.openclaw_config is not None:
            raise BadRequest(
                "openclaw_config cannot be given with from_backup or clone_from: the clone takes the "
                "original's; change it with PATCH once the clone runs."
            )
        org_id = principal.organization_id
        if clone_from is not None:  # the tier is checked before the backup is taken (and again at the create)
            await self._tx(lambda uow: (visible(uow.instances.get(org_id, clone_from)), room_for_one(uow, org_id)))
            backup = await self._backups.take(org_id, clone_from, BackupTrigger.CLONE)
        else:
            assert from_backup is not None
            backup = await completed(self._backups, org_id, from_backup)
        source = await self._tx(lambda uow: uow.instances.get(org_id, backup.instance_id))
        overrides = source.openclaw_config if source is not None else None
        return await self._instances.create(
            principal, replace(request, openclaw_config=overrides, restore_backup_id=backup.id)
        )


async def completed(backups: BackupSource, org_id: str, backup_id: str) -> BackupRecord:
    """The org's backup to restore: 404 for an unknown or another org's, 409 unless completed."""
    backup = await backups.get(org_id, backup_id)
    if backup.status != BackupStatus.COMPLETED:
        raise InvalidState(f"Backup is {backup.status}; it must be completed to restore.")
    return backup
