"""The lock a cron pass holds while it runs (DESIGN §6): a second runner of the same pass
exits 75 at once instead of queueing behind the first.

PostgreSQL: a session advisory lock on a connection of its own, so every host of a cluster
sees it and it goes with the connection if the process dies. SQLite: an exclusive `flock`
on a file beside the database — the database is a local file, so every runner is on this
machine, and the kernel drops the lock with the process. (SQLite's own write lock would
also hold the ingests that must go on while a pass delivers notifications.)"""
from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine

from nocctl import private
from nocctl.db import sqlite_path
from nocctl.errors import TemporaryFailure


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for the pass name."""
    return int.from_bytes(hashlib.sha256(f"nocctl:{name}".encode()).digest()[:8], "big", signed=True)


def _busy(name: str) -> TemporaryFailure:
    return TemporaryFailure(f"another `{name}` pass is running",
                            "it will finish on its own; the next run picks up the rest")


@contextmanager
def hold(engine: Engine, name: str) -> Iterator[None]:
    """Hold the lock of pass `name` for the block, or raise TemporaryFailure (exit 75)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _key(name)})
            connection.commit()
            if not got:
                raise _busy(name)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _key(name)})
                connection.commit()
        return
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:  # an in-memory database has one process by construction
        yield
        return
    fd = private.open_file(f"{path}.{name}.lock", os.O_RDWR)  # a new lock file is 0600
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(name) from None
        yield
    finally:
        os.close(fd)  # closing drops the flock


def held(engine: Engine, name: str) -> bool | None:
    """Whether pass `name`'s lock is held now (None: cannot tell), for `nocctl doctor`.
    Looks, never holds it: PostgreSQL's pg_locks (readable by every login); on SQLite a
    non-blocking shared flock of the lock file, released at once (a runner starting in that
    instant exits 75 as if another ran: the next run does its work). No lock file: not held."""
    if engine.dialect.name == "postgresql":
        key = _key(name) & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key is (classid, objid), objsubid 1
        with engine.connect() as connection:
            return bool(connection.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid::text::bigint = :high AND objid::text::bigint = :low"),
                {"high": key >> 32, "low": key & 0xFFFF_FFFF}))
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:
        return False
    try:
        fd = os.open(f"{path}.{name}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the shared lock
    return False
