"""The agent of one running instance, as the skill and pairing routes act on it: through the agent runtime,
inside the instance's sandbox, never on a copy in our database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess, InstanceRuntimeSpec
from chowder.sandbox.base import SandboxProvider


@dataclass(frozen=True, slots=True)
class SkillInstalled:
    name: str
    output: str
    env_applied: dict[str, str]
    required_env: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunningAgent:
    runtime: AgentRuntime
    provider: SandboxProvider
    spec: InstanceRuntimeSpec
    gateway: GatewayAccess

    async def skills(self) -> list[dict[str, Any]]:
        """Every skill the agent knows (installed or not), as it reports them."""
        return await self.runtime.skills(self.provider, self.spec)

    async def skill(self, name: str) -> dict[str, Any]:
        return await self.runtime.skill(self.provider, self.spec, name)

    async def install_skill(self, slug: str, env: dict[str, str]) -> SkillInstalled:
        """Installed from ClawHub, then `env` written to the skill's entry; `required_env` lists the variables
        the skill still lacks (then it is installed but not ready)."""
        output, skill = await self.runtime.install_skill(self.provider, self.spec, slug)
        if env:
            await self.runtime.configure_skill(self.spec, self.gateway, skill_key(skill), {"env": env})
        missing = [name for name in (skill.get("missing") or {}).get("env", []) if name not in env]
        return SkillInstalled(str(skill["name"]), output, env, missing)

    async def update_skill(self, name: str, changes: dict[str, Any]) -> None:
        """Only the given settings change (a merge into the skill's entry); 404 for a skill the agent does not
        know, so a typo is not silently stored."""
        skill = await self.runtime.skill(self.provider, self.spec, name)
        await self.runtime.configure_skill(self.spec, self.gateway, skill_key(skill), changes)

    async def patch_config(self, patch: dict[str, Any]) -> bool:
        """True when the change takes effect only after a restart of the agent."""
        return await self.runtime.patch_config(self.spec, self.gateway, patch)

    async def approve_pairing(self, channel: str, code: str) -> str:
        return await self.runtime.approve_pairing(self.provider, self.spec, channel, code)


def skill_key(skill: dict[str, Any]) -> str:
    """Where OpenClaw reads a skill's settings: `skills.entries.<skillKey>`, which defaults to its name."""
    return str(skill.get("skillKey") or skill["name"])
