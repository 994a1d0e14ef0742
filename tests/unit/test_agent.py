"""What a skill install answers, from what the agent runtime reports: env applied where OpenClaw reads it,
and the variables still missing (the ClawHub side itself is exercised against the real installer in e2e)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from chowder.domain.agent import RunningAgent
from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess, InstanceRuntimeSpec, SkillDetails
from chowder.sandbox.base import SandboxProvider

SPEC = InstanceRuntimeSpec("i", "o", "sb", "anthropic", "2026.9.6", {}, "open", "gw-token", "model-token")


class RecordingRuntime:
    """Answers an install as OpenClaw does (installer output, then the skill's status) and records settings."""

    def __init__(self, skill: SkillDetails) -> None:
        self.skill_status = skill
        self.configured: list[tuple[str, dict[str, Any]]] = []

    async def install_skill(self, provider: Any, spec: Any, slug: str) -> tuple[str, SkillDetails]:
        return f"Installed {slug}@1.2.0 -> /root/workspace/skills/{slug}", self.skill_status

    async def configure_skill(
        self, provider: Any, spec: Any, gateway: Any, skill: SkillDetails, changes: dict[str, Any]
    ) -> None:
        self.configured.append((skill.settings_key, changes))


def skill(name: str, missing_env: tuple[str, ...], settings_key: str | None = None) -> SkillDetails:
    """As the runtime reports a skill it just installed into the workspace."""
    path = f"/workspace/skills/{name}"
    return SkillDetails(name, "", "openclaw-workspace", not missing_env, missing_env, path, settings_key or name)


def agent(runtime: RecordingRuntime) -> RunningAgent:
    return RunningAgent(
        cast(AgentRuntime, runtime), cast(SandboxProvider, None), SPEC, GatewayAccess("http://gw", "gw-token")
    )


def test_env_is_applied_to_the_skills_entry_and_what_is_still_missing_is_listed() -> None:
    runtime = RecordingRuntime(skill("web-search", ("SEARCH_API_KEY", "SEARCH_REGION"), settings_key="websearch"))
    installed = asyncio.run(agent(runtime).install_skill("web-search", {"SEARCH_API_KEY": "sk-1"}))
    assert runtime.configured == [("websearch", {"env": {"SEARCH_API_KEY": "sk-1"}})]
    assert installed.name == "web-search" and installed.output.startswith("Installed web-search@1.2.0")
    assert installed.env_applied == {"SEARCH_API_KEY": "sk-1"} and installed.required_env == ["SEARCH_REGION"]


def test_a_skill_that_needs_nothing_more_is_ready_and_no_settings_are_written() -> None:
    runtime = RecordingRuntime(skill("weather", ()))
    installed = asyncio.run(agent(runtime).install_skill("@steipete/weather", {}))
    assert runtime.configured == [] and installed.required_env == [] and installed.env_applied == {}
