"""`chowder keys` and `chowder org` with spend caps (extension), run as processes against a real server without
the engine: a key created with a monthly token limit, changed and lifted with `keys limit`, the org's with
`org limit`, each shown with this month's use; a limit that is not a number of tokens refused by the CLI."""

from __future__ import annotations

import json

from tests.client.conftest import Cli, Org
from tests.client.test_cli import login


def test_limits_are_set_shown_and_lifted(cli: Cli, org: Org) -> None:
    login(cli, org)
    instance_id = cli("instances", "create", "capped").stdout.strip()
    cli("keys", "create", "capped", "-i", instance_id, "-p", "read", "--monthly-token-limit", "5000")
    [key] = json.loads(cli("keys", "list", "--json").stdout)
    assert key["monthly_token_limit"] == 5000
    assert "tokens this month: 0 of 5,000" in cli("keys", "get", key["id"]).stdout
    assert "0 of 1,000,000 tokens" in cli("keys", "limit", key["id"], "1000000").stderr
    assert "0 (no cap)" in cli("keys", "limit", key["id"], "none").stderr
    assert json.loads(cli("keys", "get", key["id"], "--json").stdout)["monthly_token_limit"] is None
    refused = cli("keys", "limit", key["id"], "0", ok=False)
    assert refused.returncode == 2 and "not a number of tokens" in refused.stderr

    assert "0 of 250,000 tokens" in cli("org", "limit", "250000").stderr
    assert "tokens this month" in cli("org", "show").stdout and "0 of 250,000" in cli("org", "show").stdout
    cli("org", "limit", "none")
    assert json.loads(cli("org", "show", "--json").stdout)["monthly_token_limit"] is None
