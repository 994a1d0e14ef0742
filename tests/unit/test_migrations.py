"""The migrations are the schema's source of truth; the tables the code maps must be exactly what they build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chowder.persistence.db import Database, migrate
from chowder.persistence.tables import Base

pytestmark = pytest.mark.persistence


def test_migrated_schema_matches_the_mapped_tables(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    db.dispose()
    assert differences == [], "a table changed without a migration (or the reverse)"
