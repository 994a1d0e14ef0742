"""The SDK's upgrade call against a real server without the lifecycle engine: the request reaches the server as an
update with `openclaw_version` alone, and its answers come back typed, with its detail."""

from __future__ import annotations

import pytest

from chowder.client import BadRequest, Conflict
from tests.client.conftest import Org


def test_upgrade_reaches_the_server_and_comes_back_typed(org: Org) -> None:
    with org.client() as chowder:
        created = chowder.instances.create("agent")
        with pytest.raises(BadRequest, match="Unknown openclaw_version 'nope'"):
            chowder.instances.upgrade(created.id, "nope")
        assert chowder.instances.upgrade(created.id, created.openclaw_version).openclaw_version == "v1", "no change"
        with pytest.raises(Conflict) as refused:
            chowder.instances.upgrade(created.id, "2026.9.5")
        assert refused.value.detail == "Instance is provisioning; it must be running to upgrade."
        with pytest.raises(BadRequest, match="runs this release already: restore the backup instead"):
            chowder.instances.upgrade(created.id, "v1", upgrade_from_backup="bkp")
