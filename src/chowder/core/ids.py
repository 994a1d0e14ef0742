"""Identifiers and secrets: UUID4 ids on the wire, prefixed random keys for credentials."""

from __future__ import annotations

import hashlib
import secrets
import uuid

ORG_KEY_PREFIX = "chd_org_"
SCOPED_KEY_PREFIX = "chd_sk_"
KEY_DISPLAY_CHARS = 12


def new_id() -> str:
    return str(uuid.uuid4())


def new_api_key(prefix: str) -> str:
    """A raw key: the prefix then 64 lowercase hex characters (32 bytes from the CSPRNG)."""
    return prefix + secrets.token_hex(32)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    """A credential handed to a sandbox process (gateway token, model credential)."""
    return secrets.token_urlsafe(32)


def sandbox_id_for(instance_id: str) -> str:
    """Deterministic, so a crash between recording and creating a sandbox can never orphan one."""
    return "sb_" + instance_id.replace("-", "")[:20]


def sandbox_id_of(instance_id: str, recorded: str | None) -> str:
    """An instance's sandbox: the one recorded for it (a warm pool member it claimed), else its own derived one
    (recorded only once booted, so a boot that crashed before recording it still finds it)."""
    return recorded or sandbox_id_for(instance_id)
