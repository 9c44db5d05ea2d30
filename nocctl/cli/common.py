"""What every command shares: the application context, output options, rendering helpers.
No SQLAlchemy at import time: `--help` and completion must stay instant."""
from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from nocctl import output
from nocctl.config import Settings

if TYPE_CHECKING:  # the database layer is imported by the commands that use it
    from sqlalchemy.engine import Engine


class App:
    """Per-invocation state, built by the root command from its global options."""

    def __init__(self, settings: Settings, verbosity: int = 0):
        self.settings = settings
        self.verbosity = verbosity
        self._engine: Engine | None = None

    def engine(self, create: bool = False) -> Engine:
        if self._engine is None:
            from nocctl.db import make_engine

            self._engine = make_engine(self.settings.database_url, create=create)
        return self._engine

    def session(self, write: bool = False):
        """A new Session; `write` takes SQLite's write lock when the transaction begins, so
        read-then-write use cases never hit a lock upgrade conflict."""
        from nocctl.db import make_sessionmaker

        engine = self.engine()
        if write:
            engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        return make_sessionmaker(engine)()

    def caller(self):
        """Who runs the command: the real login (from the uid) and, when one is claimed,
        the person to act as (`--as`, NOC_ACTOR, the config's actor: needs noc:impersonate)."""
        from nocctl.services.rbac import Caller

        via = {"flag": "--as", "env": "NOC_ACTOR", "config": "the config's actor"}.get(
            self.settings.sources.get("actor", ""))
        return Caller.from_process(self.settings.tenant, self.settings.actor, via)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(App)


def listing_options(func: Callable) -> Callable:
    """`--format table|json|ndjson|csv` and `-o FILE` for listing commands."""

    @click.option("--format", "fmt", type=click.Choice(output.LIST_FORMATS), default="table",
                  show_default=True, help="Output format.")
    @click.option("-o", "--output", "out", type=click.Path(dir_okay=False, writable=True), default=None,
                  help="Write to FILE instead of stdout.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def show_options(func: Callable) -> Callable:
    """`--format table|json` for commands that show or create one object."""
    return click.option("--format", "fmt", type=click.Choice(output.SHOW_FORMATS), default="table",
                        show_default=True, help="Output format.")(func)


#: `emit_rows(zone=PREFERRED)`: the caller's time zone preference (`nocctl prefs`).
PREFERRED = "preferred"


def emit_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, out: str | None = None,
              zone: str | None = PREFERRED) -> None:
    """Print a listing, or write it to `out` in one step (`output.AtomicFile`): a path that
    cannot be written exits 2, a full disk 75, and neither leaves a file behind (a new
    file is 0600). CSV shown on a terminal has its control characters escaped.

    A table shows times to the second in `zone` (PREFERRED: the caller's preference; None:
    UTC) and, on a terminal, fits its width, colours and shows ages (`table_style`)."""
    style = table_style(out, preferred_zone(rows) if zone == PREFERRED else zone) if fmt == "table" \
        else output.PLAIN_TABLE
    output.write(output.render_rows(rows, columns, fmt, terminal=to_terminal(out), style=style), out)


def table_style(out: str | None = None, zone: str | None = None) -> output.TableStyle:
    """How a table is drawn where it goes, the one place that decides (issue 16): times in
    `zone` everywhere; on a terminal (stdout, not `-o FILE`, not a pipe) fitted to its width
    (COLUMNS honoured), coloured unless NO_COLOR is set, and ages (`12m ago`) against the
    clock's now (NOC_NOW honoured). Pipes and files get the plain, complete table."""
    if not to_terminal(out):
        return output.TableStyle(zone=zone)
    from nocctl import clock, terminal

    return output.TableStyle(zone=zone, width=terminal.width(), colour=terminal.colour_allowed(), now=clock.now())


def preferred_zone(rows: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """The caller's time zone preference, for the times of a table; None (UTC) when unset,
    when no command context is running, or when the rows hold no instant (then no query).
    Read once per invocation. A failure to read it is no reason to fail a listing that has
    its rows already: the times are shown in UTC then."""
    from datetime import datetime

    if not any(isinstance(value, datetime) for row in rows for value in row.values()):
        return None
    context = click.get_current_context(silent=True)
    app = context.find_object(App) if context is not None else None
    if app is None:
        return None
    known = app.__dict__.get("_preferred_zone", PREFERRED)
    if known != PREFERRED:
        return known
    from sqlalchemy.exc import SQLAlchemyError

    from nocctl.errors import NocError
    from nocctl.services import prefs

    try:
        with app.session() as session:
            zone = prefs.show(session, app.caller())["timezone"]
    except (NocError, SQLAlchemyError):
        zone = None
    app.__dict__["_preferred_zone"] = zone
    return zone


def to_terminal(out: str | None = None) -> bool:
    """Whether output (stdout unless `out` names a file) goes to a terminal."""
    import sys

    return (not out or out == "-") and sys.stdout.isatty()


def emit_object(obj: Mapping[str, Any], fmt: str) -> None:
    output.write(output.render_object(obj, fmt))


def note(message: str) -> None:
    """A human remark on stderr (never mixed into data on stdout), on one line: control
    characters of the data in it, newline and tab too, shown escaped (`output.line`)."""
    click.echo(output.line(message), err=True)


def say(message: str, err: bool = False) -> None:
    """A line of text (stdout; stderr with `err`) that carries data (a name, a message):
    shown escaped on one line like a note. Use `click.echo` only for nocctl's own text."""
    click.echo(output.line(message), err=err)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a cron pass: it builds hundreds of
    thousands of short-lived tuples and dicts (none in reference cycles that outlive the
    pass), and each allocation burst would otherwise trigger collections that walk every
    object the imports left (SQLAlchemy's and the models'). Reference counting still frees
    everything; the collector is back on afterwards (tests run many commands in one process)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# New container objects (net of those freed) between two collections of the young
# generation while ingesting; CPython's default is 700.
INGEST_YOUNG_THRESHOLD = 20_000


@contextmanager
def collector_eased() -> Iterator[None]:
    """The cyclic garbage collector eased for an ingest, whose input may not end (so it
    stays on, unlike `collector_paused`). The records a batch keeps alive while it is
    parsed, unpickled and written push the collector's count up by tens of thousands, and
    at the default threshold the full collections that follow walk every object the imports
    left (SQLAlchemy's, the models'): ≈ 1 s of a 100k-record ingest. The objects that exist
    now are frozen, never walked again, and the young generation is collected every
    `INGEST_YOUNG_THRESHOLD` containers, ≈ 25× less often; cycles are still freed (those
    that reach the oldest generation may wait for the end of the run). Call `gc.freeze()`
    again after importing more (the database layer). Restored afterwards (tests run many
    commands in one process); what a caller had frozen itself stays frozen."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        gc.freeze()
        gc.set_threshold(INGEST_YOUNG_THRESHOLD, *threshold[1:])
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen:
            gc.unfreeze()
