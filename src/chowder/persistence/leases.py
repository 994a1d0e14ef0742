"""Lease columns: a time until which one process owns some work (an instance's reconcile, an org's Stripe push)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import InstrumentedAttribute


def lapsed(lease_until: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """A lease column that is free: never taken, or expired."""
    return or_(lease_until.is_(None), lease_until < now)
