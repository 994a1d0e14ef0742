"""Backups of an instance's state (extension; issue 18): taken through the agent runtime inside the instance's own
sandbox (`StateArchiver`), kept in a `BackupStore` under the backup's id, recorded in `backups`.

A backup is serialized with the lifecycle by the engine's own lease: its run claims the instance's lease as
`backup:<id>` before its row exists and holds it (renewed, as the engine renews its own) until the row says how it
ended, so no boot, stop, restart, wake, sleep or teardown of that instance runs meanwhile: they wait for the lease,
as they wait for each other. A run whose lease lapsed (its process died) leaves a `creating` row that no lease
holds any more: `sweep` fails it. A failed backup leaves a `failed` row with its reason and no archive.

Backups belong to the organization and outlive their instance: a deleted instance's are still listed, downloaded
and deleted through the org-wide routes."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import ChowderError, GatewayUnavailable, InvalidState, NotFound
from chowder.core.settings import Settings
from chowder.domain.instance_access import visible
from chowder.domain.models import Power, Status
from chowder.domain.ports.backups import (
    BackupRecord,
    BackupStatus,
    BackupStore,
    BackupTrigger,
    StateArchiver,
)
from chowder.domain.ports.instances import Claim, InstanceRecord
from chowder.domain.ports.runtime import GatewayAccess
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.power import THAWS, thawed
from chowder.domain.runtime_spec import runtime_spec_of
from chowder.domain.webhooks import record_event
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder.backups")

BACKED_UP = frozenset({Status.RUNNING, Status.STOPPED})
_CLAIM_POLL_S = 0.25
_NOT_FOUND = "Backup not found."


class BackupFailed(GatewayUnavailable):
    """The backup could not be taken (502); its `failed` row stays, with the same reason."""


@dataclass(frozen=True, slots=True)
class BackupArchive:
    """A completed backup's archive to stream: exactly `size` bytes whose SHA-256 is `sha256`."""

    size: int
    sha256: str
    chunks: AsyncGenerator[bytes, None]


def archive_key(backup_id: str) -> str:
    return f"{backup_id}.tar.gz"


