"""The OpenClaw releases this control plane can run, and the channel plugins pinned with each."""

from __future__ import annotations

from dataclasses import dataclass

from chowder.core.errors import BadRequest

NODE_MIN_VERSION = (24, 16)


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    plugins: dict[str, str]

    @property
    def packages(self) -> list[str]:
        """npm specs to install together: the gateway and its official channel plugins."""
        return [f"openclaw@{self.version}", *(f"@openclaw/{name}@{v}" for name, v in self.plugins.items())]


# Plugins follow the gateway's release; where a plugin skipped a release, the newest one before it is pinned.
RELEASES: dict[str, Release] = {
    "2026.9.5": Release(
        version="2026.9.5",
        plugins=dict.fromkeys(
            (
                "discord",
                "slack",
                "whatsapp",
                "googlechat",
                "signal",
                "matrix",
                "msteams",
                "mattermost",
                "nostr",
                "line",
            ),
            "2026.9.5",
        ),
    ),
    "2026.9.6": Release(
        version="2026.9.6",
        plugins={
            "discord": "2026.9.6",
            "slack": "2026.9.6",
            "whatsapp": "2026.9.6",
            "googlechat": "2026.9.5",
            "signal": "2026.9.6",
            "matrix": "2026.9.6",
            "msteams": "2026.9.5",
            "mattermost": "2026.9.5",
            "nostr": "2026.9.5",
            "line": "2026.9.5",
        },
    ),
}

ALIASES: dict[str, str] = {"v1": "2026.9.6"}
DEFAULT_RELEASE = ALIASES["v1"]


def resolve_release(requested: str) -> Release:
    """Map an API `openclaw_version` (alias or exact release) to a release; unknown ones are a 400."""
    release = RELEASES.get(ALIASES.get(requested, requested))
    if release is None:
        supported = ", ".join([*ALIASES, *RELEASES])
        raise BadRequest(f"Unknown openclaw_version '{requested}'. Supported: {supported}.")
    return release
