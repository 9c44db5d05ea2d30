"""`nocctl demo`: a fresh database with a realistic organisation, a month of alert traffic and
operational feeds with the snapshot pass run through it, then the weekly report."""
from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from nocctl import private
from nocctl.cli.common import App, note

NEXT_STEPS = (
    "{nocctl}{db} status",
    "{nocctl}{db} status --by site",
    "{nocctl}{db} snapshot list --site GLOBEX-BOM-WH2 --limit 12",
    "{nocctl}{db} alert list --active --severity critical --severity high",
    "{nocctl}{db} alert list --status suppressed",
    "{nocctl}{db} incident list",
    "{nocctl}{db} maintenance list --state all",
    "{nocctl}{db} oncall who --client ACME",
    "{nocctl}{db} report weekly --format html -o report.html",
    "{nocctl}{db} audit verify",
)


def invocation() -> str:
    """How to run this nocctl again from a shell: `nocctl` when that name on PATH is this
    program (run as `python -m nocctl` or in-process: the script installed beside this
    interpreter); else that script's path, or this interpreter's path with `-m nocctl`."""
    found = shutil.which("nocctl")
    found_path = Path(found).resolve() if found else None
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "nocctl" and script.is_file():  # run as the console script
        return "nocctl" if found_path == script.resolve() else shlex.quote(str(script.absolute()))
    beside = Path(sys.executable).parent / "nocctl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return "nocctl" if found_path == beside.resolve() else shlex.quote(str(beside))
    return "nocctl" if found_path is not None else f"{shlex.quote(sys.executable)} -m nocctl"


