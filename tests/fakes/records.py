"""Orgs and instances for tests that work below the API, written through the repositories as records (no use case
in between: the test says exactly what state it starts from)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chowder.core.crypto import SecretBox
from chowder.domain.instance_views import CreateRequest, new_instance_record
from chowder.domain.orgs import new_org_record
from chowder.domain.ports.instances import InstanceRecord
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import OrgRecord


def new_org(name: str = "Test Co", **fields: Any) -> OrgRecord:
    """Freshly signed up unless `fields` say otherwise."""
    return replace(new_org_record(name), **fields)


def new_instance(org_id: str, box: SecretBox, sandbox_provider: str = "fake", **fields: Any) -> InstanceRecord:
    """Freshly created (provisioning, to run) unless `fields` say otherwise."""
    request = CreateRequest("agent", "anthropic", sandbox_provider, "v1", None, None)
    return replace(new_instance_record(org_id, request, sandbox_provider, "2026.1.1", None, box, None), **fields)


def add_instance(uow: UnitOfWork, box: SecretBox, **fields: Any) -> InstanceRecord:
    """A new org holding one instance (see `new_instance`)."""
    org = new_org()
    uow.orgs.add(org)
    instance = new_instance(org.id, box, **fields)
    uow.instances.add(instance)
    return instance
