"""Engine, sessions and migrations. One engine per app; one session per use case."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic_core import from_json
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, for_reads: bool = False) -> Engine:
    """SQLite gets WAL, a busy timeout, foreign keys and a pool as large as the threads that use it; PostgreSQL
    uses psycopg 3. With `for_reads`, statements commit themselves (a read is one round trip to a server, without
    BEGIN and COMMIT) and a server's connections are not pinged before each use (a round trip too): a read that
    finds its connection dead is retried instead (`SqlTransactions.read`). JSON columns are parsed by pydantic's
    parser, ~10 times the standard library's on an instance's config (0.07 vs 0.9 us: of a listed page, 50)."""
    options: dict[str, Any] = {"json_deserializer": from_json}
    if for_reads:
        options["isolation_level"] = "AUTOCOMMIT"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        # A connection per thread that may hold one at once (the event loop's default executor runs every
        # transaction, and has up to 32 threads): past the default pool of 5, each transaction opened and closed
        # a connection of its own, its PRAGMAs included (seen in profiles under load).
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=32, max_overflow=16, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=not for_reads, pool_size=10, max_overflow=20, **options)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database; None for a server's database or one in memory (a process's own)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run on every start."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """Owns the engine and hands out sessions, each committed on success and rolled back on error."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = make_engine(url, for_reads=True)
        self._kept = threading.local()
        self._all_kept: list[Connection] = []

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def read_connection(self) -> Connection:
        """For reads only: each statement is its own snapshot and commits itself, so nothing groups writes."""
        return self._read_engine.connect()

    def kept_read_connection(self) -> Connection:
        """This thread's read connection, kept open between reads: for SQLite's reads on the event loop, where
        taking a connection from the pool and giving it back cost as much as the read itself (40 of 95 us)."""
        kept: Connection | None = getattr(self._kept, "connection", None)
        if kept is None or kept.invalidated or kept.closed:
            if kept is not None:  # dead: the list holds only what dispose() must close
                self._all_kept.remove(kept)
                kept.close()
            kept = self._kept.connection = self._read_engine.connect()
            self._all_kept.append(kept)
        return kept

    def dispose(self) -> None:
        for kept in self._all_kept:
            kept.close()
        self._all_kept.clear()
        self.engine.dispose()
        self._read_engine.dispose()
