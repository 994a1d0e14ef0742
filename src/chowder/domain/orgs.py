"""Organizations: signup, reading, renaming and their encrypted model keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import NotFound
from chowder.core.ids import KEY_DISPLAY_CHARS, ORG_KEY_PREFIX, hash_key, new_api_key, new_id
from chowder.core.model_providers import ModelProvider
from chowder.domain.models import TIER_LIMITS, KeyKind, Tier
from chowder.domain.quantity_sync import mark_quantity_due
from chowder.persistence.repositories import TenantRepository
from chowder.persistence.tables import ApiKeyRow, ModelKeyRow, OrganizationRow


@dataclass(frozen=True, slots=True)
class OrganizationView:
    id: str
    name: str
    model_providers: list[str]
    subscription_tier: str
    instance_limit: int | None
    instance_count: int
    created_at: datetime
    updated_at: datetime
    stripe_customer_id: str | None
    stripe_subscription_id: str | None


def signup(repo: TenantRepository, name: str) -> tuple[OrganizationView, str]:
    """Create an org on the free tier with its first org key; the raw key is returned only here."""
    now = utcnow()
    org = OrganizationRow(id=new_id(), name=name, subscription_tier=Tier.SHRIMP, created_at=now, updated_at=now)
    repo.add(org)
    raw = new_api_key(ORG_KEY_PREFIX)
    repo.add(
        ApiKeyRow(
            id=new_id(),
            organization_id=org.id,
            kind=KeyKind.ORG,
            name="organization",
            key_hash=hash_key(raw),
            key_prefix=raw[:KEY_DISPLAY_CHARS],
            created_at=now,
        )
    )
    return view(repo, org.id), raw


def view(repo: TenantRepository, org_id: str) -> OrganizationView:
    org = repo.org(org_id)
    if org is None:
        raise NotFound("Organization not found.")
    return OrganizationView(
        id=org.id,
        name=org.name,
        model_providers=[key.provider for key in repo.model_keys(org_id)],
        subscription_tier=org.subscription_tier,
        instance_limit=TIER_LIMITS[Tier(org.subscription_tier)],
        instance_count=repo.live_instance_count(org_id),
        created_at=org.created_at,
        updated_at=org.updated_at,
        stripe_customer_id=org.stripe_customer_id,
        stripe_subscription_id=org.stripe_subscription_id,
    )


def update(
    repo: TenantRepository,
    box: SecretBox,
    org_id: str,
    name: str | None,
    model_api_keys: Mapping[ModelProvider, str] | None,
) -> OrganizationView:
    """Rename and merge model keys: a provider not mentioned is kept, an empty string deletes it."""
    org = repo.org(org_id)
    if org is None:
        raise NotFound("Organization not found.")
    now = utcnow()
    if name is not None:
        org.name = name
    for provider, secret in (model_api_keys or {}).items():
        existing = repo.model_key(org_id, provider)
        if not secret:
            if existing is not None:
                repo.delete(existing)
        elif existing is None:
            repo.add(
                ModelKeyRow(organization_id=org_id, provider=provider, ciphertext=box.encrypt(secret), updated_at=now)
            )
        else:
            existing.ciphertext = box.encrypt(secret)
            existing.updated_at = now
    org.updated_at = now
    repo.session.flush()
    return view(repo, org_id)


def set_tier(repo: TenantRepository, org_id: str, tier: Tier) -> OrganizationView:
    """The operator's override (whale is granted this way, never bought). Existing instances are kept even
    above the new limit; only new ones are refused. Locked like a create, so a racing create sees either tier."""
    org = repo.lock_org(org_id)
    if org is None:
        raise NotFound("Organization not found.")
    org.subscription_tier = tier
    org.updated_at = utcnow()
    mark_quantity_due(org)  # back on a paid tier, the subscription is billed for today's count
    return view(repo, org_id)
