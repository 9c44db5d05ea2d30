"""Engines and sessions for both backends.

SQLite (embedded default): WAL, a busy timeout and foreign keys on every connection, and
transactions begun by us (`BEGIN` or `BEGIN IMMEDIATE`) rather than by the sqlite3 module,
so SAVEPOINTs work and a pass can take the write lock up front. PostgreSQL: psycopg 3.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nocctl.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Accept the usual spellings; psycopg 3 is the PostgreSQL driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another backend or an in-memory database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def make_engine(url: str, create: bool = False) -> "Engine":
    """An engine for `url`. A SQLite file must exist unless `create` (only `init` and
    `db upgrade` create one), so a typo in --db does not silently start an empty database."""
    from sqlalchemy import create_engine, event

    url = normalise_url(url)
    path = sqlite_path(url)
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise NotFound(f"no database at {path}", "run `nocctl init` to create it, or pass --db")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "cached_statements": 32})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA cache_size=-32768")  # 32 MB: ingest's index inserts stay in memory
            cursor.execute("PRAGMA wal_autocheckpoint=8000")  # fewer, larger checkpoints under ingest
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            # `sqlite_begin="IMMEDIATE"` takes the write lock at the start of the transaction.
            mode = connection.get_execution_options().get("sqlite_begin", "")
            connection.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    if url.startswith("postgresql"):
        return create_engine(url, connect_args={"connect_timeout": 10})
    return create_engine(url)


def make_sessionmaker(engine: "Engine") -> "sessionmaker[Session]":
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)
