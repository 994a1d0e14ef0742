"""What the instance use cases take and give: a create request, and an instance as its owner may see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.ids import hash_key, new_id, new_token
from chowder.domain.backup_schedule import schedule_columns, schedule_of
from chowder.domain.models import Desired, Power, Status
from chowder.domain.ports.backups import BackupSchedule
from chowder.domain.ports.instances import InstanceRecord, PublicInstance
from chowder.domain.power import AutoStop, public_power
from chowder.sandbox.base import Egress


@dataclass(slots=True)
class InstanceView:
    """The public fields; secrets and the engine's bookkeeping stay behind. Read-only, not frozen for the cost of
    a list's rows (as `PublicInstance`)."""

    id: str
    organization_id: str
    name: str
    status: Status
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: str
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    auto_stop: AutoStop | None
    power: Power | None
    backup_schedule: BackupSchedule | None = None

    @classmethod
    def of(cls, instance: InstanceRecord | PublicInstance) -> InstanceView:
        """An instance in `error` shows no gateway URL: nothing answers there."""
        return cls(
            id=instance.id,
            organization_id=instance.organization_id,
            name=instance.name,
            status=instance.status,
            model_provider=instance.model_provider,
            sandbox_provider=instance.sandbox_provider,
            sandbox_id=instance.sandbox_id,
            gateway_url=instance.gateway_url if instance.status != Status.ERROR else None,
            openclaw_version=instance.openclaw_version,
            openclaw_config=instance.openclaw_config,
            region=instance.region,
            egress=instance.egress,
            error_message=instance.error_message,
            created_at=instance.created_at,
            updated_at=instance.updated_at,
            auto_stop=AutoStop.of(instance),
            power=public_power(instance),
            backup_schedule=schedule_of(instance),
        )


@dataclass(frozen=True, slots=True)
class CreateRequest:
    name: str
    model_provider: str
    sandbox_provider: str
    openclaw_version: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: Egress = "open"
    # "default": the server's (`CHOWDER_FREEZE_AFTER_S`, `CHOWDER_STOP_AFTER_S`); None: never.
    auto_stop: AutoStop | None | Literal["default"] = "default"
    # A clone's: the backup whose state it boots on (`domain/restores.py`).
    restore_backup_id: str | None = None
    backup_schedule: BackupSchedule | None = None


def new_instance_record(
    org_id: str,
    request: CreateRequest,
    provider: str,
    release: str,
    overrides: dict[str, Any] | None,
    box: SecretBox,
    auto_stop: AutoStop | None,
) -> InstanceRecord:
    """A new instance as the create use case stores it: provisioning, to run, with its first gateway token and
    model credential (encrypted; the engine replaces both at every boot)."""
    now = utcnow()
    model_token = new_token()
    return InstanceRecord(
        id=new_id(),
        organization_id=org_id,
        name=request.name,
        status=Status.PROVISIONING,
        desired_state=Desired.RUNNING,
        model_provider=request.model_provider,
        sandbox_provider=provider,
        sandbox_id=None,
        gateway_url=None,
        openclaw_version=request.openclaw_version,
        openclaw_release=release,
        openclaw_config=overrides,
        region=request.region,
        egress=request.egress,
        error_message=None,
        gateway_token_enc=box.encrypt(new_token()),
        model_token_hash=hash_key(model_token),
        model_token_enc=box.encrypt(model_token),
        status_changed_at=now,
        observed_at=None,
        replace_gateway=False,
        torn_down=False,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        freeze_after_s=auto_stop.freeze_after_s if auto_stop else None,
        stop_after_s=auto_stop.stop_after_s if auto_stop else None,
        restore_backup_id=request.restore_backup_id,
        **schedule_columns(request.backup_schedule, now),
    )
