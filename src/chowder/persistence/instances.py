"""SQL repositories of instances (the ports in `domain/ports/instances.py`).

Instance rows are never changed as ORM objects, only by UPDATE statements (a transition is a compare-and-set), so
every read refreshes what the session may hold: a record is the row as it is now, never a cached copy of it."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.orm import Session

from chowder.core.ids import sandbox_id_of
from chowder.core.pagination import PageRequest
from chowder.domain.audit import audit_entry
from chowder.domain.lifecycle import LIVE
from chowder.domain.models import Desired, Power, Status
from chowder.domain.ports.audit import AuditEntry
from chowder.domain.ports.instances import (
    Claim,
    IdleStage,
    InstanceChanges,
    InstanceRecord,
    PendingWork,
    PublicInstance,
)
from chowder.domain.webhooks import announce as announce_event
from chowder.persistence.audit import SqlAuditRepository
from chowder.persistence.leases import lapsed
from chowder.persistence.pages import PreparedPages
from chowder.persistence.records import Executes, changed_one, columns_of, record_of, records_of
from chowder.persistence.tables import InstanceRow
from chowder.persistence.webhooks import SqlWebhookRepository

_BATCH = 500  # ids per statement, well below every database's bound-parameter limit

# The reads of every authenticated request (an instance's status, the instance, a page of the org's), as Core
# statements on the table, built once: building a statement anew and loading rows as ORM objects cost most of such
# a request (in-process, status_of: 470 -> 165 us). LIVE as fixed parameters, not an expanding IN, which is
# rewritten at every execution.
_TABLE = InstanceRow.__table__
_LIVE = _TABLE.c.status.in_([literal(status.value) for status in sorted(LIVE)])
_THIS = (_TABLE.c.id == bindparam("instance_id"), _TABLE.c.organization_id == bindparam("org_id"), _LIVE)
_ONE = select(_TABLE).where(*_THIS)
_STATUS = select(_TABLE.c.status, _TABLE.c.gateway_url).where(*_THIS)
_PUBLIC = select(*(_TABLE.c[column.name] for column in fields(PublicInstance)))
_PUBLIC_ONE = _PUBLIC.where(*_THIS)
_PUBLIC_PAGES = PreparedPages(
    _PUBLIC.where(_TABLE.c.organization_id == bindparam("org_id"), _LIVE), _TABLE.c.created_at, _TABLE.c.id
)
# An instance as its webhook events describe it.
_ANNOUNCED = ("id", "name", "status", "error_message", "openclaw_version")


class SqlInstanceReads:
    """The short reads, on a session or on a bare connection (`SqlTransactions.read`: no session to set up)."""

    def __init__(self, executes: Executes) -> None:
        self._executes = executes

    def public(self, org_id: str, instance_id: str) -> PublicInstance | None:
        found = records_of(PublicInstance, self._executes.execute(_PUBLIC_ONE, _these(org_id, instance_id)))
        return found[0] if found else None

    def status_of(self, org_id: str, instance_id: str) -> tuple[Status, str | None] | None:
        row = self._executes.execute(_STATUS, _these(org_id, instance_id)).one_or_none()
        return None if row is None else (Status(row.status), row.gateway_url)

    def public_of_org(self, org_id: str, page: PageRequest = PageRequest()) -> list[PublicInstance]:
        statement, parameters = _PUBLIC_PAGES.statement(page)
        return records_of(PublicInstance, self._executes.execute(statement, {"org_id": org_id, **parameters}))


def _these(org_id: str, instance_id: str) -> dict[str, str]:
    return {"instance_id": instance_id, "org_id": org_id}


class SqlInstanceRepository(SqlInstanceReads):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session

    def add(self, instance: InstanceRecord) -> None:
        self._session.add(InstanceRow(**columns_of(instance)))
        self._session.flush()
        self._audit(audit_entry(instance.organization_id, "instance.create", instance_id=instance.id))

    def get(self, org_id: str, instance_id: str) -> InstanceRecord | None:
        found = records_of(InstanceRecord, self._session.execute(_ONE, _these(org_id, instance_id)))
        return found[0] if found else None

    def count_live(self, org_id: str) -> int:
        count = self._session.scalar(
            select(func.count()).select_from(InstanceRow).where(InstanceRow.organization_id == org_id, _LIVE)
        )
        return count or 0

    def by_model_token(self, token_hash: str) -> InstanceRecord | None:
        return _one(
            self._session,
            select(InstanceRow).where(InstanceRow.model_token_hash == token_hash, _LIVE),
        )

    def save(self, instance: InstanceRecord) -> None:
        changed_one(
            self._session,
            update(InstanceRow)
            .where(InstanceRow.id == instance.id, InstanceRow.organization_id == instance.organization_id)
            .values(
                name=instance.name,
                openclaw_config=instance.openclaw_config,
                egress=instance.egress,
                freeze_after_s=instance.freeze_after_s,
                stop_after_s=instance.stop_after_s,
                backup_every_hours=instance.backup_every_hours,
                backup_keep=instance.backup_keep,
                backup_due_at=instance.backup_due_at,
                updated_at=instance.updated_at,
            ),
        )

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
        values = changes.given() | {"status": target, "updated_at": at}
        if target != source:
            values["status_changed_at"] = at
        moved = changed_one(
            self._session,
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.organization_id == org_id, InstanceRow.status == source)
            .values(**values),
        )
        if moved and action is not None:
            detail = {"from": str(source), "to": str(target)}
            self._audit(audit_entry(org_id, action, instance_id=instance_id, detail=detail))
        if moved and announce is not None:
            self._announce(org_id, instance_id, announce, source)
        return moved

    def _announce(self, org_id: str, instance_id: str, event_type: str, source: Status) -> None:
        """The webhook event of a transition, with the instance as the transition left it (deleted ones too)."""
        row = self._session.execute(
            select(*(_TABLE.c[name] for name in _ANNOUNCED)).where(
                _TABLE.c.id == instance_id, _TABLE.c.organization_id == org_id
            )
        ).one()
        data = {"instance": dict(row._mapping), "previous_status": str(source)}
        announce_event(SqlWebhookRepository(self._session), org_id, event_type, data)

    def set_power(
        self,
        org_id: str,
        instance_id: str,
        sources: frozenset[Power],
        target: Power,
        changes: InstanceChanges,
        idle_by: IdleStage | None = None,
    ) -> bool:
        where = [
            InstanceRow.id == instance_id,
            InstanceRow.organization_id == org_id,
            InstanceRow.status == Status.RUNNING,
            InstanceRow.power.in_(sources),
        ]
        if idle_by is not None:
            deadline = InstanceRow.idle_freeze_at if idle_by.deadline == "freeze" else InstanceRow.idle_stop_at
            where.append(deadline <= idle_by.at)
        values = changes.given() | {"power": target}
        changed = changed_one(self._session, update(InstanceRow).where(*where).values(**values))
        if changed:
            detail = {"from": sorted(str(source) for source in sources), "to": str(target)}
            self._audit(audit_entry(org_id, "instance.power", instance_id=instance_id, detail=detail))
        return changed

    def _audit(self, entry: AuditEntry) -> None:
        SqlAuditRepository(self._session).add(entry)

    def touch(self, org_id: str, instance_id: str, now: datetime) -> None:
        mine = (InstanceRow.id == instance_id, InstanceRow.organization_id == org_id)
        delays = self._session.execute(select(InstanceRow.freeze_after_s, InstanceRow.stop_after_s).where(*mine))
        row = delays.one_or_none()
        if row is None:
            return
        freeze_s, stop_s = row
        freeze_at = stop_at = None
        if freeze_s is not None and stop_s is not None:
            freeze_at, stop_at = now + timedelta(seconds=freeze_s), now + timedelta(seconds=stop_s)
        changed_one(
            self._session, update(InstanceRow).where(*mine).values(idle_freeze_at=freeze_at, idle_stop_at=stop_at)
        )


class SqlEngineRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def needing_work(self, now: datetime) -> list[PendingWork]:
        columns = (InstanceRow.id, InstanceRow.status, InstanceRow.organization_id, InstanceRow.status_changed_at)
        rows = self._session.execute(
            select(*columns).where(*_needing_work(now)).order_by(InstanceRow.status_changed_at, InstanceRow.id)
        )
        return [PendingWork(row.id, Status(row.status), row.organization_id, row.status_changed_at) for row in rows]

    def queue_depth(self, now: datetime) -> int:
        return self._session.scalar(select(func.count()).select_from(InstanceRow).where(*_needing_work(now))) or 0

    def census(self) -> dict[tuple[str, str], int]:
        counts = select(InstanceRow.status, InstanceRow.sandbox_provider, func.count()).group_by(
            InstanceRow.status, InstanceRow.sandbox_provider
        )
        return {(status, provider): count for status, provider, count in self._session.execute(counts)}

    def liveness_due(self, now: datetime, observe_before: datetime) -> dict[str, tuple[str, str]]:
        due = select(InstanceRow.id, InstanceRow.sandbox_provider, InstanceRow.sandbox_id).where(
            *_alive_unleased(now), _unseen_since(observe_before)
        )
        return {
            row.id: (row.sandbox_provider, sandbox_id_of(row.id, row.sandbox_id)) for row in self._session.execute(due)
        }

    def seen_alive(self, instance_ids: list[str], now: datetime, observe_before: datetime) -> None:
        for first in range(0, len(instance_ids), _BATCH):
            changed_one(
                self._session,
                update(InstanceRow)
                .where(
                    InstanceRow.id.in_(instance_ids[first : first + _BATCH]),
                    *_alive_unleased(now),
                    _unseen_since(observe_before),
                )
                .values(observed_at=now),
            )

    def claim(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> Claim:
        """Compare-and-set: take another worker's expired lease (a takeover), else a free one or our own."""
        take = (
            update(InstanceRow)
            .where(InstanceRow.id == instance_id)
            .values(lease_owner=owner, lease_expires_at=now + lease)
        )
        other_lapsed = (InstanceRow.lease_owner != owner, InstanceRow.lease_expires_at < now)
        if changed_one(self._session, take.where(*other_lapsed)):
            return Claim.TAKEN_OVER
        free_or_ours = or_(lapsed(InstanceRow.lease_expires_at, now), InstanceRow.lease_owner == owner)
        return Claim.TAKEN if changed_one(self._session, take.where(free_or_ours)) else Claim.REFUSED

    def renew(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        return changed_one(
            self._session,
            update(InstanceRow)
            .where(
                InstanceRow.id == instance_id,
                InstanceRow.lease_owner == owner,
                ~lapsed(InstanceRow.lease_expires_at, now),
            )
            .values(lease_expires_at=now + lease),
        )

    def release(self, instance_id: str, owner: str) -> None:
        changed_one(
            self._session,
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None),
        )

    def leased(self, instance_id: str, owner: str) -> InstanceRecord | None:
        return _one(
            self._session, select(InstanceRow).where(InstanceRow.id == instance_id, InstanceRow.lease_owner == owner)
        )

    def state_of(self, instance_id: str) -> tuple[Status, Desired] | None:
        row = self._session.execute(
            select(InstanceRow.status, InstanceRow.desired_state).where(InstanceRow.id == instance_id)
        ).one_or_none()
        return None if row is None else (Status(row[0]), Desired(row[1]))

    def kept_sandboxes(self, provider: str) -> set[str]:
        rows = self._session.execute(
            select(InstanceRow.id, InstanceRow.sandbox_id).where(
                InstanceRow.sandbox_provider == provider, InstanceRow.torn_down.is_(False)
            )
        )
        return {sandbox_id_of(row.id, row.sandbox_id) for row in rows}


