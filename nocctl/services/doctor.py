"""`nocctl doctor`: is this install healthy? One check a line, read-only.

Each check is ok, a problem (with the remedy), informational, or unknown (it cannot tell
now: the database is unavailable or locked). Doctor never writes and never creates: a
missing SQLite database is a problem whose remedy is `nocctl init`. It needs what reading
needs: on SQLite, read access to the file (the boundary of DESIGN §3a: whoever can read the
file); on PostgreSQL, a login that may connect and read. No capability is needed except for
the audit chain, which is verified only for a tenant-wide noc:audit_view (otherwise that
line says so and is informational). A pass that has never run is not a problem (a fresh
install is healthy); one whose last run is older than `STALE_AFTER` times its cadence is.
"""
from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nocctl import clock, output, private
from nocctl.config import Settings, mask_secrets, mask_url
from nocctl.errors import BadInput, NocError, NotFound, PermissionDenied, TemporaryFailure, from_database_error

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from nocctl.services.rbac import Caller

OK: Final = "ok"
PROBLEM: Final = "problem"
INFO: Final = "info"
UNKNOWN: Final = "unknown"
STATUSES: Final = (OK, PROBLEM, INFO, UNKNOWN)

#: The cadence of each pass in crontab.example (seconds): snapshot every 5 minutes,
#: escalation every 10, notification every minute, retention daily.
CADENCES: Final[dict[str, int]] = {"snapshot": 300, "escalate": 600, "notify": 60, "retention": 86400}
#: A pass whose last run is older than this many cadences is stale (cron stopped, or every run fails).
STALE_AFTER: Final = 3


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str
    remedy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_status(checks: list[Check]) -> str:
    """PROBLEM when any check found one, else UNKNOWN when one could not tell, else OK."""
    statuses = {check.status for check in checks}
    return PROBLEM if PROBLEM in statuses else UNKNOWN if UNKNOWN in statuses else OK


def _failure(name: str, exc: BaseException) -> Check:
    """A check that raised: a temporary failure is UNKNOWN, anything else a PROBLEM."""
    mapped = exc if isinstance(exc, NocError) else from_database_error(exc)
    if mapped is None:
        raise exc
    status = UNKNOWN if isinstance(mapped, TemporaryFailure) else PROBLEM
    return Check(name, status, mapped.message, mapped.remedy)


def _guarded(name: str, work: Callable[[], Check | list[Check]]) -> list[Check]:
    try:
        found = work()
    except Exception as exc:  # noqa: BLE001 - a database error of any kind is this check's outcome
        return [_failure(name, exc)]
    return found if isinstance(found, list) else [found]


# ---------------------------------------------------------------- config and files

def check_config(settings: Settings) -> Check:
    path = settings.config_path
    if settings.problem is not None:
        return Check("config", PROBLEM, settings.problem.message, settings.problem.remedy)
    if path is None:
        return Check("config", OK, "no config file: the defaults are in force")
    try:  # a value that would stop `ingest` or a pass stops this line too
        settings.check_values()
    except BadInput as exc:
        return Check("config", PROBLEM, exc.message, exc.remedy)
    return Check("config", OK, f"{path}: parses, no unknown keys, every value valid")


def _mode_check(name: str, path: Path, what: str, mode_wanted: int, why: str = "") -> Check:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return Check(name, PROBLEM, f"{what} {path} does not exist")
    except OSError as exc:
        return Check(name, INFO, f"cannot check {what} {path}: {exc.strerror}")
    if mode & private.OTHERS:
        return Check(name, PROBLEM, f"{what} {path}{why} is open to other users (mode {mode:04o})",
                     f"run `chmod {mode_wanted:o} {shlex.quote(str(path))}`")
    return Check(name, OK, f"{what} {path}{why} is private (mode {mode:04o})")


