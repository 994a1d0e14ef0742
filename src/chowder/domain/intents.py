"""Intent on an instance, as the API records it, and the wait for the engine to act on it.

The engine does every long operation; a request that the public API answers with the outcome (start, stop, a
restart after a config change) records its intent, wakes the engine and polls the status until it moves on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from chowder.core.errors import GatewayUnavailable
from chowder.domain import lifecycle
from chowder.domain.instance_access import visible
from chowder.domain.instance_views import InstanceView
from chowder.domain.lifecycle import Event
from chowder.domain.models import Status
from chowder.domain.ports.instances import InstanceChanges
from chowder.domain.ports.storage import Reads, Transactions, UnitOfWork

_POLL_S = 0.25


def view_of(reads: Reads, org_id: str, instance_id: str) -> InstanceView:
    return InstanceView.of(visible(reads.instances.public(org_id, instance_id)))


def record_intent(
    uow: UnitOfWork, org_id: str, instance_id: str, event: Event, changes: InstanceChanges = InstanceChanges()
) -> None:
    """Applies `event` to the org's instance: NotFound unless visible, IllegalTransition in the wrong status. When
    the engine moved the instance between the read and the write, the intent is judged again on the new status."""
    while True:
        instance = visible(uow.instances.get(org_id, instance_id))
        if lifecycle.apply(uow.instances, org_id, instance.id, instance.status, event, changes):
            return


class EngineWait:
    """Records intent, wakes the engine, and follows the instance's status as the engine moves it."""

    def __init__(self, transactions: Transactions, wake_engine: Callable[[], None]) -> None:
        self._tx = transactions
        self._wake = wake_engine

    async def change(
        self,
        org_id: str,
        instance_id: str,
        event: Event,
        passing: Status,
        target: Status,
        timeout_s: float,
        changes: InstanceChanges = InstanceChanges(),
    ) -> InstanceView:
        """Record `event` (with `changes`), then wait while the status is `passing`: GatewayUnavailable (with the
        engine's reason) unless it ends in `target`."""
        await self._tx(lambda uow: record_intent(uow, org_id, instance_id, event, changes))
        self._wake()
        view = await self.while_in(org_id, instance_id, passing, timeout_s)
        if view.status != target:
            raise GatewayUnavailable(view.error_message or f"Instance is {view.status}; it did not become {target}.")
        return view

    async def while_in(self, org_id: str, instance_id: str, status: Status, timeout_s: float) -> InstanceView:
        """The instance once it has left `status`, or as it is after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            view = await self._tx(lambda uow: view_of(uow, org_id, instance_id))
            if view.status != status or time.monotonic() > deadline:
                return view
            await asyncio.sleep(_POLL_S)
