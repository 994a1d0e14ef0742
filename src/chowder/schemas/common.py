"""Wire conventions shared by every schema: UTC timestamps as `datetime.isoformat()` gives them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, PlainSerializer, StrictInt, StringConstraints

from chowder.core.clock import as_utc


def _iso_utc(value: datetime) -> str:
    """Always with microseconds. The common case first: a list page writes a hundred of these."""
    if value.tzinfo is UTC and value.microsecond:
        return value.isoformat()
    return as_utc(value).isoformat(timespec="microseconds")


Timestamp = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Extension (spend caps): a monthly token budget, a whole number of tokens; null in a request means no cap.
MonthlyTokenLimit = Annotated[
    StrictInt,
    Field(ge=1, le=10**15, description="Extension. Tokens (input + output) per calendar month (UTC); null: no cap."),
]
