"""Sleep when idle (extension): the engine's side, one step per running instance whose power is due to change.

Past `idle_freeze_at` an awake instance is frozen; past `idle_stop_at` it is put to sleep (`asleep`): frozen and
paged out to the host's swap where the provider and the swap's room allow (`paged`: a thaw wakes it in about a
second), its gateway stopped otherwise (a cold boot wakes it). A frozen or sleeping instance whose next scheduled
job comes due (`wake_at`) is woken ahead of it. Two things keep an instance
awake however idle it is: an enabled channel (it must keep polling its service) and a scheduled job due too soon to
be worth sleeping before (OpenClaw's `cron.status`, read from the gateway itself). See `domain/power.py` for why
the order of each step makes it safe against calls arriving at the same moment."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.errors import ChowderError
from chowder.core.settings import Settings
from chowder.domain.models import Power
from chowder.domain.ports.instances import IdleStage, InstanceChanges, InstanceRecord
from chowder.domain.ports.runtime import AgentLauncher, GatewayAccess, InstanceRuntimeSpec
from chowder.domain.ports.storage import Transactions
from chowder.domain.power import THAWS, AutoStop, idle_deadlines, thawed
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder.power")

# How long before a scheduled job a frozen instance is thawed, and an asleep one started (a cold boot here).
FROZEN_LEAD = timedelta(seconds=2)
ASLEEP_LEAD = timedelta(seconds=60)
_AWAKE = frozenset({Power.AWAKE})
_UP = frozenset({Power.AWAKE, Power.FROZEN})
_DOWN = frozenset({Power.FROZEN, Power.PAGED, Power.ASLEEP})


@dataclass(frozen=True, slots=True)
class _Down:
    """An instance free to freeze or sleep, to be woken at `wake_at` (None: no job scheduled)."""

    wake_at: datetime | None


class IdleWork:
    def __init__(self, transactions: Transactions, runtime: AgentLauncher, settings: Settings) -> None:
        self._tx = transactions
        self._runtime = runtime
        self._grace_s = settings.stop_grace_s

    async def step(self, provider: SandboxProvider, instance: InstanceRecord, spec: InstanceRuntimeSpec) -> bool:
        """Does what the instance's power is due for; False when nothing was (the engine then checks liveness)."""
        now = utcnow()
        if instance.power in _DOWN and instance.wake_at is not None and instance.wake_at <= now:
            await self._wake_for_job(provider, instance)
        elif instance.power in _UP and instance.idle_stop_at is not None and instance.idle_stop_at <= now:
            await self._sleep(provider, instance, spec, now)
        elif instance.power == Power.AWAKE and instance.idle_freeze_at is not None and instance.idle_freeze_at <= now:
            await self._freeze(provider, instance, spec, now)
        else:
            return False
        return True

    async def _wake_for_job(self, provider: SandboxProvider, instance: InstanceRecord) -> None:
        if instance.power in THAWS:
            await provider.thaw(instance.sandbox_id or "")
            await self._tx(lambda uow: thawed(uow, instance))
        else:
            await self._set(instance, frozenset({Power.ASLEEP}), Power.WAKING, InstanceChanges(wake_at=None))
        log.info("instance %s: woken for its scheduled job", instance.id)

    async def _freeze(
        self, provider: SandboxProvider, instance: InstanceRecord, spec: InstanceRuntimeSpec, now: datetime
    ) -> None:
        """Frozen first, then recorded unless a call came meanwhile (then thawed again)."""
        auto_stop = AutoStop.of(instance)
        if not provider.freezes or auto_stop is None or auto_stop.freeze_after_s >= auto_stop.stop_after_s:
            await self._set(instance, _AWAKE, Power.AWAKE, InstanceChanges(idle_freeze_at=None))
            return
        down = await self._may_go_down(provider, instance, spec, now, FROZEN_LEAD)
        if down is None:
            return
        sandbox_id = instance.sandbox_id or ""
        await provider.freeze(sandbox_id)
        frozen = InstanceChanges(wake_at=down.wake_at)
        if not await self._set(instance, _AWAKE, Power.FROZEN, frozen, IdleStage("freeze", now)):
            await provider.thaw(sandbox_id)
            return
        log.info("instance %s: frozen after %d s idle", instance.id, auto_stop.freeze_after_s)

    async def _sleep(
        self, provider: SandboxProvider, instance: InstanceRecord, spec: InstanceRuntimeSpec, now: datetime
    ) -> None:
        """Paged out where it can be, then recorded unless a call came meanwhile (then thawed again, as `_freeze`);
        else recorded first (unless a call came), then stopped: a call arriving after the record wakes it again."""
        sandbox_id = instance.sandbox_id or ""
        if instance.power == Power.FROZEN:  # thawed to read its state (its stop would thaw it anyway)
            await provider.thaw(sandbox_id)
            await self._tx(lambda uow: thawed(uow, instance))
        down = await self._may_go_down(provider, instance, spec, now, ASLEEP_LEAD)
        if down is None:
            return
        asleep, idle_by = InstanceChanges(wake_at=down.wake_at), IdleStage("stop", now)
        if await self._paged_out(provider, instance):
            if not await self._set(instance, _UP, Power.PAGED, asleep, idle_by):
                await provider.thaw(sandbox_id)
                return
            log.info("instance %s: asleep (paged out) after %s s idle", instance.id, instance.stop_after_s)
            return
        if not await self._set(instance, _UP, Power.ASLEEP, asleep, idle_by):
            return
        try:
            await provider.stop(sandbox_id, self._grace_s)
        except ChowderError:
            log.exception("instance %s: could not stop its idle gateway; the next call wakes it", instance.id)
        log.info("instance %s: asleep after %s s idle", instance.id, instance.stop_after_s)

    async def _paged_out(self, provider: SandboxProvider, instance: InstanceRecord) -> bool:
        """Frozen and paged out to the host's swap; False, thawed again, where the provider or the swap cannot."""
        if not provider.freezes:
            return False
        sandbox_id = instance.sandbox_id or ""
        try:
            await provider.freeze(sandbox_id)
            await provider.page_out(sandbox_id)
        except ChowderError as exc:
            await provider.thaw(sandbox_id)
            log.info("instance %s: not paged out (%s); its gateway is stopped instead", instance.id, exc.detail)
            return False
        return True

    async def _may_go_down(
        self,
        provider: SandboxProvider,
        instance: InstanceRecord,
        spec: InstanceRuntimeSpec,
        now: datetime,
        lead: timedelta,
    ) -> _Down | None:
        """When the awake instance must be up again for its next scheduled job, or None when it must stay awake:
        an enabled channel (its deadlines are cleared until the next call), a job due within `lead`, or a state that
        cannot be read (its deadlines move past the job, or by a period)."""
        try:
            channels = await self._runtime.enabled_channels(provider, spec)
            due = None if channels else await self._runtime.next_job_due(_gateway(instance, spec))
        except ChowderError as exc:
            log.warning("instance %s: cannot read its channels and jobs (%s); kept awake", instance.id, exc.detail)
            await self._set(instance, _UP, Power.AWAKE, idle_deadlines(AutoStop.of(instance), now))
            return None
        if channels:
            log.info("instance %s: kept awake by its channels (%s)", instance.id, ", ".join(sorted(channels)))
            await self._set(instance, _UP, Power.AWAKE, idle_deadlines(None, now))
            return None
        if due is not None and due - lead <= now:
            await self._set(instance, _UP, Power.AWAKE, idle_deadlines(AutoStop.of(instance), due))
            return None
        return _Down(None if due is None else due - lead)

    async def _set(
        self,
        instance: InstanceRecord,
        sources: frozenset[Power],
        target: Power,
        changes: InstanceChanges,
        idle_by: IdleStage | None = None,
    ) -> bool:
        org_id, instance_id = instance.organization_id, instance.id
        return await self._tx(
            lambda uow: uow.instances.set_power(org_id, instance_id, sources, target, changes, idle_by)
        )


def _gateway(instance: InstanceRecord, spec: InstanceRuntimeSpec) -> GatewayAccess:
    return GatewayAccess(instance.gateway_url or "", spec.gateway_token)
