"""Wire conventions shared by every schema: UTC timestamps as `datetime.isoformat()` gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, PlainSerializer, StrictInt, StringConstraints

from chowder.core.clock import as_utc

Timestamp = Annotated[
    datetime, PlainSerializer(lambda v: as_utc(v).isoformat(timespec="microseconds"), return_type=str)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Extension (spend caps): a monthly token budget, a whole number of tokens; null in a request means no cap.
MonthlyTokenLimit = Annotated[
    StrictInt,
    Field(ge=1, le=10**15, description="Extension. Tokens (input + output) per calendar month (UTC); null: no cap."),
]
