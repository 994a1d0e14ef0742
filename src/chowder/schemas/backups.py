"""Backup wire models (extension; issue 18)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chowder.schemas.common import Timestamp

BACKUP_SCHEDULE_HELP = (
    "Extension. Scheduled backups: one every `every_hours` (1 to 8760) while the instance is running or stopped, the "
    "newest `keep` (1 to 100, default 7) scheduled ones kept, older ones deleted (manual backups are never pruned). "
    "The first is taken `every_hours` after the schedule is set. `null`: none."
)


class BackupSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every_hours: int = Field(ge=1, le=8760, description="Hours between two scheduled backups.")
    keep: int = Field(7, ge=1, le=100, description="How many scheduled backups are kept, newest first.")


class Backup(BaseModel):
    id: str = Field(description='"bkp_" and 24 hex digits.')
    instance_id: str
    status: Literal["creating", "completed", "failed"]
    trigger: Literal["manual", "scheduled", "upgrade", "clone"]
    size_bytes: int | None = Field(description="Of the stored archive, once completed.")
    sha256: str | None = Field(description="Hex SHA-256 of the stored archive, once completed.")
    openclaw_version: str = Field(description="The OpenClaw release whose state the archive holds.")
    created_at: Timestamp
    completed_at: Timestamp | None
    error: str | None = Field(description="Why it failed (status `failed`).")
