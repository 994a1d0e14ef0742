"""The files API on a real instance: its OpenClaw state dir, through the sandbox provider."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import pytest

from tests.e2e.harness import PROVIDERS, RunningInstance, provider_env, running_instance
from tests.factories import auth, scoped_key

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ESCAPE = {"detail": "Path escapes the instance root."}


@pytest.fixture(scope="module", params=PROVIDERS)
def inst(request: pytest.FixtureRequest) -> Iterator[RunningInstance]:
    # ClawHub on a closed port: a skill install fails fast, as it would on a machine without egress.
    settings = {"CHOWDER_MAX_UPLOAD_MB": "1", "CHOWDER_CLAWHUB_URL": "http://127.0.0.1:9", **provider_env(request)}
    with running_instance("Files", **settings) as env:
        yield env


def test_write_read_list(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    response = client.put(
        f"{inst.base}/files/content",
        headers=headers,
        json={"path": "config/custom.json", "content": '{"hello": "wörld"}'},
    )
    assert response.status_code == 204 and response.content == b""
    read = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "config/custom.json"})
    assert read.json() == {"path": "config/custom.json", "content": '{"hello": "wörld"}'}
    listing = client.get(f"{inst.base}/files", headers=headers).json()
    assert listing["path"] == "."
    names = {e["name"]: e for e in listing["entries"]}
    assert {"openclaw.json", "state", "config"} <= set(names)
    assert names["config"]["is_dir"] is True and names["config"]["size"] == 0
    assert re.fullmatch(r"d[rwx-]{9}", names["config"]["permissions"])
    entry = names["openclaw.json"]
    assert entry["is_dir"] is False and entry["size"] > 0 and entry["path"] == "openclaw.json"
    assert re.fullmatch(r"-[rwx-]{9}", entry["permissions"]) and entry["mod_time"].endswith("+00:00")
    nested = client.get(f"{inst.base}/files", headers=headers, params={"path": "config"}).json()
    assert [e["path"] for e in nested["entries"]] == ["config/custom.json"]
    config = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()
    assert '"gateway"' in config["content"] and "OPENCLAW_GATEWAY_TOKEN" not in config["content"]


def test_upload_download_and_binary_content(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    response = client.post(
        f"{inst.base}/files/upload",
        headers=headers,
        data={"path": "assets/logo.png"},
        files={"file": ("logo.png", PNG, "image/png")},
    )
    assert response.status_code == 204, response.text
    download = client.get(f"{inst.base}/files/download", headers=headers, params={"path": "assets/logo.png"})
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith('attachment; filename="logo.png"')
    as_text = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "assets/logo.png"})
    assert as_text.status_code == 415 and "download" in as_text.json()["detail"]
    too_big = client.post(
        f"{inst.base}/files/upload",
        headers=headers,
        data={"path": "big.bin"},
        files={"file": ("big.bin", b"x" * (1024 * 1024 + 1), "application/octet-stream")},
    )
    assert too_big.status_code == 413
    missing = client.get(f"{inst.base}/files", headers=headers, params={"path": "."}).json()
    assert "big.bin" not in {e["name"] for e in missing["entries"]}


def test_move_mkdir_delete(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    client.put(f"{inst.base}/files/content", headers=headers, json={"path": "a.txt", "content": "A"})
    assert client.post(f"{inst.base}/files/mkdir", headers=headers, json={"path": "docs/deep/er"}).status_code == 204
    assert (
        client.post(
            f"{inst.base}/files/move", headers=headers, json={"source": "a.txt", "destination": "docs/b.txt"}
        ).status_code
        == 204
    )
    assert client.get(f"{inst.base}/files/content", headers=headers, params={"path": "a.txt"}).status_code == 404
    moved = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "docs/b.txt"})
    assert moved.json()["content"] == "A"
    assert (
        client.post(
            f"{inst.base}/files/move", headers=headers, json={"source": "docs", "destination": "documents"}
        ).status_code
        == 204
    )
    listing = client.get(f"{inst.base}/files", headers=headers, params={"path": "documents"}).json()
    assert {e["name"] for e in listing["entries"]} == {"b.txt", "deep"}
    assert client.delete(f"{inst.base}/files", headers=headers, params={"path": "documents"}).status_code == 204
    gone = client.get(f"{inst.base}/files", headers=headers, params={"path": "documents"})
    assert gone.status_code == 404


def test_traversal_and_bad_paths_are_refused(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    root = next(inst.box.rglob("openclaw.json")).parent
    os.symlink("/etc", root / "escape")  # as a tenant's agent could, from inside the sandbox
    for path in ("../x", "/etc/passwd", "workspace/../../x", "escape/passwd", "escape"):
        response = client.get(f"{inst.base}/files/content", headers=headers, params={"path": path})
        assert (response.status_code, response.json()) == (400, ESCAPE), path
    response = client.put(f"{inst.base}/files/content", headers=headers, json={"path": "escape/evil", "content": "x"})
    assert response.status_code == 400 and not os.path.exists("/etc/evil")
    for bad in ("a\0b", "x" * 5000, "y" * 300):
        response = client.get(f"{inst.base}/files/content", headers=headers, params={"path": bad})
        assert response.status_code == 400, bad
    response = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "nope.txt"})
    assert response.status_code == 404
    response = client.post(
        f"{inst.base}/files/move", headers=headers, json={"source": "openclaw.json", "destination": "../stolen.json"}
    )
    assert (response.status_code, response.json()) == (400, ESCAPE)


def test_permissions(inst: RunningInstance) -> None:
    client = inst.server.client
    files_only = scoped_key(client, inst.key, [inst.instance_id], ["files"])
    read_only = scoped_key(client, inst.key, [inst.instance_id], ["read"])
    assert client.get(f"{inst.base}/files", headers=auth(files_only)).status_code == 200
    response = client.get(f"{inst.base}/files", headers=auth(read_only))
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "This key lacks the 'files' permission for this instance."},
    )
    assert client.get(f"{inst.base}", headers=auth(files_only)).status_code == 403


def test_channel_list_reflects_the_live_config(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    listed = client.get(f"{inst.base}/channels", headers=headers).json()
    assert [c["channel"] for c in listed] == [
        "telegram",
        "discord",
        "slack",
        "whatsapp",
        "googlechat",
        "signal",
        "matrix",
        "msteams",
        "mattermost",
        "nostr",
        "line",
    ]
    assert not any(c["enabled"] for c in listed)
    config = json.loads(
        client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()["content"]
    )
    config["channels"] = {"telegram": {"enabled": True, "botToken": "123:abc", "apiRoot": "http://127.0.0.1:9"}}
    client.put(
        f"{inst.base}/files/content", headers=headers, json={"path": "openclaw.json", "content": json.dumps(config)}
    )
    listed = {c["channel"]: c for c in client.get(f"{inst.base}/channels", headers=headers).json()}
    assert listed["telegram"] == {"channel": "telegram", "connection_type": "token", "enabled": True}
    assert listed["discord"]["enabled"] is False
    # Status comes from the gateway itself, once it has hot-reloaded the file: the Bot API is unreachable.
    deadline = time.monotonic() + 30
    while True:
        status = client.get(f"{inst.base}/channels/telegram/status", headers=headers)
        assert status.status_code == 200, status.text
        if status.json()["enabled"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    body = status.json()
    assert (body["channel"], body["enabled"], body["connected"]) == ("telegram", True, False)
    assert body["details"].get("accountId") == "default" and "lifecycle" in body["details"]
    idle = client.get(f"{inst.base}/channels/discord/status", headers=headers).json()
    assert idle == {"channel": "discord", "enabled": False, "connected": False, "details": {}}
    assert client.get(f"{inst.base}/channels/icq/status", headers=headers).status_code == 404
    channels_only = scoped_key(client, inst.key, [inst.instance_id], ["channels"])
    assert client.get(f"{inst.base}/channels", headers=auth(channels_only)).status_code == 200
    assert client.get(f"{inst.base}/files", headers=auth(channels_only)).status_code == 403
    assert client.get(f"{inst.base}/channels/telegram/status", headers=auth(channels_only)).status_code == 200


def test_connect_and_disconnect_go_through_the_gateway(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    base = f"{inst.base}/channels/telegram"
    missing = client.post(f"{base}/connect", headers=headers, json={"config": {}})
    assert missing.status_code == 422 and "token" in missing.json()["detail"]
    refused = client.post(f"{base}/connect", headers=headers, json={"config": {"token": "1:a", "bogusField": 1}})
    assert refused.status_code == 422 and "bogusField" in json.dumps(refused.json())
    connected = client.post(
        f"{base}/connect",
        headers=headers,
        json={"config": {"token": "42:secret-bot-token", "apiRoot": "http://127.0.0.1:9"}},
    )
    assert connected.status_code == 200, connected.text
    assert connected.json() == {
        "channel": "telegram",
        "status": "connected",
        "message": "Channel connected successfully.",
    }
    config = json.loads(
        client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()["content"]
    )
    assert config["channels"]["telegram"]["dmPolicy"] == "pairing"
    assert config["channels"]["telegram"]["botToken"] == "42:secret-bot-token"
    status = client.get(f"{base}/status", headers=headers).json()
    assert status["enabled"] is True and status["connected"] is False  # no Bot API answers on port 9
    assert client.post(f"{base}/disconnect", headers=headers).status_code == 204
    deadline = time.monotonic() + 30
    while client.get(f"{base}/status", headers=headers).json()["enabled"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get(f"{base}/status", headers=headers).json()["enabled"] is False
    config = json.loads(
        client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()["content"]
    )
    assert config["channels"]["telegram"]["botToken"] == "42:secret-bot-token", "credentials are kept"


def test_live_config_is_validated_by_openclaw_before_anything_is_stored(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)

    def live() -> dict[str, object]:
        content = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"})
        loaded: dict[str, object] = json.loads(content.json()["content"])
        return loaded

    refused = client.patch(inst.base, headers=headers, json={"openclaw_config": {"session.dmScope": "everywhere"}})
    assert refused.status_code == 400 and "session.dmScope" in refused.json()["detail"], refused.text
    assert client.get(inst.base, headers=headers).json()["openclaw_config"] is None
    assert "dmScope" not in json.dumps(live())
    managed = client.patch(inst.base, headers=headers, json={"openclaw_config": {"gateway.port": 1}})
    assert managed.status_code == 400 and "gateway.port" in managed.json()["detail"]
    applied = client.patch(inst.base, headers=headers, json={"openclaw_config": {"agents.defaults.timeoutSeconds": 77}})
    assert applied.status_code == 200, applied.text
    assert applied.json()["openclaw_config"] == {"agents": {"defaults": {"timeoutSeconds": 77}}}
    assert live()["agents"]["defaults"]["timeoutSeconds"] == 77  # type: ignore[index]


def test_a_skill_written_into_the_workspace_is_listed_by_the_agent(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    skill = "---\nname: chowder-hello\ndescription: Says hello the Chowder way.\n---\nSay hello.\n"
    client.put(
        f"{inst.base}/files/content",
        headers=headers,
        json={"path": "workspace/skills/chowder-hello/SKILL.md", "content": skill},
    )
    listed = client.get(f"{inst.base}/skills", headers=headers)
    assert listed.status_code == 200, listed.text
    names = {s["name"]: s for s in listed.json()}
    assert names["chowder-hello"] == {
        "name": "chowder-hello",
        "description": "Says hello the Chowder way.",
        "source": "openclaw-workspace",
        "ready": True,
    }
    assert len(names) > 10, "bundled skills are listed too"
    ready = client.get(f"{inst.base}/skills", headers=headers, params={"eligible_only": "true"}).json()
    assert all(s["ready"] for s in ready) and "chowder-hello" in {s["name"] for s in ready}
    assert len(ready) < len(names)
    info = client.get(f"{inst.base}/skills/chowder-hello", headers=headers).json()
    assert info["path"] == "/workspace/skills/chowder-hello" and info["ready"] is True
    assert client.get(f"{inst.base}/skills/no-such-skill", headers=headers).status_code == 404
    configure_only = scoped_key(client, inst.key, [inst.instance_id], ["configure"])
    files_only = scoped_key(client, inst.key, [inst.instance_id], ["files"])
    assert client.get(f"{inst.base}/skills", headers=auth(files_only)).status_code == 403
    assert client.get(f"{inst.base}/skills/chowder-hello", headers=auth(configure_only)).status_code == 200


GATED_SKILL = """---
name: chowder-gated
description: Needs a key before it is ready.
metadata: {"openclaw": {"requires": {"env": ["CHOWDER_TEST_KEY"]}, "primaryEnv": "CHOWDER_TEST_KEY"}}
---
Use the key.
"""


def test_skill_settings_are_written_where_openclaw_reads_them_and_apply_live(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    client.put(
        f"{inst.base}/files/content",
        headers=headers,
        json={"path": "workspace/skills/chowder-gated/SKILL.md", "content": GATED_SKILL},
    )
    skill = f"{inst.base}/skills/chowder-gated"
    assert client.get(skill, headers=headers).json()["ready"] is False
    configure_only = auth(scoped_key(client, inst.key, [inst.instance_id], ["configure"]))
    response = client.patch(skill, headers=configure_only, json={"env": {"CHOWDER_TEST_KEY": "k-123"}})
    assert response.status_code == 204, response.text
    assert client.get(skill, headers=headers).json()["ready"] is True
    config = json.loads(
        client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()["content"]
    )
    assert config["skills"]["entries"]["chowder-gated"] == {"env": {"CHOWDER_TEST_KEY": "k-123"}}
    assert client.patch(skill, headers=headers, json={"enabled": False}).status_code == 204
    assert client.get(skill, headers=headers).json()["ready"] is False
    assert client.patch(skill, headers=headers, json={"enabled": True, "config": {"max_results": 5}}).status_code == 204
    info = client.get(skill, headers=headers).json()
    assert info["ready"] is True
    assert client.patch(f"{inst.base}/skills/no-such-skill", headers=headers, json={"enabled": True}).status_code == 404
    assert client.patch(skill, headers=headers, json={"enabeld": True}).status_code == 422
    files_only = auth(scoped_key(client, inst.key, [inst.instance_id], ["files"]))
    assert client.patch(skill, headers=files_only, json={"enabled": True}).status_code == 403


def test_a_skill_install_that_cannot_reach_clawhub_is_a_502_with_the_installer_output(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    install = f"{inst.base}/skills/install"
    failed = client.post(install, headers=headers, json={"slug": "web-search", "env": {"SEARCH_API_KEY": "x"}})
    assert failed.status_code == 502, failed.text
    detail = failed.json()["detail"]
    assert "web-search" in detail and ("fetch failed" in detail or "ECONNREFUSED" in detail), detail
    for not_clawhub in ("git:someone/repo", "./skills/local", "../x", "-rf"):
        assert client.post(install, headers=headers, json={"slug": not_clawhub}).status_code == 422, not_clawhub
    listing = client.get(f"{inst.base}/files", headers=headers, params={"path": "workspace/skills"}).json()
    assert "web-search" not in {e["name"] for e in listing["entries"]}, "a failed install leaves nothing behind"


def test_the_config_of_a_stopped_instance_is_validated_by_openclaw_and_used_at_the_next_start(
    inst: RunningInstance,
) -> None:
    client, headers = inst.server.client, auth(inst.key)
    config_file = next(inst.box.rglob("openclaw.json"))
    assert client.post(f"{inst.base}/stop", headers=headers).status_code == 200
    stored = client.get(inst.base, headers=headers).json()["openclaw_config"]
    before = config_file.read_bytes()
    refused = client.patch(inst.base, headers=headers, json={"openclaw_config": {"session.dmScope": "everywhere"}})
    assert refused.status_code == 400 and "session.dmScope" in refused.json()["detail"], refused.text
    assert config_file.read_bytes() == before
    assert client.get(inst.base, headers=headers).json()["openclaw_config"] == stored
    applied = client.patch(inst.base, headers=headers, json={"openclaw_config": {"agents.defaults.timeoutSeconds": 91}})
    assert applied.status_code == 200, applied.text
    assert applied.json()["openclaw_config"]["agents"]["defaults"]["timeoutSeconds"] == 91
    assert json.loads(config_file.read_text())["agents"]["defaults"]["timeoutSeconds"] == 91
    started = client.post(f"{inst.base}/start", headers=headers)
    assert started.status_code == 200 and started.json()["error_message"] is None, started.text


def test_a_config_the_gateway_refuses_at_start_falls_back_to_the_last_good_one(inst: RunningInstance) -> None:
    """Written behind OpenClaw's back (its hot reload skips an invalid file, so the gateway runs on); at the
    next start the gateway refuses it, and the last config it was ready with is put back first."""
    client, headers = inst.server.client, auth(inst.key)
    content = client.get(f"{inst.base}/files/content", headers=headers, params={"path": "openclaw.json"}).json()
    broken = json.dumps({**json.loads(content["content"]), "agent": {"oops": True}})
    client.put(f"{inst.base}/files/content", headers=headers, json={"path": "openclaw.json", "content": broken})
    assert client.post(f"{inst.base}/stop", headers=headers).status_code == 200
    started = client.post(f"{inst.base}/start", headers=headers)
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["status"] == "running"
    assert (
        body["error_message"].startswith("Started with the last good configuration")
        and "agent" in body["error_message"]
    )

    def read(path: str) -> dict[str, object]:
        response = client.get(f"{inst.base}/files/content", headers=headers, params={"path": path})
        loaded: dict[str, object] = json.loads(response.json()["content"])
        return loaded

    assert read("openclaw.json.rejected")["agent"] == {"oops": True}
    live = read("openclaw.json")
    assert "agent" not in live and live["agents"]["defaults"]["timeoutSeconds"] == 91  # type: ignore[index]


def test_a_stopped_instance_answers_409(inst: RunningInstance) -> None:
    client, headers = inst.server.client, auth(inst.key)
    assert client.post(f"{inst.base}/stop", headers=headers).status_code == 200
    response = client.get(f"{inst.base}/files", headers=headers)
    assert (response.status_code, response.json()) == (409, {"detail": "Instance is stopped, not running."})
