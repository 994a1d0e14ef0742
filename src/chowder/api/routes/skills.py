"""Skills, as the instance's agent reports them (configure permission)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from chowder.api.deps import State, require
from chowder.domain.models import Permission, Principal
from chowder.schemas.skills import SkillInfo, SkillSummary

router = APIRouter(tags=["skills"])

CanConfigure = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


@router.get("/v1/instances/{instance_id}/skills")
async def list_skills(
    instance_id: str, principal: CanConfigure, state: State, eligible_only: bool = False
) -> list[SkillSummary]:
    """Every skill the agent knows; with `eligible_only`, only those ready to use."""
    skills = await state.instances.skills(principal, instance_id)
    return [
        SkillSummary(
            name=s["name"],
            description=s.get("description", ""),
            source=s.get("source", ""),
            ready=bool(s.get("eligible")),
        )
        for s in skills
        if s.get("eligible") or not eligible_only
    ]


@router.get("/v1/instances/{instance_id}/skills/{skill_name}")
async def skill_info(instance_id: str, skill_name: str, principal: CanConfigure, state: State) -> SkillInfo:
    """`path` is relative to the instance root (the files API's) for skills that live there."""
    found = await state.instances.skill(principal, instance_id, skill_name)
    return SkillInfo(
        name=found["name"],
        description=found.get("description", ""),
        source=found.get("source", ""),
        ready=bool(found.get("eligible")),
        path=found["path"],
    )