class Backups:
    def __init__(
        self,
        transactions: Transactions,
        box: SecretBox,
        settings: Settings,
        providers: dict[str, SandboxProvider],
        archiver: StateArchiver,
        store: BackupStore,
        wake_engine: Callable[[], None],
    ) -> None:
        self._tx = transactions
        self._box = box
        self._settings = settings
        self._providers = providers
        self._archiver = archiver
        self.store = store
        self._wake_engine = wake_engine
        self._lease = timedelta(seconds=settings.lease_s)
        self._running: set[asyncio.Task[BackupRecord]] = set()

    async def take(self, org_id: str, instance_id: str, trigger: BackupTrigger = BackupTrigger.MANUAL) -> BackupRecord:
        """A backup of the org's running or stopped instance, taken now; returns it once `completed`. BackupFailed
        (502) with the reason when it failed, NotFound, or InvalidState (409) for an instance in another status.
        The run goes on if the caller goes away (a request cancelled): its row always ends completed or failed."""
        instance = await self._tx(lambda uow: visible(uow.instances.get(org_id, instance_id)))
        _refuse_unless_backed_up(instance)
        task = asyncio.create_task(self._take(org_id, instance_id, trigger))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def of_org(self, org_id: str, instance_id: str | None = None) -> list[BackupRecord]:
        """Newest first; of one instance (deleted or not) or of the whole org."""
        return await self._tx(lambda uow: uow.backups.of_org(org_id, instance_id))

    async def of_instance(self, org_id: str, instance_id: str) -> list[BackupRecord]:
        """An instance's backups, through the instance: NotFound once it is deleted (the org's list has them)."""
        return await self._tx(lambda uow: _of_visible(uow, org_id, instance_id))

    async def get(self, org_id: str, backup_id: str, instance_id: str | None = None) -> BackupRecord:
        """NotFound for another org's; with `instance_id` (through the instance), for an instance not visible (as
        every instance route) or a backup of another instance."""
        found = await self._tx(lambda uow: _lookup(uow, org_id, backup_id, instance_id))
        if found is None or (instance_id is not None and found.instance_id != instance_id):
            raise NotFound(_NOT_FOUND)
        return found

    async def archive(self, org_id: str, backup_id: str, instance_id: str | None = None) -> BackupArchive:
        """The completed backup's archive, streamed from the store; 409 while it is being taken or if it failed."""
        backup = await self.get(org_id, backup_id, instance_id)
        if backup.status != BackupStatus.COMPLETED or backup.sha256 is None:
            raise InvalidState(f"Backup is {backup.status}; only a completed backup can be downloaded.")
        stream = await self.store.open(archive_key(backup.id))
        return BackupArchive(stream.size, backup.sha256, stream.chunks)

    async def delete(self, org_id: str, backup_id: str, instance_id: str | None = None) -> None:
        """The row, then its archive (a crash between them leaves an archive no row names, never the reverse);
        409 while it is being taken, or while a restore or an upgrade of an instance still needs it."""
        backup = await self.get(org_id, backup_id, instance_id)
        if backup.status == BackupStatus.CREATING:
            raise InvalidState("Backup is creating; it can be deleted once it has completed or failed.")
        if not await self._tx(functools.partial(_delete, org_id=org_id, backup_id=backup_id)):
            raise NotFound(_NOT_FOUND)
        await self.store.delete(archive_key(backup_id))

    async def sweep(self) -> int:
        """Fails the backups whose run died (no lease holds them), and removes whatever archive they stored."""
        orphans = await self._tx(lambda uow: uow.backups.orphaned(utcnow()))
        for orphan in orphans:
            await self.store.delete(archive_key(orphan.id))
            failed = _ended(orphan, error="Interrupted: the process taking the backup stopped.")
            if await self._tx(functools.partial(_finish, backup=failed)):
                log.warning("backup %s of instance %s: interrupted, marked failed", orphan.id, orphan.instance_id)
        return len(orphans)

    async def due(self, now: datetime) -> list[tuple[str, str, datetime, int]]:
        return await self._tx(lambda uow: uow.backups.due(now))

    async def claim_due(self, instance_id: str, due_at: datetime, next_at: datetime) -> bool:
        return await self._tx(lambda uow: uow.backups.claim_due(instance_id, due_at, next_at))

    async def prune(self, org_id: str, instance_id: str) -> None:
        """The instance's scheduled backups beyond its newest `keep` completed ones (and as many failed ones)."""
        instance = await self._tx(lambda uow: uow.instances.get(org_id, instance_id))
        if instance is None or instance.backup_keep is None:
            return
        keep = instance.backup_keep
        for status in (BackupStatus.COMPLETED, BackupStatus.FAILED):
            beyond = functools.partial(
                _scheduled_beyond, org_id=org_id, instance_id=instance_id, keep=keep, status=status
            )
            for old in await self._tx(beyond):
                await self.delete(org_id, old.id)

    async def _take(self, org_id: str, instance_id: str, trigger: BackupTrigger) -> BackupRecord:
        backup_id = "bkp_" + secrets.token_hex(12)
        owner = f"backup:{backup_id}"
        instance = await self._claim(org_id, instance_id, owner)
        try:
            backup = BackupRecord(
                id=backup_id,
                organization_id=org_id,
                instance_id=instance_id,
                status=BackupStatus.CREATING,
                trigger=trigger,
                size_bytes=None,
                sha256=None,
                openclaw_version=instance.openclaw_version,
                openclaw_release=instance.openclaw_release,
                created_at=utcnow(),
                completed_at=None,
                error=None,
            )
            await self._tx(lambda uow: uow.backups.add(backup))
            return await self._run(backup, instance, owner)
        finally:
            await self._tx(lambda uow: uow.engine.release(instance_id, owner))
            self._wake_engine()

    async def _claim(self, org_id: str, instance_id: str, owner: str) -> InstanceRecord:
        """The instance's lease, once nothing else holds it and it is running (awake or asleep, not waking) or
        stopped; NotFound once deleted, GatewayUnavailable if it stays busy past the start timeout."""
        deadline = asyncio.get_running_loop().time() + self._settings.start_timeout_s
        while True:
            claim = await self._tx(lambda uow: uow.engine.claim(instance_id, owner, utcnow(), self._lease))
            if claim is not Claim.REFUSED:
                found = await self._tx(lambda uow: uow.instances.get(org_id, instance_id))
                if found is not None and found.status in BACKED_UP and found.power != Power.WAKING:
                    return found
                await self._tx(lambda uow: uow.engine.release(instance_id, owner))
                if found is None:
                    raise NotFound("Instance not found.")
                if found.status not in (*BACKED_UP, Status.PROVISIONING):
                    _refuse_unless_backed_up(found)
            if asyncio.get_running_loop().time() > deadline:
                raise GatewayUnavailable("The instance stayed busy (booting, stopping or being backed up); try again.")
            await asyncio.sleep(_CLAIM_POLL_S)

    async def _run(self, backup: BackupRecord, instance: InstanceRecord, owner: str) -> BackupRecord:
        """The archive made and stored while the lease is kept; the row ended either way."""
        job = asyncio.create_task(self._archive(backup, instance))
        keeper = asyncio.create_task(self._keep_lease(instance.id, owner, job))
        try:
            async with asyncio.timeout(self._settings.backup_timeout_s):
                size, digest = await job
        except (ChowderError, TimeoutError, asyncio.CancelledError) as exc:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)  # its sandbox files removed before the row ends
            reason = _reason(exc, keeper, self._settings.backup_timeout_s)
            await self.store.delete(archive_key(backup.id))
            await self._tx(functools.partial(_finish, backup=_ended(backup, error=reason)))
            log.warning("backup %s of instance %s failed: %s", backup.id, instance.id, reason)
            if isinstance(exc, asyncio.CancelledError) and _shutting_down():
                raise
            raise BackupFailed(reason) from exc
        finally:
            keeper.cancel()
        done = _ended(backup, size=size, sha256=digest)
        if not await self._tx(lambda uow: _completed(uow, done)):
            await self.store.delete(archive_key(backup.id))
            raise BackupFailed("Interrupted: the backup was marked failed while it ran.")
        log.info("backup %s of instance %s: %d bytes", backup.id, instance.id, size)
        return done

    async def _archive(self, backup: BackupRecord, instance: InstanceRecord) -> tuple[int, str]:
        provider = self._providers[instance.sandbox_provider]
        spec = runtime_spec_of(instance, self._box)
        gateway = await self._gateway(provider, instance)
        async with self._archiver.archive(provider, spec, gateway, backup.id) as stream:
            digest = hashlib.sha256()
            size = await self.store.put(archive_key(backup.id), _hashed(stream.chunks, digest.update))
        return size, digest.hexdigest()

    async def _gateway(self, provider: SandboxProvider, instance: InstanceRecord) -> GatewayAccess | None:
        """The gateway to quiesce: a running, awake one (a frozen one is thawed first); None when no gateway runs
        (stopped, or asleep with its gateway stopped): its state is at rest."""
        if instance.status != Status.RUNNING or instance.power == Power.ASLEEP or instance.gateway_url is None:
            return None
        if instance.power in THAWS:
            await provider.thaw(instance.sandbox_id or "")
            await self._tx(lambda uow: thawed(uow, instance))
        return GatewayAccess(instance.gateway_url, self._box.decrypt(instance.gateway_token_enc))

    async def _keep_lease(self, instance_id: str, owner: str, job: asyncio.Task[tuple[int, str]]) -> None:
        """Renews the lease every third of its length; cancels the job once it cannot (another worker may hold it)."""
        while not job.done():
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                renewed = await self._tx(lambda uow: uow.engine.renew(instance_id, owner, utcnow(), self._lease))
            except Exception:
                log.warning("backup of instance %s: could not renew its lease", instance_id, exc_info=True)
                renewed = False
            if not renewed:
                job.cancel()
                return


