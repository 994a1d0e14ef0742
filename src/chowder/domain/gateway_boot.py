"""Launching a gateway in a created sandbox, the one way the engine and the warm pool both do it."""

from __future__ import annotations

import logging

from chowder.core.errors import ChowderError
from chowder.domain.model_calls import warm_up_session
from chowder.domain.ports.runtime import AgentLauncher, GatewayAccess, InstanceRuntimeSpec
from chowder.sandbox.base import SandboxInfo, SandboxProvider

log = logging.getLogger("chowder.engine")


async def launch_gateway(
    runtime: AgentLauncher,
    provider: SandboxProvider,
    info: SandboxInfo,
    spec: InstanceRuntimeSpec,
    *,
    first_boot: bool,
    timeout_s: float,
    checked: bool = False,
) -> str:
    """Lay out, start and wait for the gateway, then run its warm-up turn (the agent's lazy first-run work, done
    before anyone waits on it; answered by the control plane, never by a model provider). Its endpoint. `checked`:
    the warm-up turn is a health check that must pass (an upgrade's new release), not only logged when it fails."""
    launch = await runtime.prepare(provider, info, spec, first_boot)
    await provider.start(spec.sandbox_id, launch)
    endpoint = await runtime.wait_ready(provider, spec.sandbox_id, timeout_s)
    try:
        await runtime.warm_up(GatewayAccess(endpoint, spec.gateway_token), spec, warm_up_session(spec.instance_id))
    except ChowderError as exc:
        if checked:
            raise
        log.warning("sandbox %s: warm-up turn failed (its first turn will be slower): %s", spec.sandbox_id, exc.detail)
    return endpoint
