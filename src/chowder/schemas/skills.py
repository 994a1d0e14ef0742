"""Skill wire models."""

from __future__ import annotations

from pydantic import BaseModel


class SkillSummary(BaseModel):
    name: str
    description: str
    source: str
    ready: bool


class SkillInfo(SkillSummary):
    path: str
