"""The fleet as a scrape reports it: instances by status and provider, and the engine's queue, read from the
database (so any replica reports the whole fleet) into the process's gauges."""

from __future__ import annotations

from chowder.core.clock import utcnow
from chowder.core.metrics import Metrics
from chowder.domain.ports.storage import Transactions, UnitOfWork


class FleetCensus:
    def __init__(self, transactions: Transactions, metrics: Metrics) -> None:
        self._tx = transactions
        self._metrics = metrics

    async def refresh(self) -> None:
        counts, queue_depth = await self._tx(_read)
        self._metrics.census(counts, queue_depth)


def _read(uow: UnitOfWork) -> tuple[dict[tuple[str, str], int], int]:
    return uow.engine.census(), uow.engine.queue_depth(utcnow())
