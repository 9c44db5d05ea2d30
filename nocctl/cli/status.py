"""`nocctl status`: the current picture from the latest snapshots."""
from __future__ import annotations

import sys
import time

import click

from nocctl import output
from nocctl.cli.common import App, listing_options, note, pass_app

GROUPINGS = ("client", "site", "state", "city")  # as nocctl.services.status.GROUPINGS
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen

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
        "age": clock.format_duration(max(row["snapshot_age_seconds"], 0)),
    }


def _render(view, fmt: str) -> str:
    """One frame of the view in `fmt`."""
    from nocctl import clock
    from nocctl.services import status as service

    if fmt != "table":
        return output.render_rows(view.rows, service.COLUMNS, fmt)
    scope = output.line(" ".join(f"--{k} {v}" for k, v in view.filters.items()))
    heading = f"status by {view.by} at {clock.isoformat(view.now)}" + (f" ({scope})" if scope else "") \
        + f" · {len(view.rows)} rows, worst first\n"
    if view.no_snapshots:
        return heading + service.NO_SNAPSHOTS + "\n"
    columns = (*_PLACE[view.by], *_FIGURES)
    return heading + output.render_rows([_table_row(r, view.by) for r in view.rows], columns, "table")


def _frame(app: App, by, client, state, city, fmt) -> tuple[str, bool]:
    from nocctl.services import status as service

    session = app.session()
    try:
        view = service.status(session, app.caller(), by, client, state, city)
    finally:
        session.close()
    return _render(view, fmt), view.no_snapshots


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
    """The current picture from the latest metric snapshots, worst first.

    Each client and site counts with its most recent snapshot (`nocctl snapshot run`
    writes them). --by client (the default) shows each client's own totals, or the sum of
    its sites in view when --state/--city narrow it or you see only some of its sites;
    --by state and --by city sum the site snapshots there.

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
        text, empty = _frame(app, by, client, state, city, fmt)
        if empty and fmt != "table":
            from nocctl.services import status as service

            note(f"nocctl: {service.NO_SNAPSHOTS}")
        _emit(text, out)
        return
    on_terminal = (not out or out == "-") and _isatty()
    shown = 0
    try:
        while True:
            text, empty = _frame(app, by, client, state, city, fmt)
            if on_terminal:
                _emit(CLEAR + text, None)
            else:
                _emit(text, out)
            shown += 1
            if count is not None and shown >= count:
                return
            _sleep(watch)
    except KeyboardInterrupt:  # Ctrl-C ends a watch: not an error
        if on_terminal:
            click.echo()
        return


COMMANDS = (status,)
