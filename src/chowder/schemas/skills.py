"""Skill wire models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SLUG_PATTERN = r"^(@[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$"


class SkillSummary(BaseModel):
    name: str
    description: str
    source: str
    ready: bool


class SkillInfo(SkillSummary):
    path: str


class SkillInstall(BaseModel):
    """A ClawHub reference only (`slug` or `@owner/slug`): git URLs and local paths are not skill sources here."""

    slug: str = Field(pattern=SLUG_PATTERN, max_length=200)
    env: dict[str, str] = Field(default_factory=dict)


class SkillInstalled(BaseModel):
    skill: str
    status: Literal["installed", "installed_missing_env"]
    output: str
    env_applied: dict[str, str] | None = None
    required_env: list[str] | None = None
    message: str


class SkillUpdate(BaseModel):
    """Only the fields sent change; `null` removes a setting (a JSON merge patch of the skill's entry)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    apiKey: str | None = None  # noqa: N815 - the public API's (and OpenClaw's) camelCase name
    env: dict[str, str | None] | None = None
    config: dict[str, Any] | None = None