def check_permissions(settings: Settings, sqlite_file: Path | None) -> list[Check]:
    """The SQLite database (and its -wal/-shm files) and its directory, the audit key file,
    the config file when it holds secrets: group or world access is a problem."""
    checks: list[Check] = []
    if sqlite_file is not None and sqlite_file.exists():
        files = [sqlite_file, *(p for p in (Path(f"{sqlite_file}-wal"), Path(f"{sqlite_file}-shm")) if p.exists())]
        found = [_mode_check("database file", path, "the database file", 0o600) for path in files]
        bad = [check for check in found if check.status != OK]
        checks.append(bad[0] if bad else found[0])
        checks.append(_mode_check("database directory", sqlite_file.parent, "the directory", 0o700))
    try:
        key = settings.audit_key_file
    except BadInput as exc:
        checks.append(Check("audit key file", PROBLEM, exc.message, exc.remedy))
    else:
        if key is not None:
            found_key = _mode_check("audit key file", key, "the audit key file", 0o600)
            if found_key.status == PROBLEM and found_key.remedy is None:  # missing
                found_key = Check(found_key.check, PROBLEM, found_key.detail,
                                  f"create it with `nocctl audit keygen {shlex.quote(str(key))}`")
            checks.append(found_key)
    path = settings.config_path
    if path is not None and path.exists() and mask_secrets(settings.file) != settings.file:
        checks.append(_mode_check("config file mode", path, "the config file", 0o600, " (it holds secrets)"))
    return checks


def check_channels(settings: Settings) -> list[Check]:
    """Each notification channel of `[notify]`, as `notify run` would read it."""
    from nocctl.services import notify

    try:
        channels = notify.load_channels(settings)
    except BadInput as exc:
        return [Check("notify channels", PROBLEM, exc.message, exc.remedy)]
    if not channels:
        return [Check("notify channels", INFO, "none configured (notifications are not sent)")]
    return [Check(f"channel {name}", OK, f"{channel.kind} channel configured") for name, channel in channels.items()]


# ---------------------------------------------------------------- database

def _reachable(engine: Engine) -> Check:
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return Check("database", OK, f"{mask_url(engine.url.render_as_string(hide_password=False))} reachable")


def check_schema(engine: Engine) -> Check:
    from nocctl.services import schema

    now, head = schema.current(engine), schema.head()
    if now is None:
        return Check("schema", PROBLEM, "the database has no schema", "run `nocctl init`")
    if now == head:
        return Check("schema", OK, f"at {now} (head)")
    known = {revision.revision for revision in schema.history(engine)}
    if now in known:
        return Check("schema", PROBLEM, f"at {now}, older than this nocctl's {head}", "run `nocctl db upgrade`")
    return Check("schema", PROBLEM, f"at {now}, which this nocctl does not know (its head is {head})",
                 "upgrade nocctl to the version that migrated this database")


def _tenant(engine: Engine, slug: str) -> int:
    from nocctl.db import make_sessionmaker
    from nocctl.services.rbac import tenant_id

    with make_sessionmaker(engine)() as session:
        return tenant_id(session, slug)


def check_locks(engine: Engine) -> Check:
    from nocctl.services import passlock

    held: list[str] = []
    unknown: list[str] = []
    for name in CADENCES:
        state = passlock.held(engine, name)
        if state is None:
            unknown.append(name)
        elif state:
            held.append(name)
    parts = [f"running now: {', '.join(held)}" if held else "no pass is running"]
    if unknown:
        parts.append(f"cannot tell for {', '.join(unknown)}")
    return Check("pass locks", INFO, "; ".join(parts))


