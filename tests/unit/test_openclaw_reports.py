"""What OpenClaw reports of skills and channels, as the runtime hands it to Chowder: typed, in Chowder's terms."""

from __future__ import annotations

from chowder.domain.ports.runtime import ChannelStatus, SkillDetails
from chowder.runtime.openclaw.channels import status_of
from chowder.runtime.openclaw.skills import details_of, skill_of

ROOT = "/srv/sandboxes/sb/box/root/"


def test_a_workspace_skill_has_a_files_api_path_and_its_settings_key() -> None:
    info = {
        "name": "web-search",
        "description": "Searches the web.",
        "source": "openclaw-workspace",
        "eligible": False,
        "skillKey": "websearch",
        "baseDir": "/srv/sandboxes/sb/box/root/workspace/skills/web-search",
        "missing": {"bins": [], "env": ["SEARCH_API_KEY"]},
    }
    assert details_of(info, ROOT) == SkillDetails(
        "web-search",
        "Searches the web.",
        "openclaw-workspace",
        False,
        ("SEARCH_API_KEY",),
        "/workspace/skills/web-search",
        "websearch",
    )


def test_a_bundled_skill_keeps_its_own_path_and_is_filed_under_its_name() -> None:
    info = {"name": "weather", "eligible": True, "baseDir": "/opt/openclaw/skills/weather", "missing": {"env": []}}
    details = details_of(info, ROOT)
    assert (details.path, details.settings_key, details.ready) == ("/opt/openclaw/skills/weather", "weather", True)
    assert (details.description, details.source, details.missing_env) == ("", "", ())


def test_a_listed_skill_is_ready_only_when_eligible() -> None:
    listed = {"name": "1password", "description": "1Password CLI.", "source": "openclaw-bundled", "eligible": False}
    skill = skill_of(listed)
    assert (skill.name, skill.description, skill.source, skill.ready) == (
        "1password",
        "1Password CLI.",
        "openclaw-bundled",
        False,
    )


def test_a_channel_is_on_and_connected_if_any_account_is_and_shows_the_first_accounts_details() -> None:
    payload = {
        "channelAccounts": {
            "telegram": [
                {"accountId": "default", "lifecycle": "ready", "connected": False, "lastError": None, "secret": "x"},
                {"accountId": "other", "enabled": False, "connected": True},
            ]
        }
    }
    assert status_of("telegram", payload) == ChannelStatus(True, True, {"accountId": "default", "lifecycle": "ready"})
    assert status_of("discord", payload) == ChannelStatus(False, False, {})
