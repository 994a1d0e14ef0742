"""Domain vocabulary: tiers, permissions, instance states and the principal making a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    SHRIMP = "shrimp"
    CRAB = "crab"
    LOBSTER = "lobster"
    WHALE = "whale"


TIER_LIMITS: dict[Tier, int | None] = {Tier.SHRIMP: 1, Tier.CRAB: 10, Tier.LOBSTER: 500, Tier.WHALE: None}
# Bought through Stripe, billed per instance; whale is granted by the operator.
PAID_TIERS = (Tier.CRAB, Tier.LOBSTER)


class Permission(StrEnum):
    READ = "read"
    INTERACT = "interact"
    CONFIGURE = "configure"
    FILES = "files"
    CHANNELS = "channels"


class Status(StrEnum):
    """The public lifecycle. `provisioning` covers both a first boot and a start from stopped."""

    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    TERMINATED = "terminated"


class Power(StrEnum):
    """How much of a running instance is held (extension): `awake` serves at once, `frozen` keeps its memory but
    no CPU (cgroup freezer), `asleep` has its gateway stopped (state kept, memory freed). Ours alone, both shown as
    `asleep`: `paged`, frozen with its memory paged out to the host's swap (how a host with swap sleeps: a thaw
    wakes it), and `waking`, an asleep gateway being started again."""

    AWAKE = "awake"
    FROZEN = "frozen"
    ASLEEP = "asleep"
    PAGED = "paged"
    WAKING = "waking"


class Desired(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class KeyKind(StrEnum):
    ORG = "org"
    SCOPED = "scoped"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an org key (all of the org) or a scoped key (its grants only)."""

    organization_id: str
    key_id: str
    kind: KeyKind
    grants: dict[str, frozenset[Permission]] = field(default_factory=dict)

    @property
    def is_org(self) -> bool:
        return self.kind is KeyKind.ORG
