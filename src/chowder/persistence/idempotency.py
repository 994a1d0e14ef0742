"""SQL repository of idempotency keys (the port in `domain/ports/idempotency.py`). A claim is one INSERT: two
requests racing for a key meet at its primary key, and the one that loses reads what the winner wrote."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chowder.domain.ports.idempotency import KeyedRequest, StoredAnswer
from chowder.persistence.records import changed_one
from chowder.persistence.tables import IdempotencyKeyRow


class SqlIdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(
        self, caller: str, key: str, fingerprint: str, lease_until: datetime, expired_before: datetime, now: datetime
    ) -> KeyedRequest | None:
        self._session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < expired_before))
        try:
            with self._session.begin_nested():
                self._session.add(
                    IdempotencyKeyRow(
                        caller=caller, key=key, fingerprint=fingerprint, created_at=now, lease_until=lease_until
                    )
                )
            return None
        except IntegrityError:
            pass
        # Held by a request whose lease ran out (its process died mid-way): taken over, for the same request only.
        abandoned = (IdempotencyKeyRow.status.is_(None), IdempotencyKeyRow.lease_until < now)
        mine = (*_mine(caller, key), IdempotencyKeyRow.fingerprint == fingerprint)
        if changed_one(
            self._session, update(IdempotencyKeyRow).where(*mine, *abandoned).values(lease_until=lease_until)
        ):
            return None
        row = self._session.scalars(
            select(IdempotencyKeyRow).where(*_mine(caller, key)).execution_options(populate_existing=True)
        ).one()
        if row.status is None:
            return KeyedRequest(row.fingerprint, None)
        headers = [(name, value) for name, value in json.loads(row.headers or "[]")]
        return KeyedRequest(row.fingerprint, StoredAnswer(row.status, headers, row.body or b""))

    def extend(self, caller: str, key: str, lease_until: datetime) -> None:
        self._session.execute(
            update(IdempotencyKeyRow)
            .where(*_mine(caller, key), IdempotencyKeyRow.status.is_(None))
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )

    def answer(self, caller: str, key: str, answer: StoredAnswer) -> None:
        self._session.execute(
            update(IdempotencyKeyRow)
            .where(*_mine(caller, key))
            .values(status=answer.status, headers=json.dumps(answer.headers), body=answer.body)
            .execution_options(synchronize_session=False)
        )

    def release(self, caller: str, key: str) -> None:
        self._session.execute(delete(IdempotencyKeyRow).where(*_mine(caller, key), IdempotencyKeyRow.status.is_(None)))


def _mine(caller: str, key: str) -> tuple[ColumnElement[bool], ...]:
    return (IdempotencyKeyRow.caller == caller, IdempotencyKeyRow.key == key)
