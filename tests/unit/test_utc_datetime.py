"""Timestamps read back from SQLite are aware and in UTC, whichever way their text was written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, insert, select, text

from chowder.persistence.tables import UTCDateTime

_metadata = MetaData()
_times = Table("times", _metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    _metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_a_time_written_through_the_type_reads_back_as_the_same_instant_in_utc(engine: Engine) -> None:
    written = datetime(2026, 12, 6, 9, 30, 0, 250000, tzinfo=timezone(timedelta(hours=5)))
    with engine.begin() as connection:
        connection.execute(insert(_times).values(id=1, at=written))
        read = connection.execute(select(_times.c.at)).scalar_one()
    assert read == written
    assert read.tzinfo is UTC
    assert read == datetime(2026, 12, 6, 4, 30, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-06 04:09:58.123456", datetime(2026, 12, 6, 4, 9, 58, 123456, tzinfo=UTC)),
        ("2026-12-06 04:09:58", datetime(2026, 12, 6, 4, 9, 58, tzinfo=UTC)),
        ("2026-12-06 04:09:58.123456+00:00", datetime(2026, 12, 6, 4, 9, 58, 123456, tzinfo=UTC)),
        ("2026-12-06T09:09:58+05:00", datetime(2026, 12, 6, 4, 9, 58, tzinfo=UTC)),
        ("2026-12-06T01:09:58-03:00", datetime(2026, 12, 6, 4, 9, 58, tzinfo=UTC)),
        ("2026-12-06T04:09:58Z", datetime(2026, 12, 6, 4, 9, 58, tzinfo=UTC)),
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC)),
    ],
)
def test_text_in_any_iso_form_reads_as_utc(engine: Engine, stored: str, expected: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO times (id, at) VALUES (1, :at)"), {"at": stored})
        read = connection.execute(select(_times.c.at)).scalar_one()
    assert read == expected
    assert read.tzinfo is UTC


def test_null_reads_as_none(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(_times).values(id=1, at=None))
        assert connection.execute(select(_times.c.at)).scalar_one() is None
