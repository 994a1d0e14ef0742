"""An instance as the agent runtime sees it: what the engine boots and the use cases configure."""

from __future__ import annotations

from chowder.core.crypto import SecretBox
from chowder.core.ids import sandbox_id_of
from chowder.domain.ports.instances import InstanceRecord
from chowder.domain.ports.runtime import InstanceRuntimeSpec


def runtime_spec_of(instance: InstanceRecord, box: SecretBox) -> InstanceRuntimeSpec:
    """Secrets decrypted: keep the result in memory only."""
    return InstanceRuntimeSpec(
        instance_id=instance.id,
        organization_id=instance.organization_id,
        sandbox_id=sandbox_id_of(instance.id, instance.sandbox_id),
        model_provider=instance.model_provider,
        release=instance.openclaw_release,
        overrides=instance.openclaw_config or {},
        egress=instance.egress,
        gateway_token=box.decrypt(instance.gateway_token_enc),
        model_token=box.decrypt(instance.model_token_enc),
    )
