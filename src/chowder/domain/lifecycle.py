"""The instance state machine: the public statuses, the events that move an instance between them, and the one
function that applies an event.

An instance is created `provisioning` with the intent `running`. From then on its status changes only through
`apply`: the API records intent with it (start, stop, restart, delete) and the engine reports with it what it did
or saw (booted, stopped, torn down, ...). Every application is a compare-and-set on the status in the database, so
of two writers racing on one instance exactly one wins: a delete that lands while the engine boots makes the
engine's `booted` miss, and the engine, seeing the intent change, starts over from the new state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from chowder.core.clock import utcnow
from chowder.core.errors import InvalidState
from chowder.domain.models import Desired, Power, Status
from chowder.domain.ports.instances import InstanceChanges, InstanceRepository

# An instance not deleted: visible to its org and counted against its tier.
LIVE = frozenset({Status.PROVISIONING, Status.RUNNING, Status.STOPPED, Status.ERROR})


class Event(StrEnum):
    # Intent, recorded by the API.
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    RECOVER = "recover"
    RESTORE = "restore"
    UPGRADE = "upgrade"
    DELETE = "delete"
    # What the engine did or saw.
    LAUNCHING = "launching"
    WAITING = "waiting"
    BOOTED = "booted"
    BOOT_FAILED = "boot_failed"
    # Waking an asleep instance: its gateway is launched again while it stays running (`domain.power`).
    RELAUNCHING = "relaunching"
    WAKE_FAILED = "wake_failed"
    SEEN_ALIVE = "seen_alive"
    SANDBOX_DIED = "sandbox_died"
    STOPPED = "stopped"
    STOP_FAILED = "stop_failed"
    TORN_DOWN = "torn_down"
    # An upgrade's end (`domain/upgrades.py`): the new release runs, or it failed and the old one boots again.
    UPGRADED = "upgraded"
    UPGRADE_FAILED = "upgrade_failed"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class Transition:
    """Where an event may happen, where it leads, and what it always writes (an intent, a mark); `purpose`
    completes the refusal "Instance is <status>; it must be <sources> to <purpose>."."""

    sources: frozenset[Status]
    target: Status
    purpose: str
    effects: InstanceChanges = InstanceChanges()
    # Written to the audit log as `instance.<event>` (an observation that changes nothing is not).
    audited: bool = True
    # The webhook event it announces, recorded with it (`domain/webhooks.py`): a status reached, not an intent.
    announced: str | None = None


_PROVISIONING = frozenset({Status.PROVISIONING})
_RUNNING = frozenset({Status.RUNNING})
# An upgrade's marks cleared: it is over, done, rolled back or failed.
_NO_UPGRADE = InstanceChanges(upgrade_version=None, upgrade_release=None, upgrade_backup_id=None, upgrade_error=None)
_UP_AGAIN = replace(_NO_UPGRADE, power=Power.AWAKE, wake_at=None)

TRANSITIONS: dict[Event, Transition] = {
    Event.START: Transition(
        frozenset({Status.STOPPED}),
        Status.PROVISIONING,
        "start",
        InstanceChanges(desired_state=Desired.RUNNING, error_message=None),
    ),
    Event.STOP: Transition(_RUNNING, Status.RUNNING, "stop", InstanceChanges(desired_state=Desired.STOPPED)),
    # One engine operation, not a stop and a start: the mark makes the engine stop the gateway before it boots one
    # (a plain boot would adopt the running gateway, which must take its new settings at boot).
    Event.RESTART: Transition(
        _RUNNING,
        Status.PROVISIONING,
        "restart",
        InstanceChanges(desired_state=Desired.RUNNING, error_message=None, replace_gateway=True),
    ),
    # Out of `error` with the instance's id, state and data (extension): its boot again, the gateway of a failed
    # stop or wake replaced first, as by a restart.
    Event.RECOVER: Transition(
        frozenset({Status.ERROR}),
        Status.PROVISIONING,
        "recover",
        InstanceChanges(desired_state=Desired.RUNNING, error_message=None, replace_gateway=True),
    ),
    # Its state replaced by a backup's before its next boot (`domain/restores.py`): the backup to restore is the
    # intent's `restore_backup_id`, kept until the engine launches a gateway on the restored state.
    Event.RESTORE: Transition(
        frozenset({Status.RUNNING, Status.STOPPED, Status.ERROR}),
        Status.PROVISIONING,
        "restore a backup",
        InstanceChanges(desired_state=Desired.RUNNING, error_message=None, replace_gateway=True),
    ),
    # Another release booted on the instance's state (`domain/upgrades.py`), the backup taken before recorded with
    # the target: the engine boots the target, and rolls back to the backup on the old release if it fails.
    Event.UPGRADE: Transition(
        _RUNNING,
        Status.PROVISIONING,
        "upgrade",
        InstanceChanges(desired_state=Desired.RUNNING, error_message=None, replace_gateway=True, upgrade_error=None),
    ),
    Event.DELETE: Transition(LIVE, Status.TERMINATED, "be deleted", InstanceChanges(desired_state=Desired.DELETED)),
    # A new gateway is about to be launched (with new credentials): the one a restart replaces is gone by then.
    Event.LAUNCHING: Transition(
        _PROVISIONING,
        Status.PROVISIONING,
        "launch a gateway",
        InstanceChanges(replace_gateway=False, restore_backup_id=None),
    ),
    # No room on the host yet: the reason is written, the instance stays queued (`domain/admission.py`).
    Event.WAITING: Transition(_PROVISIONING, Status.PROVISIONING, "wait for room", audited=False),
    Event.BOOTED: Transition(
        _PROVISIONING,
        Status.RUNNING,
        "finish booting",
        InstanceChanges(power=Power.AWAKE, wake_at=None),
        announced="instance.running",
    ),
    # A failed restore is dropped (the state dir is as it was, or the boot after it failed): `recover` boots it as is.
    Event.BOOT_FAILED: Transition(
        _PROVISIONING,
        Status.ERROR,
        "fail to boot",
        replace(_NO_UPGRADE, restore_backup_id=None),
        announced="instance.error",
    ),
    Event.RELAUNCHING: Transition(_RUNNING, Status.RUNNING, "launch a gateway"),
    Event.WAKE_FAILED: Transition(_RUNNING, Status.ERROR, "fail to wake", announced="instance.error"),
    Event.SEEN_ALIVE: Transition(_RUNNING, Status.RUNNING, "be seen alive", audited=False),
    Event.SANDBOX_DIED: Transition(_RUNNING, Status.PROVISIONING, "lose its sandbox"),
    Event.STOPPED: Transition(_RUNNING, Status.STOPPED, "finish stopping", announced="instance.stopped"),
    Event.STOP_FAILED: Transition(_RUNNING, Status.ERROR, "fail to stop", announced="instance.error"),
    Event.TORN_DOWN: Transition(
        frozenset({Status.TERMINATED}),
        Status.TERMINATED,
        "be torn down",
        InstanceChanges(torn_down=True),
        announced="instance.deleted",
    ),
    # Announced by the upgrade itself, with the release it left (`instance.upgraded`, `instance.upgrade_rolled_back`).
    Event.UPGRADED: Transition(_PROVISIONING, Status.RUNNING, "finish upgrading", _UP_AGAIN),
    # The new release failed: its backup is restored before the old release boots again (the restore's mark).
    Event.UPGRADE_FAILED: Transition(
        _PROVISIONING, Status.PROVISIONING, "roll an upgrade back", InstanceChanges(replace_gateway=True)
    ),
    Event.ROLLED_BACK: Transition(_PROVISIONING, Status.RUNNING, "finish rolling back", _UP_AGAIN),
}


class IllegalTransition(InvalidState):
    """An event that cannot happen in the instance's status (409 through the API)."""

    def __init__(self, event: Event, status: Status) -> None:
        transition = TRANSITIONS[event]
        allowed = [str(source) for source in Status if source in transition.sources]
        sources = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
        super().__init__(f"Instance is {status}; it must be {sources} to {transition.purpose}.")
        self.event = event
        self.status = status


def apply(
    instances: InstanceRepository,
    org_id: str,
    instance_id: str,
    status: Status,
    event: Event,
    changes: InstanceChanges = InstanceChanges(),
) -> bool:
    """Moves the org's instance, believed to be in `status`, by `event`, writing `changes` and the event's effects with
    it. False when it is no longer in `status` (another transition won the race); IllegalTransition when `event`
    cannot happen in `status`."""
    transition = TRANSITIONS[event]
    if status not in transition.sources:
        raise IllegalTransition(event, status)
    written = replace(changes, **transition.effects.given())
    action = f"instance.{event}" if transition.audited else None
    announce = transition.announced
    return instances.transition(
        org_id, instance_id, status, transition.target, written, utcnow(), action, announce=announce
    )
