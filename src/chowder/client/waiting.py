"""Waiting for an instance to run: what counts as done or failed, and the progress a caller is shown. Shared by
both clients, which only differ in how they sleep and fetch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from chowder.client.errors import InstanceFailed, WaitTimeout
from chowder.schemas.audit import AuditEvent
from chowder.schemas.instances import Instance

DEFAULT_WAIT_S = 600.0
POLL_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    """One look at the instance while waiting. `step` is its latest lifecycle event from the audit log (e.g.
    `instance.launching`: the gateway is booting), when the key may read the log (org keys), else None."""

    instance: Instance
    elapsed_s: float
    step: str | None

    @staticmethod
    def of(instance: Instance, newest_events: Sequence[AuditEvent], since: float | None) -> Progress:
        elapsed = 0.0 if since is None else time.monotonic() - since
        return Progress(instance, elapsed, newest_events[0].action if newest_events else None)


class Waiter:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def done(self, instance: Instance) -> bool:
        """True once running; raises when it cannot get there any more, or time is up."""
        if instance.status == "running":
            return True
        if instance.status in {"error", "terminated"}:
            raise InstanceFailed(instance.error_message or f"Instance is {instance.status}.")
        if self.elapsed_s > self.timeout_s:
            raise WaitTimeout(f"Instance still {instance.status} after {self.timeout_s:.0f} s.")
        return False
