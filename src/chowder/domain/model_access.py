"""Who may call a model through the control plane: a live instance's own credential, and only for the
providers its organization holds a key for (any provider when the built-in dev model answers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, Unauthorized
from chowder.core.ids import hash_key
from chowder.persistence.repositories import TenantRepository


@dataclass(frozen=True, slots=True)
class ModelAccess:
    instance_id: str
    organization_id: str
    provider: str
    api_key: str | None = field(repr=False)  # None when no key is needed (the dev model answers)


def resolve(repo: TenantRepository, box: SecretBox, credential: str, provider: str, *, need_key: bool) -> ModelAccess:
    """Raises Unauthorized for an unknown or deleted instance's credential, BadRequest for a missing key
    (unless `need_key` is off, when the org's key is not even read)."""
    instance = repo.instance_by_model_token(hash_key(credential))
    if instance is None:
        raise Unauthorized("Invalid instance credential.")
    if not need_key:
        return ModelAccess(instance.id, instance.organization_id, provider, None)
    key = repo.model_key(instance.organization_id, provider)
    if key is None:
        raise BadRequest(
            f"No API key is configured for model provider '{provider}'. Set one with PATCH /v1/organization."
        )
    return ModelAccess(instance.id, instance.organization_id, provider, box.decrypt(key.ciphertext))
