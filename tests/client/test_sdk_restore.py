"""The SDK's restore and clone calls against a real server without the lifecycle engine: the request shapes reach
the server and its refusals come back typed, with its detail."""

from __future__ import annotations

import pytest

from chowder.client import BadRequest, Conflict, NotFound, PaymentRequired
from tests.client.conftest import Org


def test_restore_and_clone_reach_the_server_and_come_back_typed(org: Org) -> None:
    with org.client() as chowder:
        created = chowder.instances.create("original")
        with pytest.raises(NotFound) as unknown:
            chowder.instances.restore(created.id, "no-such-backup")
        assert (unknown.value.status, unknown.value.detail) == (404, "Backup not found.")
        with pytest.raises(BadRequest, match="Give either from_backup or clone_from, not both."):
            chowder.instances.create("clone", from_backup="b", clone_from=created.id)
        with pytest.raises(NotFound, match="Instance not found."):
            chowder.instances.create("clone", clone_from="no-such-instance")
        with pytest.raises(PaymentRequired, match="Instance limit reached"):  # checked before a backup is taken
            chowder.instances.create("clone", clone_from=created.id)
        org.make_whale()
        with pytest.raises(Conflict, match="Instance is provisioning"):  # no backup of an instance not up yet
            chowder.instances.create("clone", clone_from=created.id)