def _refuse_unless_backed_up(instance: InstanceRecord) -> None:
    if instance.status not in BACKED_UP:
        raise InvalidState(f"Instance is {instance.status}; it must be running or stopped to be backed up.")


def _of_visible(uow: UnitOfWork, org_id: str, instance_id: str) -> list[BackupRecord]:
    visible(uow.instances.public(org_id, instance_id))
    return uow.backups.of_org(org_id, instance_id)


def _lookup(uow: UnitOfWork, org_id: str, backup_id: str, instance_id: str | None) -> BackupRecord | None:
    if instance_id is not None:
        visible(uow.instances.public(org_id, instance_id))
    return uow.backups.get(org_id, backup_id)


def _completed(uow: UnitOfWork, backup: BackupRecord) -> bool:
    """The row completed and `backup.completed` announced, together or not at all."""
    if not uow.backups.finish(backup):
        return False
    data = {
        "id": backup.id,
        "instance_id": backup.instance_id,
        "trigger": backup.trigger.value,
        "size_bytes": backup.size_bytes,
        "sha256": backup.sha256,
        "openclaw_version": backup.openclaw_version,
        "created_at": backup.created_at.isoformat(),
        "completed_at": backup.completed_at.isoformat() if backup.completed_at else None,
    }
    record_event(uow, backup.organization_id, "backup.completed", {"backup": data})
    return True


def _ended(
    backup: BackupRecord, *, size: int | None = None, sha256: str | None = None, error: str | None = None
) -> BackupRecord:
    status = BackupStatus.FAILED if error is not None else BackupStatus.COMPLETED
    return replace(backup, status=status, size_bytes=size, sha256=sha256, completed_at=utcnow(), error=error)


def _reason(exc: BaseException, keeper: asyncio.Task[None], timeout_s: float) -> str:
    if isinstance(exc, ChowderError):
        return str(exc.detail)
    if isinstance(exc, TimeoutError):
        return f"Timed out after {timeout_s:.0f} s."
    if keeper.done():
        return "Interrupted: the instance's lease could not be kept."
    return "Interrupted: the server shut down while the backup was taken."


async def _hashed(chunks: AsyncIterator[bytes], update: Callable[[bytes], None]) -> AsyncGenerator[bytes, None]:
    async for chunk in chunks:
        update(chunk)
        yield chunk


def _scheduled_beyond(
    uow: UnitOfWork, org_id: str, instance_id: str, keep: int, status: BackupStatus
) -> list[BackupRecord]:
    return uow.backups.scheduled_beyond(org_id, instance_id, keep, status)


def _finish(uow: UnitOfWork, backup: BackupRecord) -> bool:
    return uow.backups.finish(backup)


def _shutting_down() -> bool:
    """This task itself is being cancelled (not only the job it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _delete(uow: UnitOfWork, org_id: str, backup_id: str) -> bool:
    if uow.backups.in_use(backup_id):
        raise InvalidState("Backup is in use by a restore or an upgrade under way; it can be deleted once that ends.")
    return uow.backups.delete(org_id, backup_id)
