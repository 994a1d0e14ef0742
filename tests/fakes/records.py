"""Orgs and instances for tests that work below the API, written through the repositories as records (no use case
in between: the test says exactly what state it starts from)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.ids import hash_key, new_id, new_token
from chowder.domain.models import Desired, Status, Tier
from chowder.domain.ports.instances import InstanceRecord
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord


def new_org(name: str = "Test Co", **fields: Any) -> OrgRecord:
    now = utcnow()
    org = OrgRecord(
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
    return replace(org, **fields)


def new_instance(org_id: str, box: SecretBox, sandbox_provider: str = "fake", **fields: Any) -> InstanceRecord:
    """Freshly created (provisioning, to run) unless `fields` say otherwise."""
    now = utcnow()
    model_token = new_token()
    instance = InstanceRecord(
        id=new_id(),
        organization_id=org_id,
        name="agent",
        status=Status.PROVISIONING,
        desired_state=Desired.RUNNING,
        model_provider="anthropic",
        sandbox_provider=sandbox_provider,
        sandbox_id=None,
        gateway_url=None,
        openclaw_version="v1",
        openclaw_release="2026.1.1",
        openclaw_config=None,
        region=None,
        egress="open",
        error_message=None,
        gateway_token_enc=box.encrypt(new_token()),
        model_token_hash=hash_key(model_token),
        model_token_enc=box.encrypt(model_token),
        status_changed_at=now,
        observed_at=None,
        replace_gateway=False,
        torn_down=False,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    return replace(instance, **fields)


def add_instance(uow: UnitOfWork, box: SecretBox, **fields: Any) -> InstanceRecord:
    """A new org holding one instance (see `new_instance`)."""
    org = new_org()
    uow.orgs.add(org)
    instance = new_instance(org.id, box, **fields)
    uow.instances.add(instance)
    return instance
