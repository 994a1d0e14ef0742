"""Skills, as the instance's agent reports them (configure permission)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from chowder.api.deps import State, require
from chowder.domain.agent import InstalledSkill
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.runtime import Skill
from chowder.schemas.skills import SkillInfo, SkillInstall, SkillInstalled, SkillSummary, SkillUpdate

router = APIRouter(tags=["skills"])

CanConfigure = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


@router.get("/v1/instances/{instance_id}/skills")
async def list_skills(
    instance_id: str, principal: CanConfigure, state: State, eligible_only: bool = False
) -> list[SkillSummary]:
    """Every skill the agent knows; with `eligible_only`, only those ready to use."""
    skills = await (await state.instances.agent(principal, instance_id)).skills()
    return [_summary(skill) for skill in skills if skill.ready or not eligible_only]


@router.get("/v1/instances/{instance_id}/skills/{skill_name}")
async def skill_info(instance_id: str, skill_name: str, principal: CanConfigure, state: State) -> SkillInfo:
    """`path` is relative to the instance root (the files API's) for skills that live there."""
    found = await (await state.instances.agent(principal, instance_id)).skill(skill_name)
    return SkillInfo(
        name=found.name, description=found.description, source=found.source, ready=found.ready, path=found.path
    )


@router.post("/v1/instances/{instance_id}/skills/install")
async def install_skill(instance_id: str, body: SkillInstall, principal: CanConfigure, state: State) -> SkillInstalled:
    """The agent's skill installer (ClawHub) inside the sandbox, then `env` applied; 502 with the installer's
    output when it fails (e.g. ClawHub unreachable)."""
    agent = await state.instances.agent(principal, instance_id)
    return _installed(await agent.install_skill(body.slug, body.env))


@router.patch("/v1/instances/{instance_id}/skills/{skill_name}", status_code=status.HTTP_204_NO_CONTENT)
async def update_skill(
    instance_id: str, skill_name: str, body: SkillUpdate, principal: CanConfigure, state: State
) -> Response:
    """Written to the skill's settings where the agent reads them, and applied live, without a restart."""
    agent = await state.instances.agent(principal, instance_id)
    await agent.update_skill(skill_name, body.model_dump(exclude_unset=True))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _summary(skill: Skill) -> SkillSummary:
    return SkillSummary(name=skill.name, description=skill.description, source=skill.source, ready=skill.ready)


def _installed(installed: InstalledSkill) -> SkillInstalled:
    """Installed and ready, or installed but still missing the env variables it names."""
    ready = not installed.required_env
    return SkillInstalled(
        skill=installed.name,
        status="installed" if ready else "installed_missing_env",
        output=installed.output,
        env_applied=installed.env_applied or None,
        required_env=None if ready else installed.required_env,
        message="Skill installed and ready to use."
        if ready
        else f"Skill installed; set {', '.join(installed.required_env)} to use it.",
    )
