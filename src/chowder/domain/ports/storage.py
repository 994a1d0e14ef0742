"""Storage as the domain sees it: a use case runs its reads and writes in one unit of work, opened in one place
(`Transactions`), and gets plain records back, never database rows or sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from chowder.domain.ports.audit import AuditRepository
from chowder.domain.ports.backups import BackupRepository
from chowder.domain.ports.idempotency import IdempotencyRepository
from chowder.domain.ports.instances import EngineRepository, InstanceReads, InstanceRepository
from chowder.domain.ports.spend import SpendReads, SpendRepository
from chowder.domain.ports.tenancy import KeyRepository, OrgRepository, StripeEventRepository, UsageRepository
from chowder.domain.ports.warm_pool import WarmPoolRepository
from chowder.domain.ports.webhooks import WebhookRepository

T = TypeVar("T")


class Reads(Protocol):
    """What a short read may look up (`Transactions.read`): nothing in it writes."""

    @property
    def instances(self) -> InstanceReads: ...

    @property
    def spend(self) -> SpendReads: ...


class UnitOfWork(Protocol):
    """The repositories of one transaction. Every tenant read and write takes the organization id; the few
    lookups that span tenants by design say so (authentication, the model credential, the engine, Stripe)."""

    @property
    def orgs(self) -> OrgRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def instances(self) -> InstanceRepository: ...

    @property
    def usage(self) -> UsageRepository: ...

    @property
    def stripe_events(self) -> StripeEventRepository: ...

    @property
    def engine(self) -> EngineRepository: ...

    @property
    def warm_pool(self) -> WarmPoolRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def spend(self) -> SpendRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def backups(self) -> BackupRepository: ...


class Transactions(Protocol):
    """Runs `work` in one transaction, off the event loop (database drivers block; `read` excepted): committed when
    it returns, rolled back when it raises, so a use case's writes land together or not at all."""

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T: ...

    async def read(self, work: Callable[[Reads], T]) -> T:
        """A short read: a few indexed lookups, each its own snapshot, no write. Where the database is a local file,
        it may run on the event loop: the lookup costs less than the hop to a thread, which under load waits on
        the GIL."""
        ...
