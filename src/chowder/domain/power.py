"""Sleep when idle and wake on the next call (extension): the calls' side.

An instance with `auto_stop` is frozen after `freeze_after_s` without a call (its processes get no CPU, its memory
stays) and put to sleep after `stop_after_s`: paged out to the host's swap where it has room (frozen still, its
memory out of RAM), else its gateway stopped (state kept, memory freed). It stays `running` throughout, and
`power` says which. The engine does both (`domain/idle.py`). Every call that needs the gateway first goes through
`PowerControl.ready`, which records the call, pushing the idle deadlines back, and then thaws a frozen or paged
gateway itself (a write to its cgroup: milliseconds; a paged one faults its pages back as it runs) or has the
engine start an asleep one and waits for it.

No lock is needed between the two sides, because of the order each keeps: a call records itself before it reads
the power; the engine freezes, then records `frozen` only if no call came meanwhile (else it thaws again), and
records `asleep`, again only if no call came, before it stops the gateway. So a call either sees the new power and
undoes it, or its record makes the engine's compare-and-set fail. A call still in flight (a long streamed turn)
is recorded again every `HEARTBEAT_S` until it ends."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.errors import BadRequest, GatewayUnavailable
from chowder.core.settings import Settings
from chowder.domain.models import Power, Status
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord, PublicInstance
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder.power")

HEARTBEAT_S = 0.5
# Below this, a call's heartbeat could not reliably keep its instance from being frozen under it.
MIN_IDLE_S = 2
MAX_IDLE_S = 30 * 24 * 3600
_WAKE_POLL_S = 0.1
# The powers a thaw undoes: the gateway's processes are there, only frozen (and maybe paged out).
THAWS = frozenset({Power.FROZEN, Power.PAGED})

# The instances the current request has used, released when its last byte has gone out (`PowerControl.scope`).
_request_holds: ContextVar[list[tuple[str, str]] | None] = ContextVar("chowder_request_holds", default=None)


@dataclass(frozen=True, slots=True)
class AutoStop:
    freeze_after_s: int
    stop_after_s: int

    @classmethod
    def checked(cls, freeze_after_s: int, stop_after_s: int) -> AutoStop:
        for name, value in (("freeze_after_s", freeze_after_s), ("stop_after_s", stop_after_s)):
            if not MIN_IDLE_S <= value <= MAX_IDLE_S:
                raise BadRequest(f"auto_stop.{name} must be between {MIN_IDLE_S} and {MAX_IDLE_S} seconds.")
        if freeze_after_s > stop_after_s:
            raise BadRequest("auto_stop.freeze_after_s must not exceed auto_stop.stop_after_s.")
        return cls(freeze_after_s, stop_after_s)

    @classmethod
    def of(cls, instance: InstanceRecord | PublicInstance) -> AutoStop | None:
        if instance.freeze_after_s is None or instance.stop_after_s is None:
            return None
        return cls(instance.freeze_after_s, instance.stop_after_s)

    @classmethod
    def default(cls, settings: Settings) -> AutoStop | None:
        if settings.freeze_after_s is None or settings.stop_after_s is None:
            return None
        return cls(settings.freeze_after_s, settings.stop_after_s)  # checked with the settings


def idle_deadlines(auto_stop: AutoStop | None, now: datetime) -> InstanceChanges:
    """The deadlines a call (or a boot) at `now` sets: none without `auto_stop`."""
    if auto_stop is None:
        return InstanceChanges(idle_freeze_at=None, idle_stop_at=None)
    return InstanceChanges(
        idle_freeze_at=now + timedelta(seconds=auto_stop.freeze_after_s),
        idle_stop_at=now + timedelta(seconds=auto_stop.stop_after_s),
    )


def public_power(instance: InstanceRecord | PublicInstance) -> Power | None:
    """What the API shows: a power only while running; paged out, or a wake in progress, is `asleep`."""
    if instance.status != Status.RUNNING:
        return None
    return Power.ASLEEP if instance.power in (Power.PAGED, Power.WAKING) else instance.power


class PowerControl:
    """Wakes instances for the calls that need them, and keeps in-flight calls recorded as activity."""

    def __init__(
        self,
        transactions: Transactions,
        providers: dict[str, SandboxProvider],
        settings: Settings,
        wake_engine: Callable[[], None],
    ) -> None:
        self._tx = transactions
        self._providers = providers
        self._wake_timeout_s = settings.start_timeout_s + 30
        self._wake_engine = wake_engine
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._wakes: dict[str, asyncio.Task[None]] = {}

    async def ready(self, org_id: str, instance_id: str) -> None:
        """Records the call and returns once the instance's gateway is awake. An instance that is not running (or
        not the org's) is left to the caller's own check (409, 404). GatewayUnavailable when a wake fails."""
        self.hold(org_id, instance_id)
        instance = await self._tx(lambda uow: _touched(uow, org_id, instance_id))
        if instance is None or instance.status != Status.RUNNING or instance.power == Power.AWAKE:
            return
        if instance.power in THAWS:
            await self._thaw(instance)
            return
        wake = self._wakes.get(instance_id)
        if wake is None:  # concurrent calls in this process share one wait (and, through the database, one wake)
            wake = self._wakes[instance_id] = asyncio.create_task(self._wake(org_id, instance_id))
            wake.add_done_callback(lambda _: self._wakes.pop(instance_id, None))
        await asyncio.shield(wake)

    async def _thaw(self, instance: InstanceRecord) -> None:
        started = time.perf_counter()
        await self._providers[instance.sandbox_provider].thaw(instance.sandbox_id or "")
        await self._tx(lambda uow: thawed(uow, instance))
        log.info("instance %s: thawed in %.0f ms", instance.id, (time.perf_counter() - started) * 1000)

    async def _wake(self, org_id: str, instance_id: str) -> None:
        """Asks the engine to start the asleep gateway (once, whoever asks first) and follows it until it is awake."""
        deadline = time.monotonic() + self._wake_timeout_s
        while time.monotonic() < deadline:
            instance = await self._tx(lambda uow: _asked_to_wake(uow, org_id, instance_id))
            if instance is None or instance.status != Status.RUNNING:
                if instance is not None and instance.status == Status.ERROR:
                    raise GatewayUnavailable({"error": instance.error_message or "The instance failed to wake."})
                return
            if instance.power == Power.AWAKE:
                return
            if instance.power in THAWS:
                await self._thaw(instance)
                return
            self._wake_engine()
            await asyncio.sleep(_WAKE_POLL_S)
        raise GatewayUnavailable({"error": f"The instance did not wake within {self._wake_timeout_s:.0f} s."})

    @contextlib.asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """One request: the instances it made ready stay recorded as in use until it ends, streamed answers
        included, and are recorded once more as it ends (so their idleness counts from then)."""
        token = _request_holds.set([])
        try:
            yield
        finally:
            held = _request_holds.get() or []
            _request_holds.reset(token)
            if held:
                try:
                    await self._tx(lambda uow: _touch_all(uow, held))
                finally:
                    self._in_flight.subtract(held)
                    self._in_flight = +self._in_flight  # drops the keys counted down to zero

    def hold(self, org_id: str, instance_id: str) -> None:
        """The current request uses the instance (recorded as activity until the request ends)."""
        held = _request_holds.get()
        key = (org_id, instance_id)
        if held is not None and key not in held:
            held.append(key)
            self._in_flight[key] += 1

    async def run(self) -> None:
        """Forever: records the instances of in-flight calls as in use, every `HEARTBEAT_S`."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._in_flight:
                try:
                    await self._tx(functools.partial(_touch_all, keys=list(self._in_flight)))
                except Exception:
                    log.warning("could not record in-flight calls as activity", exc_info=True)


def thawed(uow: UnitOfWork, instance: InstanceRecord) -> None:
    uow.instances.set_power(
        instance.organization_id,
        instance.id,
        THAWS,
        Power.AWAKE,
        InstanceChanges(wake_at=None),
    )


def _touched(uow: UnitOfWork, org_id: str, instance_id: str) -> InstanceRecord | None:
    uow.instances.touch(org_id, instance_id, utcnow())
    return uow.instances.get(org_id, instance_id)


def _asked_to_wake(uow: UnitOfWork, org_id: str, instance_id: str) -> InstanceRecord | None:
    """The instance, marked `waking` if it was asleep: the engine boots it at its next pass."""
    changes = InstanceChanges(wake_at=None)
    if uow.instances.set_power(org_id, instance_id, frozenset({Power.ASLEEP}), Power.WAKING, changes):
        log.info("instance %s: waking", instance_id)
    return uow.instances.get(org_id, instance_id)


def _touch_all(uow: UnitOfWork, keys: list[tuple[str, str]]) -> None:
    now = utcnow()
    for org_id, instance_id in keys:
        uow.instances.touch(org_id, instance_id, now)
