"""Rows to records: a statement's columns in the record's order or in any other (with more besides), its enums
read back from their stored values, and a stored value the enum lacks refused as the enum refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import pytest
from sqlalchemy import Column, Connection, MetaData, String, Table, create_engine, select

from chowder.persistence.records import records_of


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, slots=True)
class Thing:
    id: str
    colour: Colour
    name: str | None


_THINGS = Table("things", MetaData(), Column("id", String), Column("colour", String), Column("name", String))


@pytest.fixture
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    _THINGS.metadata.create_all(engine)
    with engine.connect() as connection:
        connection.execute(
            _THINGS.insert(),
            [{"id": "a", "colour": "red", "name": "one"}, {"id": "b", "colour": "blue", "name": None}],
        )
        yield connection
    engine.dispose()


def test_columns_in_the_records_order_or_in_any_other(connection: Connection) -> None:
    expected = [Thing("a", Colour.RED, "one"), Thing("b", Colour.BLUE, None)]
    in_order = select(_THINGS.c.id, _THINGS.c.colour, _THINGS.c.name).order_by(_THINGS.c.id)
    shuffled = select(_THINGS.c.name, _THINGS.c.id, _THINGS.c.colour, _THINGS.c.name.label("more")).order_by(
        _THINGS.c.id
    )
    assert records_of(Thing, connection.execute(in_order)) == expected
    assert records_of(Thing, connection.execute(shuffled)) == expected
    assert records_of(Thing, connection.execute(in_order))[0].colour is Colour.RED


def test_a_stored_value_the_enum_lacks_is_refused(connection: Connection) -> None:
    connection.execute(_THINGS.update().where(_THINGS.c.id == "a").values(colour="green"))
    with pytest.raises(ValueError, match="'green' is not a valid Colour"):
        records_of(Thing, connection.execute(select(_THINGS.c.id, _THINGS.c.colour, _THINGS.c.name)))
