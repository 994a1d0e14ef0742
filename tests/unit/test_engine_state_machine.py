"""The instance state machine: every transition of the table as the database applies it, every other event
refused with one error (409 through the API, with the texts the API has always given), and the compare-and-set
that lets exactly one of two racing writers win."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from chowder.core.crypto import SecretBox
from chowder.core.errors import InvalidState
from chowder.domain import lifecycle
from chowder.domain.intents import record_intent
from chowder.domain.lifecycle import TRANSITIONS, Event, IllegalTransition
from chowder.domain.models import Desired, Status
from chowder.domain.ports.instances import InstanceChanges, InstanceRecord, InstanceRepository
from chowder.domain.ports.storage import UnitOfWork
from chowder.persistence.db import Database, migrate
from chowder.persistence.records import record_of
from chowder.persistence.store import SqlTransactions
from chowder.persistence.tables import InstanceRow
from tests.fakes.records import add_instance

BOX = SecretBox("state machine tests")
LEGAL = [(event, source) for event, transition in TRANSITIONS.items() for source in sorted(transition.sources)]
ILLEGAL = [(event, status) for event in Event for status in Status if status not in TRANSITIONS[event].sources]


class Store:
    """One database for the module (the state machine needs no fresh one per case): each case adds its own
    instance."""

    def __init__(self, path: Path) -> None:
        self.db = Database(f"sqlite:///{path / 'chowder.db'}")
        migrate(self.db.engine)
        self.tx = SqlTransactions(self.db)

    def add(self, status: Status) -> InstanceRecord:
        return self.tx.run_sync(lambda uow: add_instance(uow, BOX, status=status))

    def read(self, instance_id: str) -> InstanceRecord:
        with self.db.session() as session:
            row = session.get(InstanceRow, instance_id)
            assert row is not None
            return record_of(InstanceRecord, row)

    def apply(self, instance: InstanceRecord, status: Status, event: Event, changes: InstanceChanges) -> bool:
        return self.tx.run_sync(
            lambda uow: lifecycle.apply(uow.instances, instance.organization_id, instance.id, status, event, changes)
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store(tmp_path_factory.mktemp("state-machine"))
    yield opened
    opened.db.dispose()


@pytest.mark.parametrize(("event", "source"), LEGAL, ids=[f"{e}-from-{s}" for e, s in LEGAL])
def test_every_transition_of_the_table(store: Store, event: Event, source: Status) -> None:
    before = store.add(source)
    payload = InstanceChanges(error_message="why") if event is Event.BOOT_FAILED else InstanceChanges()
    assert store.apply(before, source, event, payload)
    after = store.read(before.id)
    transition = TRANSITIONS[event]
    assert after.status == transition.target
    expected = replace(before, status=transition.target, **(payload.given() | transition.effects.given()))
    moved = transition.target != source
    assert after == replace(
        expected,
        status_changed_at=after.status_changed_at if moved else before.status_changed_at,
        updated_at=after.updated_at,
    ), "only the status, the event's effects and its payload change"
    assert (after.status_changed_at > before.status_changed_at) == moved
    assert after.updated_at > before.updated_at


@pytest.mark.parametrize(("event", "status"), ILLEGAL, ids=[f"{e}-from-{s}" for e, s in ILLEGAL])
def test_every_other_event_is_refused_and_writes_nothing(store: Store, event: Event, status: Status) -> None:
    before = store.add(status)
    with pytest.raises(IllegalTransition) as refused:
        store.apply(before, status, event, InstanceChanges())
    assert isinstance(refused.value, InvalidState), "a 409 through the API"
    assert store.read(before.id) == before


def test_refusals_say_what_the_instance_is_and_must_be() -> None:
    texts = {
        (Event.START, Status.RUNNING): "Instance is running; it must be stopped to start.",
        (Event.START, Status.PROVISIONING): "Instance is provisioning; it must be stopped to start.",
        (Event.STOP, Status.STOPPED): "Instance is stopped; it must be running to stop.",
        (Event.STOP, Status.ERROR): "Instance is error; it must be running to stop.",
        (Event.RESTART, Status.STOPPED): "Instance is stopped; it must be running to restart.",
        (Event.DELETE, Status.TERMINATED): (
            "Instance is terminated; it must be provisioning, running, stopped or error to be deleted."
        ),
    }
    for (event, status), text in texts.items():
        assert IllegalTransition(event, status).detail == text


def test_a_transition_from_a_status_the_instance_has_left_writes_nothing(store: Store) -> None:
    """The engine's report of a boot that a delete overtook: the delete stands."""
    instance = store.add(Status.TERMINATED)
    assert not store.apply(instance, Status.PROVISIONING, Event.BOOTED, InstanceChanges(gateway_url="http://x"))
    assert store.read(instance.id) == instance


class _SeenBeforeTheEngineMoved:
    """A unit of work's instances whose first read is from before the engine's last transition."""

    def __init__(self, instances: InstanceRepository, stale: InstanceRecord) -> None:
        self._instances = instances
        self._stale: InstanceRecord | None = stale

    def get(self, org_id: str, instance_id: str) -> InstanceRecord | None:
        stale, self._stale = self._stale, None
        return stale or self._instances.get(org_id, instance_id)

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
        return self._instances.transition(org_id, instance_id, source, target, changes, at, action, announce)


def test_an_intent_is_judged_again_on_the_status_the_engine_left(store: Store) -> None:
    """A delete read the instance provisioning; the engine booted it before the delete was written: the delete
    applies to the running instance instead of being lost."""
    instance = store.add(Status.RUNNING)
    stale = replace(instance, status=Status.PROVISIONING)

    def delete(uow: UnitOfWork) -> None:
        racing = SimpleNamespace(instances=_SeenBeforeTheEngineMoved(uow.instances, stale))
        record_intent(racing, instance.organization_id, instance.id, Event.DELETE)

    store.tx.run_sync(delete)
    after = store.read(instance.id)
    assert (after.status, after.desired_state) == (Status.TERMINATED, Desired.DELETED)
