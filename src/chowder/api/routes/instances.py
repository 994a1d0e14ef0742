"""Instance routes: create (and clone), list, get, update, delete, start, stop, recover, restore, status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from chowder.api.deps import GUARDED, OrgPrincipal, State, require, state_of
from chowder.api.pagination import PageParams, paged
from chowder.core.errors import BadRequest
from chowder.domain.instance_views import CreateRequest, InstanceView
from chowder.domain.models import Permission, Principal
from chowder.domain.ports.backups import BackupSchedule
from chowder.domain.ports.instances import KEEP
from chowder.domain.power import AutoStop
from chowder.schemas.backups import BackupSchedule as BackupScheduleBody
from chowder.schemas.instances import AutoStop as AutoStopBody
from chowder.schemas.instances import Instance, InstanceCreate, InstanceStatus, InstanceUpdate, RestoreRequest

router = APIRouter(tags=["instances"])

_can_read = require(Permission.READ)
CanConfigure = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


def _public(view: InstanceView) -> Instance:
    """Read off the view's attributes: `asdict` would deep-copy each config first (most of a list's cost)."""
    return Instance.model_validate(view, from_attributes=True)


def _auto_stop(body: AutoStopBody | None) -> AutoStop | None:
    return None if body is None else AutoStop.checked(body.freeze_after_s, body.stop_after_s)


def _schedule(body: BackupScheduleBody | None) -> BackupSchedule | None:
    return None if body is None else BackupSchedule(body.every_hours, body.keep)


def _upgrade_to(body: InstanceUpdate) -> str | None:
    """The release an update asks for: an upgrade is an operation of its own (a backup, a boot, maybe a rollback),
    so it comes alone (with the backup to boot it on, if any), never half-applied with other changes."""
    given = body.model_fields_set
    if not given & {"openclaw_version", "upgrade_from_backup"}:
        return None
    if body.openclaw_version is None or given - {"openclaw_version", "upgrade_from_backup"}:
        raise BadRequest("openclaw_version must be a release, given alone: an upgrade takes no other change.")
    return body.openclaw_version


# First: the route pollers call most (a request is matched against the routes in turn), then the rest in order.
# The polled reads (status, get, list) take the app's state from the request (`state_of`), not as `State`;
# status and get also call their guard themselves, leaving FastAPI no dependency to solve (~30 us a poll each).
@router.get("/v1/instances/{instance_id}/status", openapi_extra=GUARDED)
async def instance_status(instance_id: str, request: Request) -> InstanceStatus:
    principal = await _can_read(instance_id, request)
    status, gateway_url = await state_of(request).instances.status(principal, instance_id)
    return InstanceStatus(id=instance_id, status=status, gateway_url=gateway_url)


@router.post("/v1/instances", status_code=status.HTTP_201_CREATED)
async def create_instance(body: InstanceCreate, principal: OrgPrincipal, state: State) -> Instance:
    """Answers at once with `provisioning`; the gateway boots in the background. With `from_backup` or `clone_from`
    (extension) it boots on a copy of that state (`clone_from` first takes a backup of the instance)."""
    fields = body.model_dump(exclude={"auto_stop", "from_backup", "clone_from", "backup_schedule"})
    given = "auto_stop" in body.model_fields_set
    schedule = _schedule(body.backup_schedule)
    request = CreateRequest(
        **fields, auto_stop=_auto_stop(body.auto_stop) if given else "default", backup_schedule=schedule
    )
    if body.from_backup is None and body.clone_from is None:
        return _public(await state.instances.create(principal, request))
    return _public(await state.restores.clone(principal, request, body.from_backup, body.clone_from))


@router.get("/v1/instances")
async def list_instances(
    principal: OrgPrincipal, page: PageParams, request: Request, response: Response
) -> list[Instance]:
    """Newest first; deleted instances are left out. Pages on request (`limit`, `cursor`: extension)."""
    listed = await state_of(request).instances.list_for(principal, page)
    return [_public(view) for view in paged(listed, request, response)]


@router.get("/v1/instances/{instance_id}", openapi_extra=GUARDED)
async def get_instance(instance_id: str, request: Request) -> Instance:
    principal = await _can_read(instance_id, request)
    return _public(await state_of(request).instances.get(principal, instance_id))


@router.patch("/v1/instances/{instance_id}")
async def update_instance(instance_id: str, body: InstanceUpdate, principal: CanConfigure, state: State) -> Instance:
    """`openclaw_config` is deep-merged (null removes a key) and applied live to a running gateway, as is `egress`;
    `auto_stop` null switches sleeping off, `backup_schedule` null scheduled backups. `openclaw_version` (alone)
    upgrades a running instance, answered once it runs that release (502 when it was rolled back)."""
    if (release := _upgrade_to(body)) is not None:
        return _public(await state.upgrades.upgrade(principal, instance_id, release, body.upgrade_from_backup))
    given = body.model_fields_set
    auto_stop = _auto_stop(body.auto_stop) if "auto_stop" in given else KEEP
    schedule = _schedule(body.backup_schedule) if "backup_schedule" in given else KEEP
    update = (body.name, body.openclaw_config, body.egress, auto_stop, schedule)
    return _public(await state.instances.update(principal, instance_id, *update))


@router.delete("/v1/instances/{instance_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_instance(instance_id: str, principal: OrgPrincipal, state: State) -> Response:
    """Allowed from every state; the sandbox and its files are destroyed in the background."""
    await state.instances.delete(principal, instance_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/instances/{instance_id}/start")
async def start_instance(instance_id: str, principal: OrgPrincipal, state: State) -> Instance:
    """Only from `stopped`; answers once the gateway is ready."""
    return _public(await state.instances.start(principal, instance_id))


@router.post("/v1/instances/{instance_id}/stop")
async def stop_instance(instance_id: str, principal: OrgPrincipal, state: State) -> Instance:
    """Only from `running`; the gateway's process tree ends, its files stay."""
    return _public(await state.instances.stop(principal, instance_id))


@router.post("/v1/instances/{instance_id}/recover")
async def recover_instance(instance_id: str, principal: OrgPrincipal, state: State) -> Instance:
    """Extension. Only from `error`: its boot is retried with the same id, state and files (deleting it would lose
    the agent's memory); answers once the gateway is ready, or 502 with the reason."""
    return _public(await state.instances.recover(principal, instance_id))


@router.post("/v1/instances/{instance_id}/restore")
async def restore_instance(instance_id: str, body: RestoreRequest, principal: OrgPrincipal, state: State) -> Instance:
    """Extension. From `running`, `stopped` or `error`: the gateway is stopped, the backup's state replaces the
    instance's (config, workspace, sessions, memory) and a new gateway boots on it with new credentials; answers
    once it runs (502 with the reason if it does not). Another instance's backup drops its channels, as a clone."""
    return _public(await state.restores.restore(principal, instance_id, body.backup_id))
