"""The organization's routes as `Call`s: organization, subscription, keys, usage, audit and instances, the public
ones and the extensions (pagination, recover, usage, audit, egress, auto_stop). Each builder's signature is the
SDK method's (`resources.py` names them), and request bodies are built with the server's own schemas, so a field
the server would refuse is refused here first, with pydantic's message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from chowder.client.calls import LONG_TIMEOUT_S, Call, Page, ReportPage, body, call, nothing, one, page, report_page
from chowder.schemas.audit import AuditEvent
from chowder.schemas.backups import BackupSchedule
from chowder.schemas.instances import (
    AutoStop,
    Egress,
    Instance,
    InstanceCreate,
    InstanceStatus,
    InstanceUpdate,
    RestoreRequest,
)
from chowder.schemas.keys import Key, KeyCreate, KeyCreated, KeyDetail, KeyUpdate, PermissionName
from chowder.schemas.organization import (
    BillingUrl,
    CheckoutRequest,
    Organization,
    OrganizationUpdate,
    SignupRequest,
    SignupResponse,
    Subscription,
)
from chowder.schemas.usage import InstanceUsage, OrganizationUsage

T = TypeVar("T")


class NotGiven(Enum):
    """Tells "leave it to the server" from an explicit null where null means something (`auto_stop: null` is
    "never sleep")."""

    NOT_GIVEN = "NOT_GIVEN"


NOT_GIVEN = NotGiven.NOT_GIVEN
MaybeAutoStop = AutoStop | None | Literal[NotGiven.NOT_GIVEN]
# A monthly token cap to set: a number, None to lift the cap, NOT_GIVEN to keep it.
MaybeLimit = int | None | Literal[NotGiven.NOT_GIVEN]
# Scheduled backups to set: a schedule, None to switch them off, NOT_GIVEN to keep them.
MaybeSchedule = BackupSchedule | None | Literal[NotGiven.NOT_GIVEN]


def segment(value: str) -> str:
    return quote(value, safe="")


def given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None and value is not NOT_GIVEN}


def _with(fields: dict[str, Any], **maybe: Any) -> dict[str, Any]:
    """`fields` with those of `maybe` that are given (None included: it means something)."""
    return {**fields, **{name: value for name, value in maybe.items() if value is not NOT_GIVEN}}


# Organization, subscription, usage and audit.


def signup(name: str, *, idempotency_key: str | None = None) -> Call[SignupResponse]:
    """A new organization and its org key (`api_key`, shown only here); needs no key."""
    payload = body(SignupRequest(name=name))
    return call("POST", "/v1/organization/signup", one(SignupResponse), json=payload, idempotency_key=idempotency_key)


def get_organization() -> Call[Organization]:
    return call("GET", "/v1/organization", one(Organization))


def update_organization(
    *,
    name: str | None = None,
    model_api_keys: Mapping[str, str] | None = None,
    monthly_token_limit: MaybeLimit = NOT_GIVEN,
) -> Call[Organization]:
    """`model_api_keys` is merged into the stored ones; an empty string deletes a provider's key.
    `monthly_token_limit` caps the organization's tokens per calendar month (None lifts the cap)."""
    fields = {**given(name=name, model_api_keys=model_api_keys), **_limit(monthly_token_limit)}
    update = OrganizationUpdate.model_validate(fields)
    return call("PATCH", "/v1/organization", one(Organization), json=body(update))


def organization_usage(*, since: datetime | None = None, until: datetime | None = None) -> Call[OrganizationUsage]:
    """Tokens of all the organization's model calls, per instance and per key."""
    return call("GET", "/v1/organization/usage", one(OrganizationUsage), params={"since": since, "until": until})