class _Progress:
    """`demo: day N/M, R records` on a terminal's stderr, redrawn in place; silent when piped."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.shown = 0.0

    def __call__(self, done: int, total: int, records: int) -> None:
        now = time.monotonic()
        if self.enabled and (now - self.shown >= 0.1 or done >= total):
            self.shown = now
            click.echo(f"\rdemo: day {done / 86400:.0f}/{total / 86400:.0f}, {records:,} records ingested",
                       err=True, nl=False)

    def done(self) -> None:
        if self.enabled and self.shown:
            click.echo("\r\033[K", err=True, nl=False)


def _html_path(database_url: str) -> Path:
    """Beside the SQLite file, else in the data directory."""
    from nocctl.config import data_home
    from nocctl.db import sqlite_path

    path = sqlite_path(database_url)
    return (path.parent if path is not None else data_home() / "nocctl") / "demo-weekly.html"


def _global_args(ctx: click.Context, app: App) -> list[str]:
    """The root options that reach this database, tenant and person again."""
    args = ["--db", app.settings.database_url, "--tenant", app.settings.tenant]
    if app.settings.actor:
        args += ["--as", app.settings.actor]
    verbosity = ctx.meta.get("verbosity", 0)
    args += ["-q"] if verbosity < 0 else ["-v"] * verbosity
    log_format = ctx.find_root().params.get("log_format")
    return args + (["--log-format", log_format] if log_format else [])


def _report_available() -> bool:
    from nocctl.cli import cli

    group = cli.commands.get("report")
    return isinstance(group, click.Group) and "weekly" in group.commands


def _nocctl(args: list[str]) -> None:
    """Run a nocctl command line in this process, as if typed (errors propagate)."""
    from nocctl.cli import cli

    with cli.make_context("nocctl", list(args)) as sub:  # parsing consumes the list it is given
        cli.invoke(sub)


def weekly_report(ctx: click.Context, app: App, html: Path) -> bool:
    """The last step: `nocctl report weekly` to the terminal, then as HTML to `html`.
    False when this nocctl has no weekly report."""
    if not _report_available():
        return False
    weekly = _global_args(ctx, app) + ["report", "weekly", "--tz", "Asia/Kolkata"]  # the demo's clients are in India
    _nocctl(weekly)
    _nocctl(weekly + ["--format", "html", "-o", str(html)])
    return True


@click.command()
@click.option("--db", "db_url", metavar="URL",
              help="Database to fill (overrides the global --db); default: the embedded SQLite file.")
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True,
              help="Days of traffic, ending at the clock's now (NOC_NOW).")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Seed of the traffic: the same seed and NOC_NOW give the same data.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the HTML weekly report here  [default: demo-weekly.html beside the database]")
@click.pass_context
def demo(ctx: click.Context, db_url, days, seed, html_path):
    """Fill a fresh database with a realistic NOC month and show the weekly report.

    Migrates the database and makes your login its admin (like `nocctl init`), loads an
    organisation of three clients and twelve sites across India with their people, on-call
    schedules, escalation policies and maintenance windows, then streams --days of alert
    traffic through the real ingest path in simulated time — daily rhythm, noisy sites,
    repeats, correlated bursts, alerts held by maintenance, acknowledgements and
    resolutions with realistic delays — while the escalation pass runs as cron would and
    the NOC shift works the incidents. Beside the alerts it loads the sites' operational
    feeds (tickets, work orders, shifts and check-ins, devices, geofence and security
    events) and runs the snapshot pass every six hours of simulated time, so `nocctl
    status`, `snapshot list` and the derived alerts show the month. Prints the weekly
    report and writes it as HTML.

    \b
    nocctl demo                                   # the embedded SQLite database
    nocctl demo --db sqlite:////tmp/nocctl-demo.db --days 60 --seed 42
    NOC_NOW=2026-03-31T18:00:00+05:30 nocctl demo --db postgresql://noc@db/noc_demo

    The database must hold no data (exit 4 otherwise: the demo never mixes made-up alerts
    into real ones). Notification channels of the config are ignored: the demo pages nobody.
    """
    from nocctl import clock, simulator
    from nocctl.cli.ingest import auto_incidents
    from nocctl.config import mask_url
    from nocctl.errors import Conflict
    from nocctl.services import schema
    from nocctl.services.ingest.pipeline import Options
    from nocctl.services.rbac import os_login

    app: App = ctx.obj
    if db_url:
        settings = replace(app.settings, database_url=db_url, sources={**app.settings.sources, "database_url": "flag"})
        app = App(settings, app.verbosity)
        ctx.call_on_close(app.close)
    where = mask_url(app.settings.database_url)
    caller = app.caller()
    admin = caller.username or os_login()
    engine = app.engine(create=True)
    found = simulator.existing_data(engine, admin)
    if found:
        raise Conflict(f"the database {where} already holds data ({', '.join(found)}); the demo will not mix "
                       "made-up alerts into it",
                       "use --db sqlite:////tmp/nocctl-demo.db or another fresh database")
    schema.upgrade(engine)

    end = clock.now().replace(microsecond=0)
    plan = simulator.Plan(end, days, seed)
    options = Options("native", correlation_window=app.settings.correlation_window, incidents=auto_incidents(app))
    progress = _Progress(sys.stderr.isatty() and app.verbosity >= 0)
    try:
        result = simulator.run(engine, app.settings, caller, admin, plan, options, progress)
    finally:
        progress.done()

    counts = result.ingest
    alerts = counts.get("created", 0) + counts.get("suppressed", 0)
    note(f"demo: {result.records:,} records over {days} day{'s' * (days != 1)} to {clock.isoformat(end)} in "
         f"{result.seconds:.1f}s (seed {seed}): {alerts:,} alerts ({counts.get('suppressed', 0):,} held by "
         f"maintenance), {counts.get('deduplicated', 0):,} duplicates, {counts.get('acknowledged', 0):,} "
         f"acknowledged and {counts.get('resolved', 0):,} resolved by events; {result.escalations:,} escalations "
         f"by the pass and {result.manual_escalations} by hand; {sum(result.incidents_by_status.values()):,} "
         "incidents")
    feeds = result.feed_records
    note(f"demo: {sum(feeds.values()):,} feed records ({', '.join(f'{n:,} {kind}' for kind, n in feeds.items())}); "
         f"{result.snapshot_passes:,} snapshot passes wrote {result.snapshots:,} snapshots and raised "
         f"{result.derived_created:,} derived alerts ({result.derived_resolved:,} resolved since)")

    html = Path(html_path) if html_path else _html_path(app.settings.database_url)
    private.make_dirs(html.parent)  # 0700 when made here; the report itself is 0600 (AtomicFile)
    shown = weekly_report(ctx, app, html)

    db_option = f" --db {shlex.quote(where)}" if app.settings.sources.get("database_url") == "flag" else ""
    nocctl = invocation()
    note(f"demo: database {where} (tenant {app.settings.tenant}, admin {admin})")
    if shown:
        note(f"demo: weekly report as HTML: {html}")
    else:
        note("demo: this nocctl has no `report weekly` yet: no report printed")
    note("demo: try next:")
    for line in NEXT_STEPS:
        note("  " + line.format(nocctl=nocctl, db=db_option))


COMMANDS = (demo,)
