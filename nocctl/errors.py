"""The error hierarchy. Services raise these; the root command turns them into one line
on stderr and the documented exit code (DESIGN §5)."""
from __future__ import annotations

import enum
import re


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    DATA_ERROR = 65
    TEMPFAIL = 75
    NO_PERMISSION = 77


class NocError(Exception):
    """An error the user can act on. `remedy` is appended to the message when given."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, remedy: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details = details or []  # one line each, printed before the error line

    def __str__(self) -> str:
        return f"{self.message}; {self.remedy}" if self.remedy else self.message


class UsageError(NocError):
    exit_code = ExitCode.USAGE


class NotFound(NocError):
    exit_code = ExitCode.NOT_FOUND


class Conflict(NocError):
    """An invalid state transition, or a change that collides with existing data."""

    exit_code = ExitCode.CONFLICT


class BadInput(NocError):
    exit_code = ExitCode.DATA_ERROR


class TemporaryFailure(NocError):
    """Database down or locked, or another pass holds the lock: safe to retry."""

    exit_code = ExitCode.TEMPFAIL


class PermissionDenied(NocError):
    exit_code = ExitCode.NO_PERMISSION


# The database URLs nocctl accepts (`nocctl.db.parse_url` enforces them).
DATABASE_URL_FORMS = ("sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB"
                      " (postgres:// and postgresql+psycopg:// work too)")


def bad_database_url(message: str) -> UsageError:
    """A database URL that cannot work whatever happens to the server: exit 2, not 75."""
    return UsageError(message, f"use {DATABASE_URL_FORMS}")


_NO_SCHEMA = "the database lacks tables of this nocctl (no schema yet, or an older one)"
_SCHEMA_REMEDY = "run `nocctl db upgrade` (`nocctl init` for a new database)"


_MISSING_DATABASE = re.compile(r'FATAL:\s+database "(.+)" does not exist')

_DBAPI_CLASSES = ("OperationalError", "ProgrammingError", "DataError", "IntegrityError", "InterfaceError",
                  "DisconnectionError", "TimeoutError")


def from_database_error(exc: BaseException) -> NocError | None:
    """Map a driver/SQLAlchemy exception to a NocError, without importing SQLAlchemy."""
    # The DB-API class of the error (psycopg raises subclasses such as UndefinedColumn
    # when the raw connection is used; SQLAlchemy wraps the rest under the same names).
    lineage = [cls.__name__ for cls in type(exc).__mro__]
    name = next((n for n in lineage if n in _DBAPI_CLASSES), lineage[0])
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc) else name
    lowered = text.lower()
    # PostgreSQL's insufficient_privilege (a secured database: no grant, or a row-level
    # security policy refused the row): the login's rights, not a bug.
    if getattr(getattr(exc, "orig", None) or exc, "sqlstate", None) == "42501":
        return PermissionDenied(f"the database refused this login ({text})",
                                "cron passes and feeds run under a service login (`nocctl user db-role USER ROLE"
                                " --service`); a person needs the grant for the command")
    if ("no such column" in lowered or "has no column named" in lowered
            or (name == "ProgrammingError" and "column" in lowered and "does not exist" in lowered)):
        return NotFound("the database schema is older than this nocctl", "run `nocctl db upgrade`")
    # libpq refusing the URL's options before any network traffic: retrying cannot help.
    if name in ("OperationalError", "ProgrammingError") and (
            "invalid connection option" in lowered or lowered.startswith("connection is bad: invalid")):
        return bad_database_url(f"the database URL is not valid ({text.removeprefix('connection is bad: ')})")
    if name == "OperationalError":
        # The server answered, but the URL's database is not there: no retry brings it (exit 3).
        # The whole text is searched: with several hosts psycopg lists every attempt.
        missing = _MISSING_DATABASE.search(str(getattr(exc, "orig", None) or exc))
        if missing:
            import shlex

            database = missing.group(1)
            return NotFound(f'PostgreSQL database "{database}" does not exist',
                            f"create it with `createdb {shlex.quote(database)}` (as a role allowed to create"
                            " databases), then run `nocctl init`")
        if "no such table" in lowered:
            return NotFound(_NO_SCHEMA, _SCHEMA_REMEDY)
        if "locked" in lowered or "busy" in lowered:
            return TemporaryFailure(f"database is locked ({text})", "retry shortly")
        return TemporaryFailure(f"database unavailable ({text})", "check --db / NOC_DATABASE_URL and retry")
    if name == "ProgrammingError" and "does not exist" in text and "relation" in text:
        return NotFound(_NO_SCHEMA, _SCHEMA_REMEDY)
    if name == "DataError":  # e.g. a value longer than its column on PostgreSQL
        return BadInput(f"the database refused a value: {text}")
    if name in ("InterfaceError", "DisconnectionError", "TimeoutError"):
        return TemporaryFailure(f"database unavailable ({text})", "retry shortly")
    return None