def check_passes(engine: Engine, tenant_id: int, now: datetime) -> list[Check]:
    from nocctl.services import passes

    runs = passes.last_runs(engine, tenant_id)
    checks = []
    for name, cadence in CADENCES.items():
        every = clock.format_duration(cadence)
        last = runs.get(name)
        if last is None:
            checks.append(Check(f"pass {name}", INFO, f"never run (cron runs it every {every})"))
            continue
        late = (now - last).total_seconds()
        detail = f"last run {clock.isoformat(last.replace(microsecond=0))}"
        if late > STALE_AFTER * cadence:
            checks.append(Check(f"pass {name}", PROBLEM,
                                f"{detail}, {output.age(last, now)}: overdue (cron runs it every {every})",
                                f"check cron and the pass's log (`nocctl {name} run` by hand shows the error)"))
        else:
            checks.append(Check(f"pass {name}", OK, f"{detail} ({output.age(last, now)}; every {every})"))
    return checks


def check_audit(engine: Engine, caller: Caller) -> Check:
    from nocctl.db import make_sessionmaker
    from nocctl.services import audit

    try:
        with make_sessionmaker(engine)() as session:
            result = audit.verify(session, caller)
    except (PermissionDenied, NotFound) as exc:
        return Check("audit chain", INFO, f"not checked: {exc.message}",
                     "a person with a tenant-wide noc:audit_view sees it checked")
    if not result.intact:
        return Check("audit chain", PROBLEM, f"broken at row {result.first_broken_id}: {result.reason}",
                     "see `nocctl audit verify`; restore the log from a backup and compare")
    rows = result.rows_checked
    return Check("audit chain", OK, f"intact ({rows} {'row' if rows == 1 else 'rows'})")


# ---------------------------------------------------------------- all of them

def diagnose(settings: Settings, caller: Caller, now: datetime | None = None) -> list[Check]:
    """Every check, in order. Those that need the database are UNKNOWN (not checked) when it
    is missing or unavailable, and those that need the current schema when it is not."""
    from nocctl.db import make_engine, sqlite_path

    now = now or clock.now()
    checks = [check_config(settings)]
    sqlite_file = None
    engine = None
    try:
        sqlite_file = sqlite_path(settings.database_url)
        if sqlite_file is not None and not sqlite_file.exists():
            checks.append(Check("database", PROBLEM, f"no database at {sqlite_file}",
                                "run `nocctl init` to create it, or pass --db"))
        else:
            engine = make_engine(settings.database_url)  # never create=True: doctor creates nothing
    except NocError as exc:
        checks.append(_failure("database", exc))
    files = check_permissions(settings, sqlite_file) + check_channels(settings)
    if engine is None:
        return checks + [Check("schema", UNKNOWN, "not checked: no database"), *files,
                         *_not_checked("no database")]
    try:
        return checks + _with_database(engine, settings, caller, now, files)
    finally:
        engine.dispose()


def _not_checked(why: str) -> list[Check]:
    return [Check("passes", UNKNOWN, f"not checked: {why}"), Check("audit chain", UNKNOWN, f"not checked: {why}")]


def _with_database(engine: Engine, settings: Settings, caller: Caller, now: datetime,
                   files: list[Check]) -> list[Check]:
    """The database's checks, with the file and channel checks (`files`) after its schema."""
    checks = _guarded("database", lambda: _reachable(engine))
    if checks[0].status != OK:
        why = "the database cannot be read"
        return checks + [Check("schema", UNKNOWN, f"not checked: {why}"), *files, *_not_checked(why)]
    found = _guarded("schema", lambda: check_schema(engine))
    checks += found + files + _guarded("pass locks", lambda: check_locks(engine))
    if found[0].status != OK:
        return checks + _not_checked("the schema is not current")
    try:
        tenant_id = _tenant(engine, settings.tenant)
    except Exception as exc:  # noqa: BLE001 - as in `_guarded`: a missing tenant or a database error
        return checks + [_failure("tenant", exc)]
    checks.append(Check("tenant", OK, f"{settings.tenant} exists"))
    checks += _guarded("passes", lambda: check_passes(engine, tenant_id, now))
    checks += _guarded("audit chain", lambda: check_audit(engine, caller))
    return checks