def organization_usage_page(
    *, limit: int, cursor: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Call[ReportPage[OrganizationUsage]]:
    """The same report, its breakdowns paged."""
    params = {"limit": limit, "cursor": cursor, "since": since, "until": until}
    return call("GET", "/v1/organization/usage", report_page(OrganizationUsage), params=params)


def audit_page(
    *,
    limit: int,
    cursor: str | None = None,
    instance_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Call[Page[AuditEvent]]:
    """One page of the audit log, newest first; pass `next_cursor` back as `cursor` for the next."""
    params = {"limit": limit, "cursor": cursor, "instance_id": instance_id, "action": action}
    return call("GET", "/v1/organization/audit", page(AuditEvent), params={**params, "since": since, "until": until})


def audit(
    *,
    instance_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Call[list[AuditEvent]]:
    """The whole audit log (newest first), or the part about one instance or action."""
    params = {"instance_id": instance_id, "action": action, "since": since, "until": until}
    return call("GET", "/v1/organization/audit", page(AuditEvent), params=params).then(_items)


def get_subscription() -> Call[Subscription]:
    return call("GET", "/v1/subscription", one(Subscription))


def checkout(tier: str, *, idempotency_key: str | None = None) -> Call[BillingUrl]:
    """A Stripe Checkout URL for `crab` or `lobster`."""
    payload = body(CheckoutRequest(tier=tier))
    return call("POST", "/v1/subscription/checkout", one(BillingUrl), json=payload, idempotency_key=idempotency_key)


def portal(*, idempotency_key: str | None = None) -> Call[BillingUrl]:
    """A Stripe customer-portal URL."""
    return call("POST", "/v1/subscription/portal", one(BillingUrl), idempotency_key=idempotency_key)


# Keys.


def create_key(
    name: str,
    *,
    instance_ids: Sequence[str],
    permissions: Sequence[PermissionName],
    expires_at: datetime | None = None,
    monthly_token_limit: int | None = None,
    idempotency_key: str | None = None,
) -> Call[KeyCreated]:
    """A scoped key; its `raw_key` is in this answer only."""
    fields = given(
        name=name,
        instance_ids=list(instance_ids),
        permissions=list(permissions),
        expires_at=expires_at,
        monthly_token_limit=monthly_token_limit,
    )
    payload = body(KeyCreate.model_validate(fields))
    return call("POST", "/v1/keys", one(KeyCreated), json=payload, idempotency_key=idempotency_key)


def list_keys() -> Call[list[Key]]:
    """Every scoped key, newest first."""
    return call("GET", "/v1/keys", page(Key)).then(_items)


def keys_page(*, limit: int, cursor: str | None = None) -> Call[Page[Key]]:
    return call("GET", "/v1/keys", page(Key), params={"limit": limit, "cursor": cursor})


def get_key(key_id: str) -> Call[KeyDetail]:
    return call("GET", f"/v1/keys/{segment(key_id)}", one(KeyDetail))


def update_key(key_id: str, *, monthly_token_limit: MaybeLimit = NOT_GIVEN) -> Call[KeyDetail]:
    """Caps the key's tokens per calendar month (None lifts the cap)."""
    payload = body(KeyUpdate.model_validate(_limit(monthly_token_limit)))
    return call("PATCH", f"/v1/keys/{segment(key_id)}", one(KeyDetail), json=payload)


def _limit(monthly_token_limit: MaybeLimit) -> dict[str, Any]:
    return {} if monthly_token_limit is NOT_GIVEN else {"monthly_token_limit": monthly_token_limit}


def revoke_key(key_id: str) -> Call[None]:
    """At once and for good."""
    return call("DELETE", f"/v1/keys/{segment(key_id)}", nothing)


# Instances.


def instance_path(instance_id: str, tail: str = "") -> str:
    return f"/v1/instances/{segment(instance_id)}{tail}"


def create_instance(
    name: str,
    *,
    model_provider: str | None = None,
    openclaw_version: str | None = None,
    openclaw_config: Mapping[str, Any] | None = None,
    region: str | None = None,
    egress: Egress | None = None,
    auto_stop: MaybeAutoStop = NOT_GIVEN,
    from_backup: str | None = None,
    clone_from: str | None = None,
    backup_schedule: MaybeSchedule = NOT_GIVEN,
    idempotency_key: str | None = None,
) -> Call[Instance]:
    """Answers at once with `provisioning`; see `wait_until_running`. With `from_backup` (a backup id) or
    `clone_from` (an instance id, backed up now) it boots on a copy of that state, without its channels."""
    fields = given(name=name, model_provider=model_provider, openclaw_version=openclaw_version, region=region)
    fields |= given(openclaw_config=openclaw_config, egress=egress, from_backup=from_backup, clone_from=clone_from)
    fields = _with(fields, auto_stop=auto_stop, backup_schedule=backup_schedule)
    payload = body(InstanceCreate.model_validate(fields))
    return call("POST", "/v1/instances", one(Instance), json=payload, idempotency_key=idempotency_key)


def list_instances() -> Call[list[Instance]]:
    """Every instance of the organization, newest first."""
    return call("GET", "/v1/instances", page(Instance)).then(_items)


def instances_page(*, limit: int, cursor: str | None = None) -> Call[Page[Instance]]:
    return call("GET", "/v1/instances", page(Instance), params={"limit": limit, "cursor": cursor})


def get_instance(instance_id: str) -> Call[Instance]:
    return call("GET", instance_path(instance_id), one(Instance))


def instance_status(instance_id: str) -> Call[InstanceStatus]:
    return call("GET", instance_path(instance_id, "/status"), one(InstanceStatus))


def update_instance(
    instance_id: str,
    *,
    name: str | None = None,
    openclaw_config: Mapping[str, Any] | None = None,
    egress: Egress | None = None,
    auto_stop: MaybeAutoStop = NOT_GIVEN,
    backup_schedule: MaybeSchedule = NOT_GIVEN,
) -> Call[Instance]:
    """`openclaw_config` is deep-merged (a null value removes a key); all apply live to a running instance.
    `backup_schedule` None switches scheduled backups off."""
    fields = given(name=name, openclaw_config=openclaw_config, egress=egress)
    fields = _with(fields, auto_stop=auto_stop, backup_schedule=backup_schedule)
    return call("PATCH", instance_path(instance_id), one(Instance), json=body(InstanceUpdate.model_validate(fields)))


def upgrade_instance(
    instance_id: str, openclaw_version: str, *, upgrade_from_backup: str | None = None
) -> Call[Instance]:
    """The running instance on that release (a backup is taken first), on a backup's state if given (back past a
    state migration: the backup taken before the upgrade); answers once it runs it. When the release fails, the
    server rolls back to the old one and this raises with the reason (502)."""
    fields = given(openclaw_version=openclaw_version, upgrade_from_backup=upgrade_from_backup)
    payload = body(InstanceUpdate.model_validate(fields))
    return call("PATCH", instance_path(instance_id), one(Instance), json=payload, timeout=LONG_TIMEOUT_S)


def delete_instance(instance_id: str) -> Call[None]:
    """The instance and all its files, for good."""
    return call("DELETE", instance_path(instance_id), nothing)


def _action(instance_id: str, action: Literal["start", "stop", "recover"], key: str | None) -> Call[Instance]:
    """Each answers with the final state, once the gateway is ready (or gone): hence the long timeout."""
    path = instance_path(instance_id, f"/{action}")
    return call("POST", path, one(Instance), timeout=LONG_TIMEOUT_S, idempotency_key=key)


def start_instance(instance_id: str, *, idempotency_key: str | None = None) -> Call[Instance]:
    """Blocks until the gateway is ready (the server answers with `running`)."""
    return _action(instance_id, "start", idempotency_key)


def stop_instance(instance_id: str, *, idempotency_key: str | None = None) -> Call[Instance]:
    return _action(instance_id, "stop", idempotency_key)


def recover_instance(instance_id: str, *, idempotency_key: str | None = None) -> Call[Instance]:
    """From `error`: boots it again with the same id and files."""
    return _action(instance_id, "recover", idempotency_key)


def restore_instance(instance_id: str, backup_id: str, *, idempotency_key: str | None = None) -> Call[Instance]:
    """Replaces its state with the backup's (from running, stopped or error); answers once it runs again."""
    payload = body(RestoreRequest(backup_id=backup_id))
    path = instance_path(instance_id, "/restore")
    return call("POST", path, one(Instance), json=payload, timeout=LONG_TIMEOUT_S, idempotency_key=idempotency_key)


def instance_usage(
    instance_id: str, *, since: datetime | None = None, until: datetime | None = None
) -> Call[InstanceUsage]:
    """Tokens of the instance's model calls, per session and per model."""
    params = {"since": since, "until": until}
    return call("GET", instance_path(instance_id, "/usage"), one(InstanceUsage), params=params)


def instance_usage_page(
    instance_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Call[ReportPage[InstanceUsage]]:
    """The same report, its breakdowns paged."""
    params = {"limit": limit, "cursor": cursor, "since": since, "until": until}
    return call("GET", instance_path(instance_id, "/usage"), report_page(InstanceUsage), params=params)


def _items(found: Page[T]) -> list[T]:
    return found.items
