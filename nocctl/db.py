"""Engines and sessions for both backends.

SQLite (embedded default): the file and its directory are created private (0600, 0700:
`nocctl.private`; SQLite gives -wal/-shm the database file's mode), and an existing file
that others may read is warned about once; WAL, a busy timeout and foreign keys on every connection, and
transactions begun by us (`BEGIN` or `BEGIN IMMEDIATE`) rather than by the sqlite3 module,
so SAVEPOINTs work and a pass can take the write lock up front. PostgreSQL: psycopg 3.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nocctl import private
from nocctl.errors import NotFound, bad_database_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


# What `normalise_url` may leave: SQLite through the stdlib module, PostgreSQL through psycopg 3.
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def normalise_url(url: str) -> str:
    """Accept the usual spellings; psycopg 3 is the PostgreSQL driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _shown(url: str) -> str:
    """The URL for a message, password masked; left out when the mask might miss a password
    (no scheme, or an unescaped @ in it)."""
    from nocctl.config import mask_url

    return f" {mask_url(url)!r}" if "://" in url and url.count("@") <= 1 else ""


def parse_url(url: str) -> URL:
    """`url` normalised and parsed, without connecting. Anything but the accepted forms (text
    that is no URL, a bad port, an unknown scheme, a driver nocctl does not use) is a usage
    error (exit 2): neither an internal error nor an outage that cron would retry."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        reason = "" if "://" in url else " (it has no SCHEME://)"
        raise bad_database_url(f"cannot parse the database URL{_shown(url)}{reason}") from exc
    except ValueError as exc:  # SQLAlchemy's int() of the port
        raise bad_database_url(f"cannot parse the database URL{_shown(url)} (its port is not a number)") from exc
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise bad_database_url(f"unsupported database URL{_shown(url)}")
    if parsed.host and "@" in parsed.host:
        raise bad_database_url("cannot parse the database URL (write an @ inside the user or password as %40)")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise bad_database_url(f"cannot parse the database URL{_shown(url)} (port {parsed.port} is out of range)")
    return parsed


def _sqlite_file(parsed: URL) -> Path | None:
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another backend or an in-memory database."""
    return _sqlite_file(parse_url(url))


_warned: set[str] = set()


def warn_if_exposed(path: Path) -> None:
    """One line on stderr, once per file and process, when others may read or write the
    SQLite file (every alert and every person's contact details are in it)."""
    import shlex

    from nocctl.output import line

    mode = private.exposed_mode(path)
    key = str(path.resolve())
    if mode is None or key in _warned:
        return
    _warned.add(key)
    shown = line(str(path))
    sys.stderr.write(f"nocctl: warning: the database {shown} is open to other users (mode {mode:04o}); "
                     f"run `chmod 600 {line(shlex.quote(str(path)))}`\n")


def make_engine(url: str, create: bool = False) -> Engine:
    """An engine for `url` (checked by `parse_url`; no connection is made here). A SQLite
    file must exist unless `create` (only `init` and `db upgrade` create one), so a typo in
    --db does not silently start an empty database."""
    from sqlalchemy import create_engine, event

    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is None:  # each command is its own process: an in-memory database would be lost
            raise bad_database_url(f"the database URL{_shown(url)} names no SQLite file")
        if path.is_dir():
            raise bad_database_url(f"the database URL names a directory ({path}), not a SQLite file")
        if create:
            private.make_dirs(path.parent)
            private.create_empty(path)  # an empty file is an empty database; SQLite would make it 0644
        elif not path.exists():
            raise NotFound(f"no database at {path}", "run `nocctl init` to create it, or pass --db")
        warn_if_exposed(path)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "cached_statements": 32})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA cache_size=-8192")  # 8 MB: as fast as 32 MB at 100k records, 24 MB less memory
            cursor.execute("PRAGMA wal_autocheckpoint=8000")  # fewer, larger checkpoints under ingest
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            # `sqlite_begin="IMMEDIATE"` takes the write lock at the start of the transaction.
            mode = connection.get_execution_options().get("sqlite_begin", "")
            connection.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    # PostgreSQL. A missing database or a server that is down shows at the first connection
    # (`errors.from_database_error`: exit 3 and 75).
    return create_engine(parsed, connect_args={"connect_timeout": 10})


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)
