"""`nocctl status`: the current picture from the latest snapshots."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

import click

from nocctl import output
from nocctl.cli.common import App, listing_options, note, pass_app, table_style

GROUPINGS = ("client", "site", "state", "city")  # as nocctl.services.status.GROUPINGS
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
T = TypeVar("T")

# Table columns per grouping: the place, then what an operator scans for.
_PLACE = {
    "client": ("client", "sites"),
    "site": ("site", "client", "city", "state", "in charge"),
    "state": ("state", "sites"),
    "city": ("city", "state", "sites"),
}
_FIGURES = ("score", "crit", "high", "tickets", "overdue", "wo overdue", "attendance", "missing", "devices off",
            "sync", "maint", "age")


def _table_row(row: dict, by: str) -> dict:
    from nocctl import clock

    place = {"client": row["client"], "site": row["site"], "state": row["state"], "city": row["city"],
             "sites": row["sites"], "in charge": row["officer_in_charge"]}
    if by in ("site",) or (by == "client" and row["sites"] == 0):
        maint = "yes" if row["in_maintenance"] else ""
    else:
        maint = f"{row['sites_in_maintenance']}/{row['sites']}" if row["sites_in_maintenance"] else ""
    health = row["sync_health_score"]
    age = row["snapshot_age_seconds"]  # None: open alerts but no snapshot yet
    return {
        **{k: ("—" if v is None and k in ("state", "city") else v) for k, v in place.items()},
        "score": row["score"],
        "crit": row["alerts_critical"],
        "high": row["alerts_high"],
        "tickets": row["tickets_open"],
        "overdue": row["tickets_overdue"],
        "wo overdue": row["work_orders_overdue"],
        "attendance": f"{row['attendance_present']}/{row['attendance_expected']}",
        "missing": row["attendance_missing"],
        "devices off": f"{row['devices_offline']}/{row['devices_total']}",
        "sync": "" if health is None else f"{health:g}",
        "maint": maint,
        "age": "" if age is None else clock.format_duration(max(age, 0)),
    }


def _render(view, fmt: str, style: output.TableStyle = output.PLAIN_TABLE) -> str:
    """One frame of the view in `fmt` (a table drawn in `style`: fitted and coloured on a terminal)."""
    from nocctl import clock
    from nocctl.services import status as service

    if fmt != "table":
        return output.render_rows(view.rows, service.COLUMNS, fmt)
    scope = output.line(" ".join(f"--{k} {v}" for k, v in view.filters.items()))
    heading = f"status by {view.by} at {clock.isoformat(view.now)}" + (f" ({scope})" if scope else "") \
        + f" · {len(view.rows)} rows, worst first · {snapshot_age(view.rows)}\n"
    if view.no_snapshots and not view.rows:
        return heading + service.NO_SNAPSHOTS + "\n"
    columns = (*_PLACE[view.by], *_FIGURES)
    table = output.render_rows([_table_row(r, view.by) for r in view.rows], columns, "table", style=style)
    return heading + table + (service.NO_SNAPSHOTS + "\n" if view.no_snapshots else "")


def snapshot_age(rows) -> str:
    """How old the metrics are: `alerts now, snapshot 4m ago` (`snapshots 4m to 12m ago`
    when the rows' differ). The open alert counts are always current."""
    from nocctl import clock

    ages = sorted(max(r["snapshot_age_seconds"], 0) for r in rows if r["snapshot_age_seconds"] is not None)
    if not ages:
        return "alerts now, no snapshot"
    if ages[0] == ages[-1]:
        return f"alerts now, snapshot {clock.format_duration(ages[0])} ago"
    return f"alerts now, snapshots {clock.format_duration(ages[0])} to {clock.format_duration(ages[-1])} ago"


def _frame(app: App, by, client, state, city, fmt, out=None) -> tuple[str, bool]:
    from nocctl.services import status as service

    session = app.session()
    try:
        view = service.status(session, app.caller(), by, client, state, city)
    finally:
        session.close()
    return _render(view, fmt, table_style(out)), view.no_snapshots


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _isatty() -> bool:
    return sys.stdout.isatty()


def _emit(text: str, out: str | None) -> None:
    if not out or out == "-":
        output.write(text)
        sys.stdout.flush()
        return
    output.write(text, out)  # atomic: a reader of a watched file never sees half a frame


@click.command()
@click.option("--by", type=click.Choice(GROUPINGS), default="client", show_default=True,
              help="One row per client, site, state or city.")
@click.option("--client", metavar="CODE", help="Only this client's sites.")
@click.option("--state", metavar="STATE", help="Only sites in this state (case-insensitive).")
@click.option("--city", metavar="CITY", help="Only sites in this city (case-insensitive).")
@listing_options
@click.option("--watch", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Refresh every SECONDS: in place on a terminal (Ctrl-C quits), once per interval when piped.")
@click.option("--count", type=click.IntRange(min=1), hidden=True,
              help="With --watch: stop after N refreshes (for tests and scripts).")
@pass_app
def status(app: App, by, client, state, city, fmt, out, watch, count):
    """The current picture: open alerts now, feed metrics from the latest snapshots, worst first.

    Open alerts (crit, high, …) are counted from the alerts themselves, so one opened a
    minute ago shows at once: those in front of the NOC, as `alert list` shows them (not
    SUPPRESSED, not snoozed). The other metrics come from each client's and site's most
    recent snapshot (`nocctl snapshot run` writes them); the heading says how old.
    --by client (the default) shows each client's own totals, or the sum of its sites in
    view when --state/--city narrow it or you see only some of its sites; --by state and
    --by city sum the site snapshots there.

    \b
    Worst first: score = 100 × open CRITICAL alerts + 25 × open HIGH
                         + 10 × overdue tickets + 5 × overdue work orders
                         + 5 × offline devices + 5 × missing attendance
    (ties: more CRITICAL, more HIGH, then by name).

    \b
    Columns: crit/high open alerts; tickets open and overdue; work orders
    overdue; attendance present/expected and missing; devices offline/total;
    sync health (0-100); maint (in maintenance: yes, or sites k/n); age of the
    snapshot (of the oldest one summed). json, ndjson and csv carry every metric.

    \b
    nocctl status
    nocctl status --by state
    nocctl status --by site --client ACME --format json
    nocctl status --by city --state Karnataka --watch 30
    """
    if watch is None:
        text, empty = _frame(app, by, client, state, city, fmt, out)
        if empty and fmt != "table":
            from nocctl.services import status as service

            note(f"nocctl: {service.NO_SNAPSHOTS}")
        _emit(text, out)
        return
    on_terminal = (not out or out == "-") and _isatty()
    watch_loop(lambda: _frame(app, by, client, state, city, fmt, out)[0],
               lambda text: _emit(text, None if on_terminal else out), watch, count, on_terminal)


def watch_loop(fetch: Callable[[], T], show: Callable[[T], None], seconds: float, count: int | None,
               on_terminal: bool) -> None:
    """The refresh loop of every `--watch` (`status`, `alert list`): each `seconds`, fetch
    (the slow part, done before the screen is cleared, so it never stands empty), then show:
    on a terminal after clearing it (a redraw in place), elsewhere one after another.
    Ctrl-C ends it quietly (exit 0: not an error); `count` stops it after N refreshes."""
    shown = 0
    try:
        while True:
            data = fetch()
            if on_terminal:
                output.write(CLEAR)
            show(data)
            sys.stdout.flush()
            shown += 1
            if count is not None and shown >= count:
                return
            _sleep(seconds)
    except KeyboardInterrupt:  # Ctrl-C ends a watch: not an error
        if on_terminal:
            click.echo()


COMMANDS = (status,)
