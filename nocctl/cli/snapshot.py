"""`nocctl snapshot …`: the metric snapshot pass and its snapshots."""
from __future__ import annotations

import json

import click

from nocctl.cli.common import App, collector_paused, emit_object, emit_rows, listing_options, pass_app, show_options


@click.group()
def snapshot():
    """Metric snapshots of every client and site, and the alerts derived from the feeds.

    `nocctl snapshot run` (cron, every 5 minutes) writes, for the window ending at the run
    (aligned to the window size), one snapshot per client and per site: tickets, work
    orders, attendance, devices, geofence and security events, open alerts by severity,
    with the unit's city, state, officer in charge and whether a maintenance window covers
    it. It then raises the derived alerts (SLA_BREACH, TICKET_ESCALATED, WORK_ORDER_OVERDUE,
    DEVICE_OFFLINE, SYNC_DEGRADED, ATTENDANCE_MISSING, ATTENDANCE_ANOMALY) through ingest,
    and resolves those whose condition cleared.
    """


@snapshot.command("run")
@click.option("--now", "now_text", metavar="TIME", help="Run as of TIME: ISO 8601 or relative (2h)  [default: now]")
@click.option("--window", metavar="DURATION",
              help="Window size, e.g. 5m, 15m, 1h  [default: snapshot.window in the config, 5m]")
@click.option("--dry-run", is_flag=True, help="Compute and report, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
def run(app: App, now_text, window, dry_run, as_json):
    """Snapshot the last window; raise and resolve derived alerts.

    The window ends at --now aligned down to the window size (5m: 12:07:30 → [12:00, 12:05)).
    Every tenant, every client and site; runs as the system (no person needed). A window's
    snapshots are written once: running it again changes nothing. A derived alert is sent
    when it is new or would change (severity, message, still suppressed) and resolved when
    its condition clears. A second run while one is going exits 75. One JSON summary line
    goes to stderr.

    \b
    */5 * * * *  nocctl snapshot run
    nocctl snapshot run --now 2026-03-01T12:07:30Z --dry-run --json
    """
    from nocctl import clock, log
    from nocctl.cli.ingest import auto_incidents
    from nocctl.services import snapshot as service

    # Bad input is told in this order: the [snapshot] section (or --window), --now, the correlation window.
    config = app.settings.snapshot_for(window)
    now = clock.parse_instant(now_text, "--now") if now_text else clock.now()
    correlation = app.settings.correlation_window
    logger = log.get()

    def on_reject(tenant: str, reject) -> None:
        logger.warning("derived alert refused by ingest", tenant=tenant, reason=reject.reason, record=reject.raw)

    with collector_paused():
        summary = service.run(app.engine(), config, app.caller(), now, dry_run, correlation, auto_incidents(app),
                              on_reject)
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    logger.info("snapshot summary", now=clock.isoformat(now), **summary.as_dict())


@snapshot.command("list")
@click.option("--client", metavar="CODE", help="Only this client's snapshots (its own and its sites').")
@click.option("--site", metavar="CODE", help="Only this site's snapshots.")
@click.option("--since", metavar="TIME", help="Windows ending at or after TIME: ISO 8601 or relative (2h, 30m, 1d).")
@click.option("--until", metavar="TIME", help="Windows ending before TIME (the same forms).")
@click.option("--days", type=click.IntRange(1), help="Windows ending in the last N days.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many, newest window first.")
@listing_options
@pass_app
def list_(app: App, client, site, since, until, days, limit, fmt, out):
    """List the snapshots you can see, newest window first.

    A client's own snapshot needs a view grant on the client (or tenant-wide); a site's, on
    the site or its client. The table shows the headline figures; json, ndjson and csv give
    every metric (`metrics`, an object; csv: its JSON text).
    """
    from nocctl import clock
    from nocctl.services import snapshot as service

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    rows = service.list_snapshots(app.session(), app.caller(), client, site, start, end, limit)
    columns = service.TABLE_COLUMNS if fmt == "table" else service.LIST_COLUMNS
    emit_rows(rows, columns, fmt, out)


@snapshot.command("show")
@click.argument("snapshot_id", type=int)
@show_options
@pass_app
def show(app: App, snapshot_id, fmt):
    """Show one snapshot: its dimensions and every metric."""
    from nocctl.services import snapshot as service

    data = service.show_snapshot(app.session(), app.caller(), snapshot_id)
    if fmt == "json":
        emit_object(data, fmt)
        return
    metrics = data.pop("metrics") or {}
    emit_object({**data, **metrics}, fmt)


COMMANDS = (snapshot,)
