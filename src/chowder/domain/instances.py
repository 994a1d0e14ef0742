"""Instance use cases. API calls record intent (desired state) and return; the engine does the work.
`start`, `stop` and `restart` then wait for the engine, because the public API answers them with the final state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, InvalidState, NotFound, QuotaExceeded
from chowder.core.merge_patch import merge_patch
from chowder.core.pagination import Cursor, Page, PageRequest
from chowder.core.settings import MIB, Settings
from chowder.domain.agent import RunningAgent
from chowder.domain.backup_schedule import schedule_columns
from chowder.domain.files import Workspace
from chowder.domain.instance_access import running, visible
from chowder.domain.instance_views import CreateRequest, InstanceView, new_instance_record
from chowder.domain.intents import EngineWait, record_intent, view_of
from chowder.domain.lifecycle import Event
from chowder.domain.models import TIER_LIMITS, Principal, Status
from chowder.domain.orgs import required_model_key
from chowder.domain.ports.backups import BackupSchedule
from chowder.domain.ports.instances import KEEP, InstanceChanges, Keep
from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess, InstanceRuntimeSpec
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord
from chowder.domain.power import AutoStop, PowerControl
from chowder.domain.quantity_sync import with_quantity_due
from chowder.domain.runtime_spec import runtime_spec_of
from chowder.sandbox.base import Egress, SandboxProvider, SandboxState

DEFAULT_SANDBOX = "sandbox"


class Instances:
    """The instance use cases; storage work runs in threads (`Transactions`) so the event loop never blocks."""

    def __init__(
        self,
        transactions: Transactions,
        box: SecretBox,
        settings: Settings,
        providers: dict[str, SandboxProvider],
        runtime: AgentRuntime,
        wake_engine: Callable[[], None],
        wake_quantity_sync: Callable[[], None],
        power: PowerControl,
    ) -> None:
        self._tx = transactions
        self._box = box
        self._settings = settings
        self._providers = providers
        self._runtime = runtime
        self._wake = wake_engine
        self._wake_quantity_sync = wake_quantity_sync
        self._engine_wait = EngineWait(transactions, wake_engine)
        self._power = power

    async def create(self, principal: Principal, request: CreateRequest) -> InstanceView:
        """201 at once in `provisioning`; validation and the tier limit are checked synchronously.
        Raises BadRequest if the org holds no key for the model provider (unless the dev model answers)."""
        release = self._runtime.resolve_version(request.openclaw_version)
        provider = self._provider_name(request.sandbox_provider)
        overrides = self._overrides(request.openclaw_config)
        if request.auto_stop == "default":
            request = replace(request, auto_stop=AutoStop.default(self._settings))
        org_id = principal.organization_id
        view = await self._tx(lambda uow: self._insert(uow, org_id, request, release, provider, overrides))
        self._wake()
        self._wake_quantity_sync()
        return view

    def _insert(
        self,
        uow: UnitOfWork,
        org_id: str,
        request: CreateRequest,
        release: str,
        provider: str,
        overrides: dict[str, Any] | None,
    ) -> InstanceView:
        if not self._settings.dev_model:
            required_model_key(uow, org_id, request.model_provider)
        org = room_for_one(uow, org_id)
        uow.orgs.save(with_quantity_due(org))
        auto_stop = None if request.auto_stop == "default" else request.auto_stop
        instance = new_instance_record(org_id, request, provider, release, overrides, self._box, auto_stop)
        uow.instances.add(instance)
        return InstanceView.of(instance)

    async def list_for(self, principal: Principal, page: PageRequest = PageRequest()) -> Page[InstanceView]:
        org_id = principal.organization_id
        # A page is a short read; the whole list (a public-API client's call) can be thousands of rows.
        run = self._tx if page.limit is None else self._tx.read
        views = await run(
            lambda reads: [InstanceView.of(found) for found in reads.instances.public_of_org(org_id, page)]
        )
        return Page.of(views, page, Cursor.after)

    async def get(self, principal: Principal, instance_id: str) -> InstanceView:
        return await self._tx.read(lambda uow: view_of(uow, principal.organization_id, instance_id))

    async def status(self, principal: Principal, instance_id: str) -> tuple[Status, str | None]:
        """Status and gateway URL; NotFound as `get`."""
        org_id = principal.organization_id
        found = await self._tx.read(lambda uow: uow.instances.status_of(org_id, instance_id))
        if found is None:
            raise NotFound("Instance not found.")
        return found

    async def update(
        self,
        principal: Principal,
        instance_id: str,
        name: str | None,
        config_patch: dict[str, Any] | None,
        egress: Egress | None = None,
        auto_stop: AutoStop | None | Keep = KEEP,
        backup_schedule: BackupSchedule | None | Keep = KEEP,
    ) -> InstanceView:
        """Rename, set the egress policy, and deep-merge `openclaw_config` (null removes a key). OpenClaw validates
        and applies a config change first (live on a running gateway, into the file of a stopped one); only then
        is it stored, so the two never diverge and a refused change leaves everything as it was (400 with
        OpenClaw's reasons). The egress policy is applied to the sandbox (at once while it runs) before it is
        stored, after the config change succeeded. A new `auto_stop` counts idleness from now. A change to a
        provisioning instance waits for it to come up, then applies."""
        patch = self._overrides(config_patch)
        org_id = principal.organization_id
        if patch:
            view = await self._engine_wait.while_in(
                org_id, instance_id, Status.PROVISIONING, self._settings.start_timeout_s
            )
            merged = merge_patch(view.openclaw_config or {}, patch)
            if view.status == Status.RUNNING:
                agent = await self.agent(principal, instance_id)
                if await self._runtime.apply_overrides(agent.provider, agent.spec, agent.gateway, patch, merged):
                    await self.restart(principal, instance_id)
            elif view.status == Status.PROVISIONING:
                raise InvalidState("Instance is provisioning; openclaw_config can change once it is up.")
            else:
                provider, spec = await self._spec(org_id, instance_id)
                await self._runtime.write_overrides(provider, spec, patch, merged)
        if egress is not None:  # after the config, which OpenClaw may refuse: then nothing has changed
            await self._engine_wait.while_in(org_id, instance_id, Status.PROVISIONING, self._settings.start_timeout_s)
            provider, spec = await self._spec(org_id, instance_id)
            if (await provider.observe(spec.sandbox_id)).state != SandboxState.MISSING:
                await provider.set_egress(spec.sandbox_id, egress)
        schedule = backup_schedule
        return await self._tx(
            lambda uow: _store_update(uow, org_id, instance_id, name, patch, egress, auto_stop, schedule)
        )

    async def gateway(self, principal: Principal, instance_id: str) -> GatewayAccess:
        """Where the running instance's gateway listens and its token; 409 when it is not running."""
        return (await self.agent(principal, instance_id)).gateway

    async def agent(self, principal: Principal, instance_id: str) -> RunningAgent:
        """The running instance's agent (skills, pairing); 409 when it is not running."""
        org_id = principal.organization_id
        await self._power.ready(org_id, instance_id)
        instance = await self._tx(lambda uow: running(uow.instances.get(org_id, instance_id)))
        assert instance.gateway_url is not None
        spec = runtime_spec_of(instance, self._box)
        gateway = GatewayAccess(instance.gateway_url, spec.gateway_token)
        return RunningAgent(self._runtime, self._providers[instance.sandbox_provider], spec, gateway)

    async def sandbox(self, principal: Principal, instance_id: str) -> tuple[SandboxProvider, InstanceRuntimeSpec]:
        """A running instance's sandbox (woken, as for `agent`) or a stopped one's, for work on its state that
        needs no gateway; 409 in any other status (its sandbox may be missing or about to change)."""
        org_id = principal.organization_id
        instance = await self._tx(lambda uow: visible(uow.instances.get(org_id, instance_id)))
        if instance.status == Status.RUNNING:
            agent = await self.agent(principal, instance_id)
            return agent.provider, agent.spec
        if instance.status != Status.STOPPED:
            raise InvalidState(f"Instance is {instance.status}; it must be running or stopped.")
        return self._providers[instance.sandbox_provider], runtime_spec_of(instance, self._box)

    async def _spec(self, org_id: str, instance_id: str) -> tuple[SandboxProvider, InstanceRuntimeSpec]:
        instance = await self._tx(lambda uow: visible(uow.instances.get(org_id, instance_id)))
        return self._providers[instance.sandbox_provider], runtime_spec_of(instance, self._box)

    async def workspace(self, principal: Principal, instance_id: str) -> Workspace:
        """The running instance's files; 409 when it is not running (its sandbox may not be reachable)."""
        agent = await self.agent(principal, instance_id)
        return Workspace(agent.provider, agent.spec.sandbox_id, self._settings.max_upload_mb * MIB)

    async def delete(self, principal: Principal, instance_id: str) -> None:
        """Gone from the API at once (slot freed, grants dropped, Stripe quantity due); the engine tears the
        sandbox down."""
        await self._tx(lambda uow: _delete(uow, principal.organization_id, instance_id))
        self._wake()
        self._wake_quantity_sync()

    async def start(self, principal: Principal, instance_id: str) -> InstanceView:
        """Blocks until the gateway is ready; 502 with the reason if it cannot become ready."""
        timeout_s = self._settings.start_timeout_s + 30
        return await self._engine_wait.change(
            principal.organization_id, instance_id, Event.START, Status.PROVISIONING, Status.RUNNING, timeout_s
        )

    async def stop(self, principal: Principal, instance_id: str) -> InstanceView:
        """Blocks until the gateway's process tree is gone; files and state are kept."""
        timeout_s = self._settings.stop_grace_s + 60
        return await self._engine_wait.change(
            principal.organization_id, instance_id, Event.STOP, Status.RUNNING, Status.STOPPED, timeout_s
        )

    async def restart(self, principal: Principal, instance_id: str) -> InstanceView:
        """For changes a running gateway takes only at boot: the engine stops it and boots a new one (one
        operation: a crash in between resumes it); 502 with the reason if it does not come back."""
        timeout_s = self._settings.stop_grace_s + self._settings.start_timeout_s + 30
        return await self._engine_wait.change(
            principal.organization_id, instance_id, Event.RESTART, Status.PROVISIONING, Status.RUNNING, timeout_s
        )

    async def recover(self, principal: Principal, instance_id: str) -> InstanceView:
        """Only from `error`: boots the instance again, keeping its id, state and files; 502 with the reason if it
        still cannot become ready."""
        timeout_s = max(self._settings.provision_timeout_s, self._settings.start_timeout_s) + 30
        return await self._engine_wait.change(
            principal.organization_id, instance_id, Event.RECOVER, Status.PROVISIONING, Status.RUNNING, timeout_s
        )

    def _overrides(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if config is None else self._runtime.check_overrides(config)

    def _provider_name(self, requested: str) -> str:
        name = self._settings.sandbox_provider if requested == DEFAULT_SANDBOX else requested
        if name not in self._providers:
            supported = ", ".join([DEFAULT_SANDBOX, *self._providers])
            raise BadRequest(f"Unknown sandbox_provider '{requested}'. Supported: {supported}.")
        return name


def room_for_one(uow: UnitOfWork, org_id: str) -> OrgRecord:
    """The org, locked, when its tier has room for one more instance; QuotaExceeded otherwise."""
    org = uow.orgs.lock(org_id)
    if org is None:
        raise NotFound("Organization not found.")
    limit = TIER_LIMITS[org.subscription_tier]
    count = uow.instances.count_live(org_id)
    if limit is not None and count >= limit:
        raise QuotaExceeded(f"Instance limit reached ({count}/{limit}). Upgrade your subscription.")
    return org


def _store_update(
    uow: UnitOfWork,
    org_id: str,
    instance_id: str,
    name: str | None,
    patch: dict[str, Any] | None,
    egress: Egress | None,
    auto_stop: AutoStop | None | Keep,
    backup_schedule: BackupSchedule | None | Keep = KEEP,
) -> InstanceView:
    """The patch merges onto the config as stored now, not as read before OpenClaw took it."""
    instance = visible(uow.instances.get(org_id, instance_id))
    changed = replace(
        instance,
        name=instance.name if name is None else name,
        egress=instance.egress if egress is None else egress,
        openclaw_config=merge_patch(instance.openclaw_config or {}, patch) if patch else instance.openclaw_config,
        updated_at=utcnow(),
    )
    if not isinstance(auto_stop, Keep):
        changed = replace(
            changed,
            freeze_after_s=auto_stop.freeze_after_s if auto_stop else None,
            stop_after_s=auto_stop.stop_after_s if auto_stop else None,
        )
    if not isinstance(backup_schedule, Keep):
        changed = replace(changed, **schedule_columns(backup_schedule, changed.updated_at))
    uow.instances.save(changed)
    if not isinstance(auto_stop, Keep):
        uow.instances.touch(org_id, instance_id, changed.updated_at)
        changed = visible(uow.instances.get(org_id, instance_id))
    return InstanceView.of(changed)


def _delete(uow: UnitOfWork, org_id: str, instance_id: str) -> None:
    org = uow.orgs.lock(org_id)
    record_intent(uow, org_id, instance_id, Event.DELETE, InstanceChanges(deleted_at=utcnow()))
    if org is not None:
        uow.orgs.save(with_quantity_due(org))
    uow.keys.drop_grants_of_instance(org_id, instance_id)