def _needing_work(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Unleased, and its status differs from its intent, was never observed, or its power is due to change."""
    return (
        or_(
            InstanceRow.status == Status.PROVISIONING,
            (InstanceRow.status == Status.RUNNING) & (InstanceRow.desired_state != Desired.RUNNING),
            (InstanceRow.status == Status.RUNNING) & InstanceRow.observed_at.is_(None),
            (InstanceRow.status == Status.TERMINATED) & InstanceRow.torn_down.is_(False),
            (InstanceRow.status == Status.RUNNING) & _power_due(now),
        ),
        lapsed(InstanceRow.lease_expires_at, now),
    )


def _power_due(now: datetime) -> ColumnElement[bool]:
    """Waking, or past a deadline of its power: idle long enough to freeze (when awake) or to sleep (awake or
    frozen), or a scheduled job soon due while frozen or asleep (paged out or stopped)."""
    return or_(
        InstanceRow.power == Power.WAKING,
        and_(InstanceRow.power == Power.AWAKE, InstanceRow.idle_freeze_at <= now),
        and_(InstanceRow.power.in_((Power.AWAKE, Power.FROZEN)), InstanceRow.idle_stop_at <= now),
        and_(InstanceRow.power.in_((Power.FROZEN, Power.PAGED, Power.ASLEEP)), InstanceRow.wake_at <= now),
    )


def _alive_unleased(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Running as wanted with a gateway meant to be up (awake, frozen or paged out), and nobody working on it."""
    return (
        InstanceRow.status == Status.RUNNING,
        InstanceRow.desired_state == Desired.RUNNING,
        InstanceRow.power.in_((Power.AWAKE, Power.FROZEN, Power.PAGED)),
        lapsed(InstanceRow.lease_expires_at, now),
    )


def _unseen_since(observe_before: datetime) -> ColumnElement[bool]:
    return InstanceRow.observed_at < observe_before


def _one(session: Session, statement: Select[InstanceRow]) -> InstanceRecord | None:
    row = session.scalars(statement.execution_options(populate_existing=True)).one_or_none()
    return None if row is None else record_of(InstanceRecord, row)
