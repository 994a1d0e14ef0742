"""The agent of one running instance, as the skill and channel routes act on it: through the agent runtime,
inside the instance's sandbox, never on a copy in our database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chowder.domain.ports.runtime import (
    AgentRuntime,
    ChannelSpec,
    ChannelStatus,
    GatewayAccess,
    InstanceRuntimeSpec,
    LoginQr,
    Skill,
    SkillDetails,
)
from chowder.sandbox.base import SandboxProvider


@dataclass(frozen=True, slots=True)
class InstalledSkill:
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

    async def skills(self) -> list[Skill]:
        """Every skill the agent knows (installed or not), as it reports them."""
        return await self.runtime.skills(self.provider, self.spec)

    async def skill(self, name: str) -> SkillDetails:
        return await self.runtime.skill(self.provider, self.spec, name)

    async def install_skill(self, slug: str, env: dict[str, str]) -> InstalledSkill:
        """Installed from the skill registry, then `env` written to the skill's settings; `required_env` lists
        the variables the skill still lacks (then it is installed but not ready)."""
        output, skill = await self.runtime.install_skill(self.provider, self.spec, slug)
        if env:
            await self.runtime.configure_skill(self.provider, self.spec, self.gateway, skill, {"env": env})
        missing = [name for name in skill.missing_env if name not in env]
        return InstalledSkill(skill.name, output, env, missing)

    async def update_skill(self, name: str, changes: dict[str, Any]) -> None:
        """Only the given settings change (a merge into the skill's settings); 404 for a skill the agent does
        not know, so a typo is not silently stored."""
        skill = await self.runtime.skill(self.provider, self.spec, name)
        await self.runtime.configure_skill(self.provider, self.spec, self.gateway, skill, changes)

    async def enabled_channels(self) -> frozenset[str]:
        return await self.runtime.enabled_channels(self.provider, self.spec)

    async def channel_status(self, channel: ChannelSpec) -> ChannelStatus:
        return await self.runtime.channel_status(self.gateway, channel)

    async def connect_channel(self, channel: ChannelSpec, fields: dict[str, Any]) -> bool:
        """True when the channel works only after a restart of the agent."""
        return await self.runtime.connect_channel(self.provider, self.spec, self.gateway, channel, fields)

    async def start_login(self, channel: ChannelSpec) -> LoginQr:
        return await self.runtime.start_login(self.gateway, channel)

    async def disconnect_channel(self, channel: ChannelSpec) -> None:
        await self.runtime.disconnect_channel(self.provider, self.spec, self.gateway, channel)

    async def approve_pairing(self, channel: str, code: str) -> str:
        return await self.runtime.approve_pairing(self.provider, self.spec, channel, code)
