"""The warm pool: gateways booted before anyone asks, so a create claims one and runs within a second.

`CHOWDER_WARM_POOL_SIZE` members per sandbox provider, on the default OpenClaw release. A member is a row before
its sandbox exists (so the orphan sweep, which keeps every recorded sandbox, never eats one) and is booted like an
instance: its own sandbox id, uid, disk and network, the default model provider, egress `none` (it serves nobody
yet), and credentials minted for it alone. A claim, in one transaction, removes the row and records the member's
sandbox and credentials on the instance, which thereby becomes their only holder; the instance's egress and config
(through the live config path) are applied next. The sandbox keeps the labels it was created with (the pool's):
the database, not labels, says which sandbox is whose. A member that fails any of that is destroyed and the
instance boots cold into a fresh sandbox under the same id.

Each engine fills the pool one member at a time, in the background and within the engine's boot slots; slots are
unique per (provider, release), so replicas never overfill it. A member left booting by a worker that died is
destroyed once it is older than a boot can take.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import ChowderError
from chowder.core.ids import hash_key, new_id, new_token, sandbox_id_for
from chowder.core.instance_defaults import DEFAULT_MODEL_PROVIDER, DEFAULT_VERSION
from chowder.core.settings import Settings
from chowder.domain import lifecycle
from chowder.domain.gateway_boot import launch_gateway
from chowder.domain.lifecycle import Event
from chowder.domain.model_calls import warm_up_session
from chowder.domain.models import Status
from chowder.domain.ports.instances import InstanceChanges
from chowder.domain.ports.runtime import AgentLauncher, GatewayAccess, InstanceRuntimeSpec
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.warm_pool import WarmGateway, WarmState
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder.warm_pool")

POOL_LABEL = "warm_pool"
_RETRY_AFTER_FAILURE_S = 30.0
_READY_CHECK_S = 5.0
# Under the idle time after which OpenClaw's first turn is slow again (between 30 and 90 s here).
KEEP_WARM_S = 25.0


@dataclass(frozen=True, slots=True)
class Claimed:
    """The instance's spec on the member's sandbox and credentials; its endpoint, or None when the member failed
    to take the instance over (its sandbox is gone: boot cold under the same id)."""

    spec: InstanceRuntimeSpec
    endpoint: str | None


class _InstanceChanged(Exception):
    """The instance left the status the claim expected: the transaction rolls back, the member stays pooled."""


def _add(member: WarmGateway, uow: UnitOfWork) -> bool:
    return uow.warm_pool.add(member)


class WarmPool:
    def __init__(
        self,
        transactions: Transactions,
        box: SecretBox,
        settings: Settings,
        runtime: AgentLauncher,
        owner: str,
        boots: asyncio.Semaphore,
    ) -> None:
        self._tx = transactions
        self._box = box
        self._settings = settings
        self._runtime = runtime
        self._owner = owner
        self._boots = boots
        self._filler: asyncio.Task[None] | None = None
        self._resume_at = 0.0
        self._warmed: dict[str, float] = {}  # our ready members' last warm-up, by sandbox id

    @property
    def release(self) -> str:
        return self._runtime.resolve_version(DEFAULT_VERSION)

    def serves(self, provider: str, release: str) -> bool:
        return (
            self._settings.warm_pool_size > 0
            and provider == self._settings.sandbox_provider
            and (release == self.release)
        )

    def refill(self, provider: SandboxProvider) -> None:
        """Start filling in the background unless a fill runs already (or waits out a failure)."""
        loop = asyncio.get_running_loop()
        if self._settings.warm_pool_size == 0 or self._filler is not None or loop.time() < self._resume_at:
            return
        self._filler = asyncio.create_task(self._fill(provider))
        self._filler.add_done_callback(self._filled)

    async def close(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            await asyncio.gather(self._filler, return_exceptions=True)

    async def claim(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, status: Status) -> Claimed | None:
        """A ready member made the instance's, or None when the pool has none ready (or the instance changed)."""
        try:
            member = await self._tx(lambda uow: self._take(uow, spec, status))
        except _InstanceChanged:
            return None
        if member is None:
            return None
        claimed = replace(
            spec,
            sandbox_id=member.sandbox_id,
            gateway_token=self._box.decrypt(member.gateway_token_enc),
            model_token=self._box.decrypt(member.model_token_enc),
        )
        try:
            endpoint = await self._runtime.wait_ready(provider, member.sandbox_id, _READY_CHECK_S)
            await provider.set_egress(member.sandbox_id, spec.egress)
            booted_as = self._member_spec(member.sandbox_id, claimed.gateway_token, claimed.model_token)
            await self._runtime.take_over(provider, GatewayAccess(endpoint, claimed.gateway_token), booted_as, claimed)
        except ChowderError as exc:
            log.warning("warm gateway %s failed to take instance %s over: %s", member.sandbox_id, spec.instance_id, exc)
            await provider.destroy(member.sandbox_id)
            return Claimed(claimed, None)
        log.info("instance %s: claimed warm gateway %s", spec.instance_id, member.sandbox_id)
        return Claimed(claimed, endpoint)

    def _take(self, uow: UnitOfWork, spec: InstanceRuntimeSpec, status: Status) -> WarmGateway | None:
        member = uow.warm_pool.take(self._settings.sandbox_provider, spec.release)
        if member is None:
            return None
        claimed = InstanceChanges(
            sandbox_id=member.sandbox_id,
            gateway_token_enc=member.gateway_token_enc,
            model_token_hash=member.model_token_hash,
            model_token_enc=member.model_token_enc,
        )
        if not lifecycle.apply(uow.instances, spec.organization_id, spec.instance_id, status, Event.LAUNCHING, claimed):
            raise _InstanceChanged
        return member

    def _filled(self, task: asyncio.Task[None]) -> None:
        self._filler = None
        if not task.cancelled() and task.exception() is not None:
            log.error("warm pool fill failed; trying again later", exc_info=task.exception())
            self._resume_at = asyncio.get_running_loop().time() + _RETRY_AFTER_FAILURE_S

    async def _fill(self, provider: SandboxProvider) -> None:
        """Boot members into free slots, one at a time, until the pool is full."""
        name, release, size = self._settings.sandbox_provider, self.release, self._settings.warm_pool_size
        while True:
            members = await self._tx(lambda uow: uow.warm_pool.members(name, release))
            members = [member for member in members if not await self._dropped_if_stale(provider, member)]
            free = sorted(set(range(size)) - {member.slot for member in members})
            if not free:
                await self._keep_warm(members)
                return
            gateway_token, model_token = new_token(), new_token()
            member = WarmGateway(
                sandbox_id=sandbox_id_for(new_id()),
                provider=name,
                release=release,
                slot=free[0],
                state=WarmState.BOOTING,
                owner=self._owner,
                created_at=utcnow(),
                gateway_token_enc=self._box.encrypt(gateway_token),
                model_token_hash=hash_key(model_token),
                model_token_enc=self._box.encrypt(model_token),
            )
            if await self._tx(partial(_add, member)):
                await self._boot(provider, member, self._member_spec(member.sandbox_id, gateway_token, model_token))

    async def _boot(self, provider: SandboxProvider, member: WarmGateway, spec: InstanceRuntimeSpec) -> None:
        """A member that fails to boot (or whose boot is cancelled by a shutdown) leaves nothing behind."""
        try:
            async with self._boots, asyncio.timeout(self._settings.provision_timeout_s):
                await self._runtime.ensure_installed(spec.release)
                sandbox = replace(
                    self._runtime.sandbox_spec(spec), labels={POOL_LABEL: f"{member.provider}/{spec.release}"}
                )
                info = await provider.create(sandbox)
                timeout_s = self._settings.provision_timeout_s
                endpoint = await launch_gateway(
                    self._runtime, provider, info, spec, first_boot=True, timeout_s=timeout_s
                )
                await self._runtime.remember_good_config(provider, member.sandbox_id)
        except BaseException:
            await self._discard(provider, member)
            raise
        await self._tx(lambda uow: uow.warm_pool.mark_ready(member.sandbox_id, endpoint))
        self._warmed[member.sandbox_id] = asyncio.get_running_loop().time()
        log.info("warm gateway %s ready at %s (slot %d)", member.sandbox_id, endpoint, member.slot)

    async def _keep_warm(self, members: list[WarmGateway]) -> None:
        """A warm-up turn again on each ready member of ours not warmed for a while: OpenClaw closes what a turn
        opened (its agent database, its workers) after a minute or so without one, and the first turn after that
        pays seconds to open them again; measured, not a guess (see `bench/targets.py`)."""
        now = asyncio.get_running_loop().time()
        self._warmed = {member.sandbox_id: self._warmed.get(member.sandbox_id, now) for member in members}
        for member in members:
            if member.state != WarmState.READY or member.owner != self._owner or member.gateway_url is None:
                continue
            if now - self._warmed[member.sandbox_id] < KEEP_WARM_S:
                continue
            self._warmed[member.sandbox_id] = now
            token = self._box.decrypt(member.gateway_token_enc)
            spec = self._member_spec(member.sandbox_id, token, self._box.decrypt(member.model_token_enc))
            try:
                await self._runtime.warm_up(
                    GatewayAccess(member.gateway_url, token), spec, warm_up_session(spec.instance_id)
                )
            except ChowderError as exc:
                log.warning("warm gateway %s: keep-warm turn failed: %s", member.sandbox_id, exc.detail)

    async def _dropped_if_stale(self, provider: SandboxProvider, member: WarmGateway) -> bool:
        """A member still booting long after any boot could have ended was left by a worker that died."""
        limit = timedelta(seconds=2 * self._settings.provision_timeout_s)
        if member.state != WarmState.BOOTING or utcnow() - member.created_at < limit:
            return False
        log.warning("warm gateway %s was left booting by %s; discarding it", member.sandbox_id, member.owner)
        await self._discard(provider, member)
        return True

    async def _discard(self, provider: SandboxProvider, member: WarmGateway) -> None:
        await provider.destroy(member.sandbox_id)
        await self._tx(lambda uow: uow.warm_pool.remove(member.sandbox_id))

    def _member_spec(self, sandbox_id: str, gateway_token: str, model_token: str) -> InstanceRuntimeSpec:
        """What a member boots as: no instance or org yet (its warm-up session is its sandbox's), the default model
        provider and release, no overrides, no egress."""
        return InstanceRuntimeSpec(
            instance_id=sandbox_id,
            organization_id="",
            sandbox_id=sandbox_id,
            model_provider=DEFAULT_MODEL_PROVIDER,
            release=self.release,
            overrides={},
            egress="none",
            gateway_token=gateway_token,
            model_token=model_token,
        )
