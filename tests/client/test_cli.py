"""The `chowder` client commands, run as processes against a real server without the lifecycle engine: login
and its stored credentials, instances, keys, usage and errors. (Chat, files and progress to `running` need a
gateway: `test_gateway.py`.)"""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from chowder.client import Chowder, Unauthorized
from tests.client.conftest import Cli, Org, signed_up
from tests.e2e.harness import Server


def login(cli: Cli, org: Org) -> None:
    cli("login", "--url", org.server.url, "--key", org.key)


def test_login_checks_the_key_and_stores_it_for_the_user_only(cli: Cli, org: Org) -> None:
    refused = cli("login", "--url", org.server.url, "--key", "chd_org_" + "0" * 64, ok=False)
    assert refused.returncode == 1 and "does not accept this key" in refused.stderr
    assert not cli.credentials.exists()

    done = cli("login", "--url", org.server.url + "/v1", "--key", org.key)
    assert "Logged in" in done.stderr and org.id not in done.stdout
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.credentials.parent.stat().st_mode) == 0o700
    assert json.loads(cli.credentials.read_text()) == {"url": org.server.url + "/v1", "api_key": org.key}
    assert json.loads(cli("instances", "list", "--json").stdout) == []

    assert "Removed" in cli("logout").stderr and not cli.credentials.exists()
    gone = cli("instances", "list", ok=False)
    assert gone.returncode == 1 and "Not logged in" in gone.stderr


def test_a_scoped_key_may_log_in(cli: Cli, org: Org) -> None:
    with org.client() as chowder:
        instance = chowder.instances.create("scoped")
        raw = chowder.keys.create("cli", instance_ids=[instance.id], permissions=["read"]).raw_key
    assert "a scoped key" in cli("login", "--url", org.server.url, "--key", raw).stderr
    assert json.loads(cli("instances", "get", instance.id, "--json").stdout)["id"] == instance.id
    refused = cli("instances", "list", ok=False)
    assert refused.returncode == 1 and "requires an organization key" in refused.stderr


def test_the_environment_wins_over_the_stored_login(cli: Cli, org: Org, api_server: Server) -> None:
    other = signed_up(api_server, "Other")
    login(cli, other)
    with org.client() as chowder:
        chowder.instances.create("from-env")
    listed = cli("instances", "list", "--json", CHOWDER_URL=org.server.url, CHOWDER_API_KEY=org.key)
    assert [i["name"] for i in json.loads(listed.stdout)] == ["from-env"]
    assert json.loads(cli("instances", "list", "--json").stdout) == []


def test_signup_makes_an_organization_and_logs_in(cli: Cli, api_server: Server) -> None:
    done = cli("signup", "Newcomers", "--url", api_server.url)
    key = done.stdout.strip()
    assert key.startswith("chd_org_") and "shown only now" in done.stderr
    assert json.loads(cli.credentials.read_text())["api_key"] == key
    with Chowder(api_server.url, key) as chowder:
        assert chowder.organization.get().name == "Newcomers"


def test_instances_are_created_shown_and_deleted_by_id_or_name(cli: Cli, org: Org) -> None:
    login(cli, org)
    instance_id = cli("instances", "create", "helper", "--egress", "none").stdout.strip()
    table = cli("instances", "list").stdout
    assert "helper" in table and "provisioning" in table and instance_id in table
    shown = json.loads(cli("instances", "get", "helper", "--json").stdout)
    assert (shown["id"], shown["egress"], shown["status"]) == (instance_id, "none", "provisioning")
    assert "provisioning" in cli("instances", "get", instance_id).stdout

    refused = cli("instances", "delete", "helper", ok=False, timeout=30)  # asks first; no answer is no
    assert refused.returncode != 0
    cli("instances", "delete", "helper", "--yes")
    missing = cli("instances", "get", instance_id, ok=False)
    assert missing.returncode == 1 and "Instance not found." in missing.stderr
    unknown = cli("instances", "get", "helper", ok=False)
    assert "No instance is named 'helper'" in unknown.stderr


