"""Instance use cases. API calls record intent (desired state) and return; the engine does the work.
`start` and `stop` then wait for the engine, because the public API answers them with the final state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, GatewayUnavailable, InvalidState, NotFound, QuotaExceeded
from chowder.core.ids import hash_key, new_id, new_token
from chowder.core.merge_patch import merge_patch
from chowder.core.settings import MIB, Settings
from chowder.domain.agent import RunningAgent
from chowder.domain.files import Workspace
from chowder.domain.models import TIER_LIMITS, Desired, Principal, Status, Tier
from chowder.domain.ports.runtime import AgentRuntime, GatewayAccess, InstanceRuntimeSpec, runtime_spec_of
from chowder.domain.quantity_sync import mark_quantity_due
from chowder.persistence.db import Database
from chowder.persistence.repositories import TenantRepository
from chowder.persistence.tables import InstanceRow
from chowder.sandbox.base import Egress, SandboxProvider, SandboxState

DEFAULT_SANDBOX = "sandbox"
_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class InstanceView:
    id: str
    organization_id: str
    name: str
    status: str
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

    @classmethod
    def of(cls, row: InstanceRow) -> InstanceView:
        return cls(
            id=row.id,
            organization_id=row.organization_id,
            name=row.name,
            status=row.status,
            model_provider=row.model_provider,
            sandbox_provider=row.sandbox_provider,
            sandbox_id=row.sandbox_id,
            gateway_url=row.gateway_url if row.status != Status.ERROR else None,
            openclaw_version=row.openclaw_version,
            openclaw_config=row.openclaw_config,
            region=row.region,
            egress=row.egress,
            error_message=row.error_message,
            created_at=row.created_at,
            updated_at=row.updated_at,
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


class Instances:
    """The instance use cases; DB work runs in threads so the event loop never blocks."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        settings: Settings,
        providers: dict[str, SandboxProvider],
        runtime: AgentRuntime,
        wake_engine: Callable[[], None],
        wake_quantity_sync: Callable[[], None],
    ) -> None:
        self._db = db
        self._box = box
        self._settings = settings
        self._providers = providers
        self._runtime = runtime
        self._wake = wake_engine
        self._wake_quantity_sync = wake_quantity_sync

    async def create(self, principal: Principal, request: CreateRequest) -> InstanceView:
        """201 at once in `provisioning`; validation and the tier limit are checked synchronously.
        Raises BadRequest if the org holds no key for the model provider (unless the dev model answers)."""
        release = self._runtime.resolve_version(request.openclaw_version)
        provider = self._provider_name(request.sandbox_provider)
        overrides = self._overrides(request.openclaw_config)
        view = await asyncio.to_thread(self._insert, principal.organization_id, request, release, provider, overrides)
        self._wake()
        self._wake_quantity_sync()
        return view

    def _insert(
        self, org_id: str, request: CreateRequest, release: str, provider: str, overrides: dict[str, Any] | None
    ) -> InstanceView:
        with self._db.session() as session:
            repo = TenantRepository(session)
            if not self._settings.dev_model and repo.model_key(org_id, request.model_provider) is None:
                raise BadRequest(
                    f"No API key is configured for model provider '{request.model_provider}'. "
                    "Set one with PATCH /v1/organization."
                )
            org = repo.lock_org(org_id)
            if org is None:
                raise NotFound("Organization not found.")
            limit = TIER_LIMITS[Tier(org.subscription_tier)]
            count = repo.live_instance_count(org_id)
            if limit is not None and count >= limit:
                raise QuotaExceeded(f"Instance limit reached ({count}/{limit}). Upgrade your subscription.")
            mark_quantity_due(org)
            now = utcnow()
            model_token = new_token()
            row = InstanceRow(
                id=new_id(),
                organization_id=org_id,
                name=request.name,
                status=Status.PROVISIONING,
                desired_state=Desired.RUNNING,
                model_provider=request.model_provider,
                sandbox_provider=provider,
                openclaw_version=request.openclaw_version,
                openclaw_release=release,
                openclaw_config=overrides,
                region=request.region,
                egress=request.egress,
                gateway_token_enc=self._box.encrypt(new_token()),
                model_token_hash=hash_key(model_token),
                model_token_enc=self._box.encrypt(model_token),
                status_changed_at=now,
                torn_down=False,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            repo.add(row)
            return InstanceView.of(row)

    async def list_for(self, principal: Principal) -> list[InstanceView]:
        return await asyncio.to_thread(self._list, principal.organization_id)

    def _list(self, org_id: str) -> list[InstanceView]:
        with self._db.session() as session:
            return [InstanceView.of(row) for row in TenantRepository(session).instances(org_id)]

    async def get(self, principal: Principal, instance_id: str) -> InstanceView:
        return await asyncio.to_thread(self._get, principal.organization_id, instance_id)

    def _get(self, org_id: str, instance_id: str) -> InstanceView:
        with self._db.session() as session:
            return InstanceView.of(_visible(TenantRepository(session), org_id, instance_id))

    async def update(
        self,
        principal: Principal,
        instance_id: str,
        name: str | None,
        config_patch: dict[str, Any] | None,
        egress: Egress | None = None,
    ) -> InstanceView:
        """Rename, set the egress policy, and deep-merge `openclaw_config` (null removes a key). OpenClaw validates
        and applies a config change first (live on a running gateway, into the file of a stopped one); only then
        is it stored, so the two never diverge and a refused change leaves everything as it was (400 with
        OpenClaw's reasons). The egress policy is applied to the sandbox (at once while it runs) before it is
        stored, after the config change succeeded. A change to a provisioning instance waits for it to come up,
        then applies."""
        patch = self._overrides(config_patch)
        org_id = principal.organization_id
        if patch:
            view = await self._wait_while(org_id, instance_id, Status.PROVISIONING, self._settings.start_timeout_s)
            merged = merge_patch(view.openclaw_config or {}, patch)
            if view.status == Status.RUNNING:
                agent = await self.agent(principal, instance_id)
                if await self._runtime.apply_overrides(agent.provider, agent.spec, agent.gateway, patch, merged):
                    await self.restart(principal, instance_id)
            elif view.status == Status.PROVISIONING:
                raise InvalidState("Instance is provisioning; openclaw_config can change once it is up.")
            else:
                provider, spec = await asyncio.to_thread(self._spec, org_id, instance_id)
                await self._runtime.write_overrides(provider, spec, patch, merged)
        if egress is not None:  # after the config, which OpenClaw may refuse: then nothing has changed
            await self._wait_while(org_id, instance_id, Status.PROVISIONING, self._settings.start_timeout_s)
            provider, spec = await asyncio.to_thread(self._spec, org_id, instance_id)
            if (await provider.observe(spec.sandbox_id)).state != SandboxState.MISSING:
                await provider.set_egress(spec.sandbox_id, egress)
        return await asyncio.to_thread(self._update, org_id, instance_id, name, patch, egress)

    def _update(
        self, org_id: str, instance_id: str, name: str | None, patch: dict[str, Any] | None, egress: Egress | None
    ) -> InstanceView:
        with self._db.session() as session:
            row = _visible(TenantRepository(session), org_id, instance_id)
            if name is not None:
                row.name = name
            if egress is not None:
                row.egress = egress
            if patch:
                row.openclaw_config = merge_patch(row.openclaw_config or {}, patch)
            row.updated_at = utcnow()
            session.flush()
            return InstanceView.of(row)

    async def gateway(self, principal: Principal, instance_id: str) -> GatewayAccess:
        """Where the running instance's gateway listens and its token; 409 when it is not running."""
        return (await self.agent(principal, instance_id)).gateway

    async def agent(self, principal: Principal, instance_id: str) -> RunningAgent:
        """The running instance's agent (skills, pairing); 409 when it is not running."""
        return await asyncio.to_thread(self._agent, principal.organization_id, instance_id)

    def _spec(self, org_id: str, instance_id: str) -> tuple[SandboxProvider, InstanceRuntimeSpec]:
        with self._db.session() as session:
            row = _visible(TenantRepository(session), org_id, instance_id)
            return self._providers[row.sandbox_provider], runtime_spec_of(row, self._box)

    def _agent(self, org_id: str, instance_id: str) -> RunningAgent:
        with self._db.session() as session:
            row = running(TenantRepository(session), org_id, instance_id)
            assert row.gateway_url is not None
            spec = runtime_spec_of(row, self._box)
            gateway = GatewayAccess(row.gateway_url, spec.gateway_token)
            return RunningAgent(self._runtime, self._providers[row.sandbox_provider], spec, gateway)

    async def workspace(self, principal: Principal, instance_id: str) -> Workspace:
        """The running instance's files; 409 when it is not running (its sandbox may not be reachable)."""
        agent = await self.agent(principal, instance_id)
        return Workspace(agent.provider, agent.spec.sandbox_id, self._settings.max_upload_mb * MIB)

    async def delete(self, principal: Principal, instance_id: str) -> None:
        """Gone from the API at once (slot freed, grants dropped, Stripe quantity due); the engine tears the
        sandbox down."""
        await asyncio.to_thread(self._delete, principal.organization_id, instance_id)
        self._wake()
        self._wake_quantity_sync()

    def _delete(self, org_id: str, instance_id: str) -> None:
        with self._db.session() as session:
            repo = TenantRepository(session)
            row = _visible(repo, org_id, instance_id)
            org = repo.lock_org(org_id)
            if org is not None:
                mark_quantity_due(org)
            now = utcnow()
            row.status = Status.TERMINATED
            row.desired_state = Desired.DELETED
            row.deleted_at = now
            row.status_changed_at = now
            row.updated_at = now
            repo.drop_grants_of_instance(instance_id)

    async def start(self, principal: Principal, instance_id: str) -> InstanceView:
        """Blocks until the gateway is ready; 502 with the reason if it cannot become ready."""
        return await self._change_and_wait(
            principal,
            instance_id,
            Status.STOPPED,
            Desired.RUNNING,
            "it must be stopped to start",
            Status.PROVISIONING,
            Status.RUNNING,
            self._settings.start_timeout_s + 30,
        )

    async def stop(self, principal: Principal, instance_id: str) -> InstanceView:
        """Blocks until the gateway's process tree is gone; files and state are kept."""
        return await self._change_and_wait(
            principal,
            instance_id,
            Status.RUNNING,
            Desired.STOPPED,
            "it must be running to stop",
            Status.RUNNING,
            Status.STOPPED,
            self._settings.stop_grace_s + 60,
        )

    async def restart(self, principal: Principal, instance_id: str) -> InstanceView:
        """For changes a running gateway takes only at boot; 502 with the reason if it does not come back."""
        await self.stop(principal, instance_id)
        return await self.start(principal, instance_id)

    async def _change_and_wait(
        self,
        principal: Principal,
        instance_id: str,
        required: Status,
        desired: Desired,
        rule: str,
        passing: Status,
        target: Status,
        timeout_s: float,
    ) -> InstanceView:
        """Record the intent, wake the engine and wait while the status is `passing`; 502 unless it ends
        in `target` (with the engine's reason)."""
        org_id = principal.organization_id
        await asyncio.to_thread(self._transition, org_id, instance_id, required, desired, rule)
        self._wake()
        view = await self._wait_while(org_id, instance_id, passing, timeout_s)
        if view.status != target:
            raise GatewayUnavailable(view.error_message or f"Instance is {view.status}; it did not become {target}.")
        return view

    def _transition(self, org_id: str, instance_id: str, required: Status, desired: Desired, rule: str) -> None:
        with self._db.session() as session:
            row = _visible(TenantRepository(session), org_id, instance_id)
            if row.status != required:
                raise InvalidState(f"Instance is {row.status}; {rule}.")
            now = utcnow()
            row.desired_state = desired
            if desired == Desired.RUNNING:
                row.status = Status.PROVISIONING
                row.status_changed_at = now
                row.error_message = None
            row.updated_at = now

    async def _wait_while(self, org_id: str, instance_id: str, status: Status, timeout_s: float) -> InstanceView:
        deadline = time.monotonic() + timeout_s
        while True:
            view = await asyncio.to_thread(self._get, org_id, instance_id)
            if view.status != status or time.monotonic() > deadline:
                return view
            await asyncio.sleep(_POLL_S)

    def _overrides(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if config is None else self._runtime.check_overrides(config)

    def _provider_name(self, requested: str) -> str:
        name = self._settings.sandbox_provider if requested == DEFAULT_SANDBOX else requested
        if name not in self._providers:
            supported = ", ".join([DEFAULT_SANDBOX, *self._providers])
            raise BadRequest(f"Unknown sandbox_provider '{requested}'. Supported: {supported}.")
        return name


def _visible(repo: TenantRepository, org_id: str, instance_id: str) -> InstanceRow:
    row = repo.instance(org_id, instance_id)
    if row is None:
        raise NotFound("Instance not found.")
    return row


def running(repo: TenantRepository, org_id: str, instance_id: str) -> InstanceRow:
    """A visible instance whose gateway serves: what chat, files, channels and skills act on (409 otherwise)."""
    row = _visible(repo, org_id, instance_id)
    if row.status != Status.RUNNING or row.gateway_url is None:
        raise InvalidState(f"Instance is {row.status}, not running.")
    return row
