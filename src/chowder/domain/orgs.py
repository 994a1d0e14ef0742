"""Organizations: signup, reading, renaming and their encrypted model keys; the operator's listing and tier
override (`chowder admin`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, NotFound
from chowder.core.ids import new_id
from chowder.core.model_providers import ModelProvider
from chowder.domain import spend
from chowder.domain.audit import audit_entry
from chowder.domain.keys import mint
from chowder.domain.models import TIER_LIMITS, KeyKind, Tier
from chowder.domain.ports.instances import KEEP, Keep
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord
from chowder.domain.quantity_sync import with_quantity_due


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
    # Spend caps: the org's cap (None: none) and its tokens this calendar month (UTC).
    monthly_token_limit: int | None
    monthly_tokens_used: int


class Organizations:
    """The organization use cases of the API, each one transaction."""

    def __init__(self, tx: Transactions, box: SecretBox) -> None:
        self._tx = tx
        self._box = box

    async def signup(self, name: str) -> tuple[OrganizationView, str]:
        """Create an org on the free tier with its first org key; the raw key is returned only here."""

        def create(uow: UnitOfWork) -> tuple[OrganizationView, str]:
            org = new_org_record(name)
            uow.orgs.add(org)
            key, raw = mint(uow, org.id, KeyKind.ORG, "organization", None, ())
            uow.audit.add(audit_entry(org.id, "organization.signup", target_id=key.id, status_code=201))
            return view(uow, org.id), raw

        return await self._tx(create)

    async def get(self, org_id: str) -> OrganizationView:
        return await self._tx(lambda uow: view(uow, org_id))

    async def update(
        self,
        org_id: str,
        name: str | None,
        model_api_keys: Mapping[ModelProvider, str] | None,
        monthly_token_limit: int | None | Keep = KEEP,
    ) -> OrganizationView:
        """Rename, merge model keys (a provider not mentioned is kept, an empty string deletes it) and set the
        monthly token cap (None lifts it)."""
        ciphertexts = {
            provider: self._box.encrypt(key) if key else None for provider, key in (model_api_keys or {}).items()
        }

        def update(uow: UnitOfWork) -> OrganizationView:
            org = _existing(uow.orgs.get(org_id))
            now = utcnow()
            for provider, ciphertext in ciphertexts.items():
                uow.orgs.set_model_key(org_id, provider, ciphertext, now)
            uow.orgs.save(replace(org, name=org.name if name is None else name, updated_at=now))
            if monthly_token_limit is not KEEP:
                spend.set_limit(uow, org_id, None, monthly_token_limit)
            return view(uow, org_id)

        return await self._tx(update)


def new_org_record(name: str) -> OrgRecord:
    """A new org as signup stores it: on the free tier, with no billing account yet."""
    now = utcnow()
    return OrgRecord(
        id=new_id(),
        name=name,
        subscription_tier=Tier.SHRIMP,
        stripe_customer_id=None,
        stripe_subscription_id=None,
        stripe_quantity_due=False,
        stripe_quantity_lease_until=None,
        stripe_event_at=None,
        created_at=now,
        updated_at=now,
    )


def view(uow: UnitOfWork, org_id: str) -> OrganizationView:
    """The org as its owner and the operator see it. Raises NotFound."""
    org = _existing(uow.orgs.get(org_id))
    cap = spend.caps_now(uow, org_id).organization
    return OrganizationView(
        id=org.id,
        name=org.name,
        model_providers=uow.orgs.model_providers(org_id),
        subscription_tier=org.subscription_tier,
        instance_limit=TIER_LIMITS[org.subscription_tier],
        instance_count=uow.instances.count_live(org_id),
        created_at=org.created_at,
        updated_at=org.updated_at,
        stripe_customer_id=org.stripe_customer_id,
        stripe_subscription_id=org.stripe_subscription_id,
        monthly_token_limit=cap.limit,
        monthly_tokens_used=cap.used,
    )


def every_org(uow: UnitOfWork) -> list[OrganizationView]:
    """The operator's listing, oldest first; never reachable from the API."""
    return [view(uow, org_id) for org_id in uow.orgs.ids()]


def set_tier(uow: UnitOfWork, org_id: str, tier: Tier) -> OrganizationView:
    """The operator's override (whale is granted this way, never bought). Existing instances are kept even
    above the new limit; only new ones are refused. Locked like a create, so a racing create sees either tier.
    Raises NotFound."""
    org = _existing(uow.orgs.lock(org_id))
    # Back on a paid tier, the subscription is billed for today's count.
    uow.orgs.save(with_quantity_due(replace(org, subscription_tier=tier, updated_at=utcnow())))
    return view(uow, org_id)


def required_model_key(uow: UnitOfWork, org_id: str, provider: str) -> str:
    """The org's key for `provider`, encrypted. Raises BadRequest when it holds none, saying how to set one."""
    ciphertext = uow.orgs.model_key(org_id, provider)
    if ciphertext is None:
        raise BadRequest(
            f"No API key is configured for model provider '{provider}'. Set one with PATCH /v1/organization."
        )
    return ciphertext


def _existing(org: OrgRecord | None) -> OrgRecord:
    if org is None:
        raise NotFound("Organization not found.")
    return org
