"""The lifecycle engine: drives every instance's sandbox toward its desired state.

One loop per control-plane process. Work on an instance is claimed with a lease in the database, so
several processes can run the engine side by side and a crashed one's work is taken over once its lease
expires. Every step is idempotent (providers are), so resuming half-done work is the same as doing it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import timedelta

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import ChowderError
from chowder.core.ids import hash_key, new_id, new_token
from chowder.core.metrics import Metrics
from chowder.core.settings import Settings
from chowder.core.wakeup import Wakeup
from chowder.domain import lifecycle, upgrades
from chowder.domain.admission import HostMemory, fair_order
from chowder.domain.engine_lease import LeaseWatch
from chowder.domain.gateway_boot import launch_gateway
from chowder.domain.idle import IdleWork
from chowder.domain.lifecycle import Event
from chowder.domain.liveness import Liveness
from chowder.domain.models import Desired, Power, Status
from chowder.domain.ports.instances import Claim, InstanceChanges, InstanceRecord
from chowder.domain.ports.runtime import AgentLauncher, InstanceRuntimeSpec
from chowder.domain.ports.storage import Transactions
from chowder.domain.power import AutoStop, idle_deadlines
from chowder.domain.restores import BackupSource, StateRestore
from chowder.domain.runtime_spec import runtime_spec_of
from chowder.domain.warm_pool import WarmPool
from chowder.sandbox.base import SandboxInfo, SandboxProvider, SandboxState

log = logging.getLogger("chowder.engine")

MAX_PARALLEL_BOOTS = 3  # the default of CHOWDER_MAX_PARALLEL_BOOTS


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """An instance as one unit of work found it; its status is what every report of that work compares against."""

    id: str
    status: Status
    desired: Desired
    provider: str
    sandbox_id: str
    first_boot: bool
    replace_gateway: bool
    spec: InstanceRuntimeSpec
    instance: InstanceRecord

    @property
    def waking(self) -> bool:
        """An asleep instance's gateway being started again: booted like a start, though it stays running."""
        return self.status == Status.RUNNING and self.instance.power == Power.WAKING

    @property
    def upgrading(self) -> bool:
        return upgrades.upgrading(self.instance)

    @classmethod
    def of(cls, instance: InstanceRecord, box: SecretBox) -> _Snapshot:
        """An upgrade boots its target release, always replacing the gateway (one a crash left half-way too)."""
        spec = runtime_spec_of(instance, box)
        if upgrades.upgrading(instance):
            spec = replace(spec, release=instance.upgrade_release or spec.release, version_change=True)
        return cls(
            id=instance.id,
            status=instance.status,
            desired=instance.desired_state,
            provider=instance.sandbox_provider,
            sandbox_id=spec.sandbox_id,
            first_boot=instance.observed_at is None,
            replace_gateway=instance.replace_gateway or upgrades.upgrading(instance),
            spec=spec,
            instance=instance,
        )


