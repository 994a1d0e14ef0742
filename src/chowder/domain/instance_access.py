"""What a caller may act on: an instance of its org that is not deleted (else 404, whether it never existed or
belongs to someone else), and, for chat, files, channels and skills, one whose gateway serves (else 409)."""

from __future__ import annotations

from typing import TypeVar

from chowder.core.errors import InvalidState, NotFound
from chowder.domain.models import Status
from chowder.domain.ports.instances import InstanceRecord

Found = TypeVar("Found")


def visible(instance: Found | None) -> Found:
    if instance is None:
        raise NotFound("Instance not found.")
    return instance


def running(instance: InstanceRecord | None) -> InstanceRecord:
    found = visible(instance)
    if found.status != Status.RUNNING or found.gateway_url is None:
        raise InvalidState(f"Instance is {found.status}, not running.")
    return found
