"""Instance records and their repositories: the tenant's view (always by organization id) and the engine's
(across tenants, guarded by leases)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal, Protocol

from chowder.core.pagination import PageRequest
from chowder.domain.models import Desired, Power, Status
from chowder.sandbox.base import Egress


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """An instance with its public fields, its desired state and the engine's bookkeeping. Secrets stay
    encrypted (`*_enc`) until a use case needs them."""

    id: str
    organization_id: str
    name: str
    status: Status
    desired_state: Desired
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_release: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: Egress
    error_message: str | None
    gateway_token_enc: str = field(repr=False)
    model_token_hash: str = field(repr=False)
    model_token_enc: str = field(repr=False)
    status_changed_at: datetime
    observed_at: datetime | None
    # A restart asked for: the engine stops the running gateway before booting instead of adopting it.
    replace_gateway: bool
    torn_down: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    # Sleep when idle (extension): both None (never), or seconds of idleness before freezing and before stopping.
    freeze_after_s: int | None = None
    stop_after_s: int | None = None
    power: Power = Power.AWAKE
    # When idleness freezes it and stops it, pushed back by every call (None: never); when a frozen or asleep
    # instance must be awake again for its next scheduled job.
    idle_freeze_at: datetime | None = None
    idle_stop_at: datetime | None = None
    wake_at: datetime | None = None
    # Restore and clone: the backup whose state the engine puts in place before the next boot (`domain/restores.py`).
    restore_backup_id: str | None = None
    # Scheduled backups (`domain/backup_schedule.py`): every `backup_every_hours`, the newest `backup_keep` kept.
    backup_every_hours: int | None = None
    backup_keep: int | None = None
    backup_due_at: datetime | None = None
    # An upgrade under way (`domain/upgrades.py`): its target, its backup, why the new release failed (rolling back).
    upgrade_version: str | None = None
    upgrade_release: str | None = None
    upgrade_backup_id: str | None = None
    upgrade_error: str | None = None


@dataclass(slots=True)
class PublicInstance:
    """What an instance's owner may see of it, and all a listing reads: no secret, none of the engine's
    bookkeeping (of a page of 50, reading the whole records cost half the request). Read-only, but not frozen: a
    frozen dataclass sets each field through `object.__setattr__`, 2.3 us of each row of a page (with
    `InstanceView`'s, a sixth of a page of 50)."""

    id: str
    organization_id: str
    name: str
    status: Status
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: Egress
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    freeze_after_s: int | None
    stop_after_s: int | None
    power: Power
    backup_every_hours: int | None = None
    backup_keep: int | None = None


class Keep(Enum):
    """The value of an `InstanceChanges` field a transition does not write: None cannot say it, because None is
    what clears a column (an error message, say)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class InstanceChanges:
    """The columns a lifecycle transition writes besides the status (which the transition itself sets, with
    `status_changed_at` when it changes and `updated_at` always)."""

    desired_state: Desired | Keep = KEEP
    error_message: str | None | Keep = KEEP
    gateway_url: str | Keep = KEEP
    sandbox_id: str | Keep = KEEP
    observed_at: datetime | Keep = KEEP
    gateway_token_enc: str | Keep = field(default=KEEP, repr=False)
    model_token_hash: str | Keep = field(default=KEEP, repr=False)
    model_token_enc: str | Keep = field(default=KEEP, repr=False)
    replace_gateway: bool | Keep = KEEP
    torn_down: bool | Keep = KEEP
    deleted_at: datetime | Keep = KEEP
    power: Power | Keep = KEEP
    idle_freeze_at: datetime | None | Keep = KEEP
    idle_stop_at: datetime | None | Keep = KEEP
    wake_at: datetime | None | Keep = KEEP
    restore_backup_id: str | None | Keep = KEEP
    openclaw_version: str | Keep = KEEP
    openclaw_release: str | Keep = KEEP
    upgrade_version: str | None | Keep = KEEP
    upgrade_release: str | None | Keep = KEEP
    upgrade_backup_id: str | None | Keep = KEEP
    upgrade_error: str | None | Keep = KEEP

    def given(self) -> dict[str, Any]:
        """The fields this change writes, by column name."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not KEEP}


@dataclass(frozen=True, slots=True)
class IdleStage:
    """A power change idleness causes: the deadline it must have passed (`freeze` or `stop`), as of `at`."""

    deadline: Literal["freeze", "stop"]
    at: datetime


class InstanceReads(Protocol):
    """The lookups of one tenant's instances that a short read makes (`Transactions.read`): one indexed statement
    each; a deleted (terminated) instance is not visible."""

    def public(self, org_id: str, instance_id: str) -> PublicInstance | None:
        """A visible instance's public fields: of this org and not deleted."""
        ...

    def status_of(self, org_id: str, instance_id: str) -> tuple[Status, str | None] | None:
        """The org's visible instance's status and gateway URL alone (the status route's read, the API's most
        frequent: two columns, not the record)."""
        ...

    def public_of_org(self, org_id: str, page: PageRequest = PageRequest()) -> list[PublicInstance]:
        """The org's visible instances' public fields, newest first: those of the page, and one more if there is
        a next page."""
        ...


class InstanceRepository(InstanceReads, Protocol):
    """Reads and writes of one tenant's instances."""

    def get(self, org_id: str, instance_id: str) -> InstanceRecord | None:
        """A visible instance: of this org and not deleted."""
        ...

    def add(self, instance: InstanceRecord) -> None: ...

    def count_live(self, org_id: str) -> int:
        """What the tier limit and the Stripe quantity count: the org's instances not deleted."""
        ...

    def by_model_token(self, token_hash: str) -> InstanceRecord | None:
        """Cross-tenant by design: the model endpoint learns the org from the instance's credential."""
        ...

    def save(self, instance: InstanceRecord) -> None:
        """Writes back what its owner changes (name, `openclaw_config`, egress) and `updated_at` onto the instance of
        the record's org; never a lifecycle column, which only `transition` writes."""
        ...

    def transition(
        self,
        org_id: str,
        instance_id: str,
        source: Status,
        target: Status,
        changes: InstanceChanges,
        at: datetime,
        action: str | None = None,
        announce: str | None = None,
    ) -> bool:
        """Compare-and-set: moves the org's instance from `source` to `target` with `changes`, as of `at`; False (and
        nothing written) when it is no longer in `source`. With `action`, a move is written to the audit log in the
        same transaction; with `announce`, it is recorded as that webhook event (the instance as it now is) too.
        Only `domain.lifecycle.apply` calls it."""
        ...

    def set_power(
        self,
        org_id: str,
        instance_id: str,
        sources: frozenset[Power],
        target: Power,
        changes: InstanceChanges,
        idle_by: IdleStage | None = None,
    ) -> bool:
        """Compare-and-set on the power of a running instance: False (nothing written) unless it is running with a
        power in `sources`, and, with `idle_by`, still idle at that stage as of `idle_by.at` (a call since pushed its
        deadline back). Only the power changes call it (`domain.power`, `domain.idle`, the engine's wake)."""
        ...

    def touch(self, org_id: str, instance_id: str, now: datetime) -> None:
        """A call used the instance `now`: its idle deadlines move to `now` plus its `auto_stop` delays."""
        ...


@dataclass(frozen=True, slots=True)
class PendingWork:
    """An instance the engine has to act on: its status, whose it is, and since when it has been in that status."""

    id: str
    status: Status
    organization_id: str
    since: datetime


class Claim(Enum):
    """What a claim of an instance's lease did."""

    REFUSED = "refused"  # another worker's lease is in force
    TAKEN = "taken"  # it was free (released) or already ours
    TAKEN_OVER = "taken_over"  # another worker's lease had lapsed unreleased: that worker died or hung


class EngineRepository(Protocol):
    """The lifecycle engine's queries: across tenants, guarded by leases instead of org ids."""

    def census(self) -> dict[tuple[str, str], int]:
        """Instances by status and sandbox provider (terminated ones included)."""
        ...

    def needing_work(self, now: datetime) -> list[PendingWork]:
        """The unleased instances whose observed state differs from the desired one (or was never observed), or whose
        power must change (waking, an idle deadline passed, a scheduled job soon due), longest in their status
        first."""
        ...

    def queue_depth(self, now: datetime) -> int:
        """How many instances `needing_work` would give (counted, not read)."""
        ...

    def liveness_due(self, now: datetime, observe_before: datetime) -> dict[str, tuple[str, str]]:
        """The unleased running instances last seen alive before `observe_before`, with their provider and
        sandbox."""
        ...

    def seen_alive(self, instance_ids: list[str], now: datetime, observe_before: datetime) -> None:
        """Marks those still running as wanted, unleased and unseen since `observe_before` seen alive `now`: no
        lease, no transition, a handful of statements for a fleet."""
        ...

    def claim(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> Claim: ...

    def renew(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Extends a lease `owner` still holds; False once it lapsed or was released, so a late renewal never
        takes back what another worker may own by now."""
        ...

    def release(self, instance_id: str, owner: str) -> None: ...

    def leased(self, instance_id: str, owner: str) -> InstanceRecord | None:
        """The instance, if `owner` holds its lease."""
        ...

    def state_of(self, instance_id: str) -> tuple[Status, Desired] | None: ...

    def kept_sandboxes(self, provider: str) -> set[str]:
        """The sandboxes on a provider of instances not torn down: never orphans."""
        ...
