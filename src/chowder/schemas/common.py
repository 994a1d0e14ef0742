"""Wire conventions shared by every schema: UTC timestamps as `datetime.isoformat()` gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, StringConstraints

from chowder.core.clock import as_utc

Timestamp = Annotated[
    datetime, PlainSerializer(lambda v: as_utc(v).isoformat(timespec="microseconds"), return_type=str)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
