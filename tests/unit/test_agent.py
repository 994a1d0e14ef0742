"""What a skill install answers, from what the agent runtime reports: env applied where OpenClaw reads it,
and the variables still missing (the ClawHub side itself is exercised against the real installer in e2e)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from chowder.domain.agent import RunningAgent
from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess, InstanceRuntimeSpec
from chowder.sandbox.base import SandboxProvider

SPEC = InstanceRuntimeSpec("i", "o", "sb", "anthropic", "2026.9.6", {}, "open", "gw-token", "model-token")


class RecordingRuntime:
    """Answers an install as OpenClaw does (installer output, then the skill's status) and records settings."""

    def __init__(self, skill: dict[str, Any]) -> None:
        self.skill_status = skill
        self.configured: list[tuple[str, dict[str, Any]]] = []

    async def install_skill(self, provider: Any, spec: Any, slug: str) -> tuple[str, dict[str, Any]]:
        return f"Installed {slug}@1.2.0 -> /root/workspace/skills/{slug}", self.skill_status

    async def configure_skill(self, spec: Any, gateway: Any, key: str, changes: dict[str, Any]) -> None:
        self.configured.append((key, changes))


def agent(runtime: RecordingRuntime) -> RunningAgent:
    return RunningAgent(
        cast(AgentRuntime, runtime), cast(SandboxProvider, None), SPEC, GatewayAccess("http://gw", "gw-token")
    )


def test_env_is_applied_to_the_skills_entry_and_what_is_still_missing_is_listed() -> None:
    runtime = RecordingRuntime(
        {"name": "web-search", "skillKey": "websearch", "missing": {"env": ["SEARCH_API_KEY", "SEARCH_REGION"]}}
    )
    installed = asyncio.run(agent(runtime).install_skill("web-search", {"SEARCH_API_KEY": "sk-1"}))
    assert runtime.configured == [("websearch", {"env": {"SEARCH_API_KEY": "sk-1"}})]
    assert installed.name == "web-search" and installed.output.startswith("Installed web-search@1.2.0")
    assert installed.env_applied == {"SEARCH_API_KEY": "sk-1"} and installed.required_env == ["SEARCH_REGION"]


def test_a_skill_that_needs_nothing_more_is_ready_and_no_settings_are_written() -> None:
    runtime = RecordingRuntime({"name": "weather", "missing": {"env": []}})
    installed = asyncio.run(agent(runtime).install_skill("@steipete/weather", {}))
    assert runtime.configured == [] and installed.required_env == [] and installed.env_applied == {}
