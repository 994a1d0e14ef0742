"""Where the CLI's client commands find the server and the key: `chowder login` stores them in
`$XDG_CONFIG_HOME/chowder/credentials.json` (default `~/.config`), readable by the user only, since the key is a
bearer credential; `CHOWDER_URL` and `CHOWDER_API_KEY` win over the file (for scripts and CI)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "CHOWDER_URL"
KEY_VARIABLE = "CHOWDER_API_KEY"


@dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    api_key: str | None


def credentials_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "chowder" / "credentials.json"


def stored() -> Credentials | None:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Credentials(str(data.get("url") or DEFAULT_URL), data.get("api_key"))


def current() -> Credentials:
    """The stored credentials with the environment's overrides applied."""
    found = stored() or Credentials(DEFAULT_URL, None)
    return Credentials(os.environ.get(URL_VARIABLE) or found.url, os.environ.get(KEY_VARIABLE) or found.api_key)


def save(credentials: Credentials) -> Path:
    """Written with mode 0600 from the start (never readable by others, not even for a moment), in a 0700
    directory; replaces the previous file atomically."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"url": credentials.url, "api_key": credentials.api_key}, out, indent=2)
    os.replace(temporary, path)
    return path


def forget() -> bool:
    """True if there were stored credentials."""
    path = credentials_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
