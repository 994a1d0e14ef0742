"""Skills as OpenClaw's `skills list --json` and `skills info --json` report them, in Chowder's terms."""

from __future__ import annotations

from typing import Any

from chowder.domain.ports.runtime import Skill, SkillDetails


def skill_of(listed: dict[str, Any]) -> Skill:
    """Ready means OpenClaw finds it `eligible`: nothing it requires (binaries, env, config) is missing."""
    return Skill(
        name=str(listed["name"]),
        description=str(listed.get("description") or ""),
        source=str(listed.get("source") or ""),
        ready=bool(listed.get("eligible")),
        missing_env=tuple(str(name) for name in (listed.get("missing") or {}).get("env", [])),
    )


def details_of(info: dict[str, Any], root: str) -> SkillDetails:
    """Its `baseDir` inside the instance root (`root`, as the sandbox shows it) becomes a path the files API
    understands; elsewhere (bundled skills) it stays as it is. Settings live under `skills.entries.<skillKey>`,
    which defaults to the skill's name."""
    skill = skill_of(info)
    prefix = root.rstrip("/")
    base = str(info.get("baseDir", ""))
    path = base[len(prefix) :] if base.startswith(prefix + "/") else base
    settings_key = str(info.get("skillKey") or skill.name)
    return SkillDetails(skill.name, skill.description, skill.source, skill.ready, skill.missing_env, path, settings_key)
