"""The tenancy repositories on a real database: a key's grants are read and dropped only within its own
organization, whatever ids a caller names."""

from __future__ import annotations

import pytest

from chowder.domain.keys import mint
from chowder.domain.models import KeyKind, Permission
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import Grant
from chowder.persistence.store import SqlTransactions
from tests.factories import add_instance_of, new_org

pytestmark = pytest.mark.persistence

READ = (Permission.READ,)


def test_grants_are_read_only_with_the_keys_own_org(tx: SqlTransactions) -> None:
    ours, theirs = new_org(tx, "Ours"), new_org(tx, "Theirs")

    def setup(uow: UnitOfWork) -> str:
        instance_id = add_instance_of(uow, ours)
        key, _ = mint(uow, ours, KeyKind.SCOPED, "k", None, [Grant(instance_id, READ)])
        return key.id

    key_id = tx.run_sync(setup)
    assert tx.run_sync(lambda uow: uow.keys.grants(theirs, key_id)) == []
    assert tx.run_sync(lambda uow: uow.keys.get_scoped(theirs, key_id)) is None
    [grant] = tx.run_sync(lambda uow: uow.keys.grants(ours, key_id))
    assert grant.permissions == READ


def test_dropping_an_instances_grants_touches_only_the_named_orgs_keys(tx: SqlTransactions) -> None:
    ours, theirs = new_org(tx, "Ours"), new_org(tx, "Theirs")

    def setup(uow: UnitOfWork) -> tuple[str, str, str]:
        instance_id = add_instance_of(uow, ours)
        # A key of another org holding a grant on this instance cannot be made through the API; the store must
        # still leave it alone when it drops "our" grants.
        our_key, _ = mint(uow, ours, KeyKind.SCOPED, "ours", None, [Grant(instance_id, READ)])
        their_key, _ = mint(uow, theirs, KeyKind.SCOPED, "theirs", None, [Grant(instance_id, READ)])
        return instance_id, our_key.id, their_key.id

    instance_id, our_key, their_key = tx.run_sync(setup)
    tx.run_sync(lambda uow: uow.keys.drop_grants_of_instance(theirs, "no-such-instance"))
    tx.run_sync(lambda uow: uow.keys.drop_grants_of_instance(theirs, instance_id))
    assert len(tx.run_sync(lambda uow: uow.keys.grants(ours, our_key))) == 1, "another org's drop left ours"
    assert tx.run_sync(lambda uow: uow.keys.grants(theirs, their_key)) == []

    tx.run_sync(lambda uow: uow.keys.drop_grants_of_instance(ours, instance_id))
    assert tx.run_sync(lambda uow: uow.keys.grants(ours, our_key)) == []


def test_a_failed_use_case_leaves_nothing_behind(tx: SqlTransactions) -> None:
    org_id = new_org(tx, "Rolled Back")

    def half_done(uow: UnitOfWork) -> None:
        add_instance_of(uow, org_id)
        raise RuntimeError("the use case failed after its first write")

    with pytest.raises(RuntimeError):
        tx.run_sync(half_done)
    assert tx.run_sync(lambda uow: uow.instances.count_live(org_id)) == 0
