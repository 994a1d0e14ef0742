"""SQL repository of the warm pool (the port in `domain/ports/warm_pool.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chowder.domain.ports.warm_pool import WarmGateway, WarmState
from chowder.persistence.records import changed_one, columns_of, record_of
from chowder.persistence.tables import WarmGatewayRow

_TAKE_ATTEMPTS = 3  # ready members raced for by other claims before giving up (the caller boots cold)


class SqlWarmPoolRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def members(self, provider: str, release: str) -> list[WarmGateway]:
        rows = self._session.scalars(
            select(WarmGatewayRow)
            .where(WarmGatewayRow.provider == provider, WarmGatewayRow.release == release)
            .execution_options(populate_existing=True)
        )
        return [record_of(WarmGateway, row) for row in rows]

    def add(self, member: WarmGateway) -> bool:
        try:
            with self._session.begin_nested():
                self._session.add(WarmGatewayRow(**columns_of(member)))
        except IntegrityError:
            return False
        return True

    def mark_ready(self, sandbox_id: str, gateway_url: str) -> None:
        self._session.execute(
            update(WarmGatewayRow)
            .where(WarmGatewayRow.sandbox_id == sandbox_id)
            .values(state=WarmState.READY, gateway_url=gateway_url)
            .execution_options(synchronize_session=False)
        )

    def remove(self, sandbox_id: str) -> None:
        self._delete(sandbox_id)

    def take(self, provider: str, release: str) -> WarmGateway | None:
        """The oldest ready member first; a DELETE that finds it gone lost a race, so the next one is tried."""
        ready = self._session.scalars(
            select(WarmGatewayRow)
            .where(
                WarmGatewayRow.provider == provider,
                WarmGatewayRow.release == release,
                WarmGatewayRow.state == WarmState.READY,
            )
            .order_by(WarmGatewayRow.created_at)
            .limit(_TAKE_ATTEMPTS)
            .execution_options(populate_existing=True)
        )
        for row in list(ready):
            member = record_of(WarmGateway, row)
            if self._delete(member.sandbox_id, WarmGatewayRow.state == WarmState.READY):
                return member
        return None

    def by_model_token(self, token_hash: str) -> WarmGateway | None:
        row = self._session.scalars(
            select(WarmGatewayRow).where(WarmGatewayRow.model_token_hash == token_hash)
        ).one_or_none()
        return None if row is None else record_of(WarmGateway, row)

    def sandbox_ids(self, provider: str) -> set[str]:
        return set(self._session.scalars(select(WarmGatewayRow.sandbox_id).where(WarmGatewayRow.provider == provider)))

    def _delete(self, sandbox_id: str, *conditions: Any) -> bool:
        return changed_one(
            self._session, delete(WarmGatewayRow).where(WarmGatewayRow.sandbox_id == sandbox_id, *conditions)
        )
