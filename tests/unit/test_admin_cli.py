"""`chowder admin`: the operator's tier override and org listing, on the server's real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from chowder.cli.main import app
from chowder.domain import orgs
from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from tests.factories import new_org

pytestmark = pytest.mark.persistence


def test_set_tier_and_list(data_dir: Path, database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    org_id = new_org(tx, "Big Fish Ltd")
    env = {"CHOWDER_DATA_DIR": str(data_dir), "CHOWDER_DATABASE_URL": database_url}
    runner = CliRunner()

    granted = runner.invoke(app, ["admin", "set-tier", org_id, "whale"], env=env)
    assert granted.exit_code == 0, granted.output
    assert "now on whale: 0/unlimited" in granted.output
    assert tx.run_sync(lambda uow: orgs.view(uow, org_id)).instance_limit is None

    listed = runner.invoke(app, ["admin", "orgs"], env=env)
    assert listed.exit_code == 0 and org_id in listed.output and "whale" in listed.output

    assert runner.invoke(app, ["admin", "set-tier", org_id, "kraken"], env=env).exit_code == 2
    missing = runner.invoke(app, ["admin", "set-tier", "00000000-0000-4000-8000-000000000000", "crab"], env=env)
    assert missing.exit_code == 1 and "No organization" in missing.output
    db.dispose()
