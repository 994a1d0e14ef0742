"""Instance wire models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chowder.core.instance_defaults import DEFAULT_MODEL_PROVIDER, DEFAULT_VERSION
from chowder.core.model_providers import ModelProvider
from chowder.schemas.backups import BACKUP_SCHEDULE_HELP, BackupSchedule
from chowder.schemas.common import Name, Timestamp

Egress = Literal["open", "none"]
EGRESS_HELP = (
    "Extension. What the agent may reach besides the control plane's model endpoint: `open` (default) the public "
    "internet, `none` nothing. Never the host, other instances, private or link-local addresses."
)


AUTO_STOP_HELP = (
    "Extension. Sleep when idle: frozen (memory kept, no CPU) after `freeze_after_s` without a chat, files, channel, "
    "skill or model call, asleep after `stop_after_s`: paged out to the host's swap where it has room, else its "
    "gateway stopped (state kept); the next call wakes it. It stays "
    "`running` throughout; `power` says which. `null`: never. Never for an instance with an enabled channel. "
    "Defaults to the server's CHOWDER_FREEZE_AFTER_S / CHOWDER_STOP_AFTER_S (unset: never)."
)


CLONE_NOTE = (
    "The clone gets its own gateway token and model credential, and the original's `openclaw_config`; channels "
    "(bot tokens, pairings, their credentials) and inbound hooks are not carried over: connect them anew."
)
FROM_BACKUP_HELP = (
    "Extension. Boot the new instance on a copy of this backup's state (a completed backup of the org). " + CLONE_NOTE
)
CLONE_FROM_HELP = (
    "Extension. Boot the new instance on a copy of this instance's state, from a backup of it taken now (trigger "
    "`clone`); the original keeps running, untouched. " + CLONE_NOTE
)


class AutoStop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    freeze_after_s: int = Field(description="Seconds idle before the sandbox is frozen (2 to 30 days).")
    stop_after_s: int = Field(description="Seconds idle before its gateway is stopped (at least freeze_after_s).")


class InstanceCreate(BaseModel):
    name: Name
    model_provider: ModelProvider = DEFAULT_MODEL_PROVIDER
    sandbox_provider: str = "sandbox"
    openclaw_version: str = DEFAULT_VERSION
    openclaw_config: dict[str, Any] | None = None
    region: str | None = None
    egress: Egress = Field("open", description=EGRESS_HELP)
    auto_stop: AutoStop | None = Field(None, description=AUTO_STOP_HELP)
    backup_schedule: BackupSchedule | None = Field(None, description=BACKUP_SCHEDULE_HELP)
    from_backup: str | None = Field(None, description=FROM_BACKUP_HELP)
    clone_from: str | None = Field(None, description=CLONE_FROM_HELP)


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup_id: str = Field(description="A completed backup of the organization's (this instance's or another's).")


class InstanceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    openclaw_config: dict[str, Any] | None = None
    egress: Egress | None = Field(None, description=EGRESS_HELP + " Applied at once to a running instance.")
    auto_stop: AutoStop | None = Field(None, description=AUTO_STOP_HELP + " Idleness counts from the change.")
    backup_schedule: BackupSchedule | None = Field(
        None, description=BACKUP_SCHEDULE_HELP + " The next backup is due one interval after the change."
    )
    openclaw_version: str | None = Field(
        None,
        description="Upgrade (or downgrade) a running instance to this release of the catalog, alone in its "
        "request: a backup is taken, the release booted on the instance's state and checked (/readyz and a health "
        "turn); if it fails, the backup is restored on the old release and error_message says why.",
    )
    upgrade_from_backup: str | None = Field(
        None,
        description="With openclaw_version only: boot that release on this backup's state instead of the current one "
        "(a downgrade past a state migration, which the older release refuses: go back to the backup taken before the "
        "upgrade, trigger `upgrade`; what happened since is not kept).",
    )


class Instance(BaseModel):
    id: str
    organization_id: str
    name: str
    status: Literal["provisioning", "running", "stopped", "error", "terminated"]
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: Egress = Field(description=EGRESS_HELP)
    error_message: str | None
    created_at: Timestamp
    updated_at: Timestamp
    auto_stop: AutoStop | None = Field(description=AUTO_STOP_HELP)
    power: Literal["awake", "frozen", "asleep"] | None = Field(
        description="Extension. While running: `awake`, `frozen` or `asleep` (see `auto_stop`); null otherwise."
    )
    backup_schedule: BackupSchedule | None = Field(None, description=BACKUP_SCHEDULE_HELP)


class InstanceStatus(BaseModel):
    id: str
    status: str
    gateway_url: str | None