class Engine:
    def __init__(
        self,
        transactions: Transactions,
        box: SecretBox,
        settings: Settings,
        providers: dict[str, SandboxProvider],
        runtime: AgentLauncher,
        metrics: Metrics | None = None,
        backups: BackupSource | None = None,
    ) -> None:
        self._tx = transactions
        self._metrics = metrics or Metrics()
        self._box = box
        self._settings = settings
        self._providers = providers
        self._runtime = runtime
        self._restore = StateRestore(runtime, backups, settings)
        self._idle = IdleWork(transactions, runtime, settings)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
        self._lease = timedelta(seconds=settings.lease_s)
        self._leases = LeaseWatch(transactions, settings, self.owner, self._lease)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._boots = asyncio.Semaphore(settings.max_parallel_boots)
        self.host_memory = HostMemory(settings.boot_memory_mb)
        self._pool = WarmPool(transactions, box, settings, runtime, self.owner, self._boots)
        # Claimed to boot: never more than the boot slots, so a mass start spreads over every worker (an instance
        # claimed here waiting for a slot would wait while another worker idles).
        self._booting: set[str] = set()
        self._liveness = Liveness(transactions, settings, providers)
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """Thread-safe: called by API handlers after recording intent."""
        self._wakeup.set()

    async def run(self) -> None:
        """Forever: clean up orphans once, then claim and process work as it appears."""
        self._wakeup.bind()
        await self._remove_orphans()
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    log.exception("engine tick failed (is the database reachable?); trying again")
                await self._wakeup.wait(self._settings.reconcile_interval_s)
        finally:
            for task in self._in_flight.values():
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            await self._pool.close()

    async def tick(self) -> None:
        """Claim every instance that needs work and is not being worked on here already (boots only while this
        worker has a boot slot free), then check the liveness of running instances in bulk."""
        work = await self._tx(lambda uow: uow.engine.needing_work(utcnow()))
        for pending in fair_order(work):
            if pending.status == Status.PROVISIONING and len(self._booting) >= self._settings.max_parallel_boots:
                continue  # left unclaimed for a worker with a boot slot free (this one's, at a later tick)
            await self._take(pending.id, pending.status)
        for instance_id in await self._liveness.not_running():
            await self._take(instance_id, Status.RUNNING)
        pooled = self._providers.get(self._settings.sandbox_provider)
        if pooled is not None and not (pooled.local and self.host_memory.refusal(len(self._booting))):
            self._pool.refill(pooled)

    async def _take(self, instance_id: str, status: Status) -> None:
        """Claims an instance and works on it in a task of its own."""
        if instance_id in self._in_flight:
            return
        claimed_at = asyncio.get_running_loop().time()
        if not await self._claim(instance_id):
            return
        if status == Status.PROVISIONING:
            self._booting.add(instance_id)
        task = asyncio.create_task(self._work(instance_id, claimed_at))
        self._in_flight[instance_id] = task
        task.add_done_callback(functools.partial(self._forget, instance_id))

    def _forget(self, instance_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(instance_id, None)
        if instance_id in self._booting:
            self._booting.discard(instance_id)
            self._wakeup.set()  # a boot slot is free: the next instance waiting for one need not wait for a tick

    async def _claim(self, instance_id: str) -> bool:
        """Takes the lease of an instance nobody holds (or whose holder let it lapse), or renews ours."""
        claim = await self._tx(lambda uow: uow.engine.claim(instance_id, self.owner, utcnow(), self._lease))
        if claim is Claim.TAKEN_OVER:
            log.warning("instance %s: took over a lapsed lease (its worker died or hung)", instance_id)
            self._metrics.lease_takeovers.inc()
        return claim is not Claim.REFUSED

    async def _work(self, instance_id: str, claimed_at: float) -> None:
        try:
            instance = await self._tx(lambda uow: uow.engine.leased(instance_id, self.owner))
            if instance is not None:
                await self._reconcile_watched(_Snapshot.of(instance, self._box), claimed_at)
        except Exception:
            log.exception("reconcile of instance %s failed; will retry", instance_id)
        finally:
            try:
                await self._tx(lambda uow: uow.engine.release(instance_id, self.owner))
            except Exception:
                log.warning("instance %s: could not release its lease; it lapses on its own", instance_id)

    async def _reconcile_watched(self, snapshot: _Snapshot, claimed_at: float) -> None:
        job = asyncio.create_task(self._reconcile(snapshot))
        state = (snapshot.status, snapshot.desired)
        watcher = asyncio.create_task(self._leases.watch(snapshot.id, state, job, claimed_at))
        try:
            await job
        except asyncio.CancelledError:
            if not watcher.done() or asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            log.info("instance %s: work abandoned (%s); starting over", snapshot.id, watcher.result())
            self.wake()
        finally:
            watcher.cancel()

    async def _reconcile(self, snap: _Snapshot) -> None:
        provider = self._providers[snap.provider]
        if snap.status == Status.TERMINATED:
            await provider.destroy(snap.sandbox_id)
            await self._report(snap, Event.TORN_DOWN)
            log.info("instance %s: sandbox %s destroyed", snap.id, snap.sandbox_id)
        elif snap.status == Status.PROVISIONING or (snap.waking and snap.desired == Desired.RUNNING):
            async with self._boots:
                kind, started = "create" if snap.first_boot else "wake" if snap.waking else "start", time.monotonic()
                if not snap.waking and provider.local and (refusal := self.host_memory.refusal(len(self._booting) - 1)):
                    await self._wait_for_room(snap, refusal)
                elif await self._boot(provider, snap):
                    self._metrics.boots.labels(kind).observe(time.monotonic() - started)
                else:
                    self._metrics.boot_failures.labels(kind).inc()
        elif snap.status == Status.RUNNING and snap.desired == Desired.STOPPED:
            try:
                with self._metrics.stops.time():
                    await provider.stop(snap.sandbox_id, self._settings.stop_grace_s)
            except ChowderError as exc:
                reason = f"Could not stop the gateway: {exc.detail}"
                await self._report(snap, Event.STOP_FAILED, InstanceChanges(error_message=reason))
                log.warning("instance %s: stop failed: %s", snap.id, exc.detail)
                return
            await self._report(snap, Event.STOPPED)
            log.info("instance %s: stopped", snap.id)
        elif snap.status == Status.RUNNING and not await self._idle.step(provider, snap.instance, snap.spec):
            await self._observe(provider, snap)

    async def _wait_for_room(self, snap: _Snapshot, reason: str) -> None:
        """Still queued with its reason shown, or `error` once its provision timeout has passed."""
        waited = (utcnow() - snap.instance.status_changed_at).total_seconds()
        if waited > self._settings.provision_timeout_s:
            await self._report(snap, Event.BOOT_FAILED, InstanceChanges(error_message=f"Not booted: {reason}"))
        elif snap.instance.error_message != reason:
            await self._report(snap, Event.WAITING, InstanceChanges(error_message=reason))
            log.info("instance %s: %s", snap.id, reason)

    async def _boot(self, provider: SandboxProvider, snap: _Snapshot) -> bool:
        """Create (once), launch (unless already running: adoption), and wait for readiness; the same for a wake,
        which reports with its own events (the instance stays running). False when it failed (reported)."""
        timeout = self._settings.provision_timeout_s if snap.first_boot else self._settings.start_timeout_s
        timeout = self._settings.upgrade_timeout_s if snap.upgrading else timeout
        try:
            async with asyncio.timeout(timeout):  # not wait_for, which on 3.11 can drop a cancellation
                claimed = (
                    await self._pool.claim(provider, snap.spec, snap.status)
                    if await self._claims(provider, snap)
                    else None
                )
                if claimed is not None:  # the instance's sandbox is the member's from now on, even if it failed
                    snap = replace(snap, sandbox_id=claimed.spec.sandbox_id, spec=claimed.spec)
                if claimed is not None and claimed.endpoint is not None:
                    endpoint, note = claimed.endpoint, None
                else:
                    endpoint, note = await self._launch(provider, snap)
        except (ChowderError, TimeoutError) as exc:
            reason = str(getattr(exc, "detail", "")) or (
                f"Timed out after {timeout:.0f} s waiting for the gateway to become ready."
            )
            try:
                await provider.stop(snap.sandbox_id, self._settings.stop_grace_s)
            except ChowderError:
                log.exception("instance %s: could not stop the failed sandbox; delete will retry", snap.id)
            failed = Event.WAKE_FAILED if snap.waking else Event.BOOT_FAILED
            await self._report(snap, *upgrades.boot_failure(snap.instance, reason, failed))
            if snap.upgrading:
                self.wake()  # its rollback boots next
            log.warning("instance %s: error: %s", snap.id, reason.splitlines()[0] if reason else "")
            return False
        now = utcnow()
        booted = replace(
            idle_deadlines(AutoStop.of(snap.instance), now),
            gateway_url=endpoint,
            sandbox_id=snap.sandbox_id,
            observed_at=now,
            error_message=note,
        )
        if snap.waking:
            woke = frozenset({Power.WAKING})
            org_id = snap.spec.organization_id
            await self._tx(lambda uow: uow.instances.set_power(org_id, snap.id, woke, Power.AWAKE, booted))
            log.info("instance %s: awake again at %s", snap.id, endpoint)
            return True
        if snap.instance.upgrade_release is not None:
            await self._tx(lambda uow: upgrades.finish(uow, snap.instance, booted))
        else:
            await self._report(snap, Event.BOOTED, booted)
        log.info("instance %s: running %s at %s", snap.id, snap.spec.release, endpoint)
        return True

    async def _claims(self, provider: SandboxProvider, snap: _Snapshot) -> bool:
        """A first boot into no sandbox yet takes a warm pool member where the pool serves its provider and release
        (a sandbox of its own that a crash left behind is adopted instead)."""
        return (
            snap.first_boot
            and snap.instance.sandbox_id is None
            and not (snap.replace_gateway or snap.instance.restore_backup_id)
            and self._pool.serves(snap.provider, snap.spec.release)
            and (await provider.observe(snap.sandbox_id)).state == SandboxState.MISSING
        )

    async def _launch(self, provider: SandboxProvider, snap: _Snapshot) -> tuple[str, str | None]:
        """The endpoint, and a note when the gateway refused its config and runs on the last good one instead
        (tried before giving up: an instance is `error` only if that cannot save it). A running gateway is adopted,
        unless a restart asked for it to be replaced."""
        await self._runtime.ensure_installed(snap.spec.release)
        if snap.replace_gateway:
            self._metrics.gateway_restarts.labels("restart").inc()
            await provider.stop(snap.sandbox_id, self._settings.stop_grace_s)
        info = await provider.create(self._runtime.sandbox_spec(snap.spec))
        await self._restore.put_in_place(provider, snap.spec, snap.instance)  # a pending restore, before any launch
        if (await provider.observe(snap.sandbox_id)).state == SandboxState.RUNNING:
            return await self._runtime.wait_ready(provider, snap.sandbox_id, self._settings.provision_timeout_s), None
        note = None
        try:
            endpoint = await self._start_gateway(provider, info, snap)
        except ChowderError as refused:
            if not await self._runtime.restore_last_good_config(provider, snap.sandbox_id):
                raise
            log.warning("instance %s: gateway refused its config; retrying with the last good one", snap.id)
            note = f"Started with the last good configuration; the current one failed: {refused.detail}"
            await provider.stop(snap.sandbox_id, self._settings.stop_grace_s)
            endpoint = await self._start_gateway(provider, info, snap)
        await self._runtime.remember_good_config(provider, snap.sandbox_id)
        return endpoint, note

    async def _start_gateway(self, provider: SandboxProvider, info: SandboxInfo, snap: _Snapshot) -> str:
        spec = await self._new_credentials(snap)
        timeout_s = self._settings.provision_timeout_s
        return await launch_gateway(
            self._runtime, provider, info, spec, first_boot=snap.first_boot, timeout_s=timeout_s, checked=snap.upgrading
        )

    async def _new_credentials(self, snap: _Snapshot) -> InstanceRuntimeSpec:
        """A new gateway token and model credential at every boot (an adopted gateway keeps its own): whatever
        an earlier boot's token reached (a log, a copied state dir, a former sandbox) opens nothing now."""
        gateway_token, model_token = new_token(), new_token()
        credentials = InstanceChanges(
            gateway_token_enc=self._box.encrypt(gateway_token),
            model_token_hash=hash_key(model_token),
            model_token_enc=self._box.encrypt(model_token),
        )
        if not await self._report(snap, Event.RELAUNCHING if snap.waking else Event.LAUNCHING, credentials):
            raise ChowderError("The instance changed while its gateway was starting.")
        return replace(snap.spec, gateway_token=gateway_token, model_token=model_token)

    async def _observe(self, provider: SandboxProvider, snap: _Snapshot) -> None:
        """A running instance whose sandbox died is booted again; a live one is left alone (adoption)."""
        status = await provider.observe(snap.sandbox_id)
        if status.state == SandboxState.RUNNING:
            await self._report(snap, Event.SEEN_ALIVE, InstanceChanges(observed_at=utcnow()))
            return
        log.warning("instance %s: sandbox %s is %s; starting it again", snap.id, snap.sandbox_id, status.state)
        self._metrics.gateway_restarts.labels("sandbox_died").inc()
        await self._report(snap, Event.SANDBOX_DIED)

    async def _remove_orphans(self) -> None:
        """Sandboxes with no instance that still needs them (e.g. deleted while we were down) are destroyed."""
        for name, provider in self._providers.items():
            try:
                await self._remove_orphans_of(name, provider)
            except Exception:
                log.exception("orphan clean-up on provider %s failed", name)

    async def _remove_orphans_of(self, name: str, provider: SandboxProvider) -> None:
        existing = await provider.sandboxes()
        expected = await self._tx(lambda uow: uow.engine.kept_sandboxes(name) | uow.warm_pool.sandbox_ids(name))
        for sandbox_id in existing.keys() - expected:
            log.info("destroying orphaned sandbox %s (%s)", sandbox_id, name)
            await provider.destroy(sandbox_id)

    async def _report(self, snap: _Snapshot, event: Event, changes: InstanceChanges = InstanceChanges()) -> bool:
        """What the engine did or saw, applied from the status its work began in: False when an intent changed the
        instance meanwhile (a delete that raced with this work wins)."""
        return await self._tx(
            lambda uow: lifecycle.apply(uow.instances, snap.spec.organization_id, snap.id, snap.status, event, changes)
        )
