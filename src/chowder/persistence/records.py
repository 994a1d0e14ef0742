"""Rows to records and back: the only place that knows both shapes."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import CursorResult, Delete, Executable, Result, Update
from sqlalchemy.orm import Session

from chowder.domain.models import Permission
from chowder.domain.ports.tenancy import Grant
from chowder.persistence.tables import KeyGrantRow

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Record = TypeVar("Record", bound="DataclassInstance")


class Executes(Protocol):
    """A session or a bare connection, as far as a Core statement's read needs one."""

    def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None, /) -> Result[Any]: ...


def record_of(record_type: type[Record], row: object) -> Record:
    """The row's columns of the record's field names, as the record declares them: a column the record types as an
    enum (a status, a tier, a key kind) is read back into it from the string stored."""
    values = {}
    for name, enum in _fields(record_type).items():
        value = getattr(row, name)
        values[name] = enum(value) if enum is not None and value is not None else value
    return record_type(**values)


def records_of(record_type: type[Record], rows: Result[Any]) -> list[Record]:
    """Each row of a Core statement's result as a record (as `record_of`), its columns found by position once for
    the result: reading them off each row by name cost a third of reading a page of 50 instances (3.2 -> 2.1 ms)."""
    keys = list(rows.keys())
    plan = [(name, keys.index(name), enum) for name, enum in _fields(record_type).items()]
    return [
        record_type(**{name: row[i] if enum is None or row[i] is None else enum(row[i]) for name, i, enum in plan})
        for row in rows.all()
    ]


@functools.cache
def _fields(record_type: type[DataclassInstance]) -> dict[str, type[Enum] | None]:
    hints = typing.get_type_hints(record_type)
    return {
        field.name: hints[field.name]
        if isinstance(hints[field.name], type) and issubclass(hints[field.name], Enum)
        else None
        for field in dataclasses.fields(record_type)
    }


def columns_of(record: DataclassInstance) -> dict[str, Any]:
    """A record's fields as column values (enums are str subclasses and store as their values)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def copy_onto(row: object, record: DataclassInstance) -> None:
    """Writes a record's fields back onto the row it was read from (the id never changes)."""
    for name, value in columns_of(record).items():
        if name != "id":
            setattr(row, name, value)


def grant_of(row: KeyGrantRow) -> Grant:
    return Grant(row.instance_id, tuple(Permission(p) for p in row.permissions))


def changed_one(session: Session, statement: Update | Delete) -> bool:
    """Runs an UPDATE or DELETE on the database alone (the session's copies are refreshed at their next read);
    True when it changed exactly one row (a compare-and-set that won)."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return typing.cast("CursorResult[Any]", result).rowcount == 1