def test_create_wait_shows_the_steps_and_gives_up_in_time(cli: Cli, org: Org) -> None:
    login(cli, org)
    done = cli("instances", "create", "stuck", "--wait", "--timeout", "2", ok=False)
    assert done.returncode == 1
    assert "created, waiting for the engine" in done.stderr
    assert "Instance still provisioning after 2 s." in done.stderr


def test_errors_are_one_line_with_the_servers_detail(cli: Cli, org: Org) -> None:
    login(cli, org)
    instance_id = cli("instances", "create", "busy").stdout.strip()
    for args, detail in [
        (("instances", "create", "second"), "Instance limit reached (1/1). Upgrade your subscription."),
        (("instances", "start", instance_id), "Instance is provisioning; it must be stopped to start."),
        (("files", "ls", instance_id), "Instance is provisioning, not running."),
        (("chat", instance_id, "-m", "hi"), "Instance is provisioning, not running."),
        (("instances", "create", ""), "name: String should have at least 1 character"),
        (("instances", "restore", instance_id, "no-such-backup"), "Backup not found."),
        (("instances", "create", "twin", "--clone-from", instance_id), "Instance limit reached (1/1)."),
    ]:
        done = cli(*args, ok=False)
        assert done.returncode == 1 and detail in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_keys_are_created_once_listed_and_revoked(cli: Cli, org: Org) -> None:
    login(cli, org)
    instance_id = cli("instances", "create", "keyed").stdout.strip()
    made = cli("keys", "create", "teammate", "-i", instance_id, "-p", "read", "-p", "files")
    raw = made.stdout.strip()
    assert raw.startswith("chd_sk_") and "not shown again" in made.stderr
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert [(k["name"], k["is_active"], k["key_prefix"]) for k in listed] == [("teammate", True, raw[:12])]
    assert raw not in cli("keys", "list").stdout
    detail = json.loads(cli("keys", "get", listed[0]["id"], "--json").stdout)
    assert [(g["instance_id"], sorted(g["permissions"])) for g in detail["instances"]] == [
        (instance_id, ["files", "read"])
    ]
    cli("keys", "revoke", listed[0]["id"])
    assert json.loads(cli("keys", "list", "--json").stdout)[0]["is_active"] is False
    with Chowder(org.server.url, raw) as revoked, pytest.raises(Unauthorized):
        revoked.instances.status(instance_id)


def test_the_organization_and_its_model_keys(cli: Cli, org: Org) -> None:
    login(cli, org)
    assert "anthropic" in cli("org", "show").stdout
    cli("org", "model-key", "openai", "--key", "sk-test")
    cli("org", "model-key", "anthropic", "--remove")
    shown = json.loads(cli("org", "show", "--json").stdout)
    assert (shown["id"], shown["model_providers"], shown["subscription_tier"]) == (org.id, ["openai"], "shrimp")
    refused = cli("org", "model-key", "mistral", "--key", "x", ok=False)
    assert refused.returncode == 2 and "mistral" in refused.stderr


def test_usage_reads_the_organization_and_one_instance(cli: Cli, org: Org) -> None:
    login(cli, org)
    instance_id = cli("instances", "create", "counted").stdout.strip()
    everything = json.loads(cli("usage", "--json").stdout)
    assert everything["total"] == {"requests": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    one = json.loads(cli("usage", "counted", "--json", "--since", "2026-01-01T00:00:00+00:00").stdout)
    assert one["instance_id"] == instance_id and one["since"].startswith("2026-01-01T00:00:00")
    table = cli("usage", instance_id).stdout
    assert "session" in table and "model" in table and "total" in table


def test_the_server_side_commands_are_still_there(cli: Cli) -> None:
    manifests = cli("deploy", "kubernetes", "--replicas", "1").stdout
    assert "kind: Deployment" in manifests
    for command in ("serve", "worker", "doctor", "runtime", "admin"):
        assert cli(command, "--help").returncode == 0


def test_the_client_commands_load_no_server_code() -> None:
    """They are a client of the API like any other: the server's packages stay out of their imports."""
    server_side = ("fastapi", "sqlalchemy", "starlette", "uvicorn", "docker", "kubernetes", "stripe")
    probe = f"import sys, chowder.cli.client_commands; print(sorted(m for m in {server_side} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
