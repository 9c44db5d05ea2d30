"""`nocctl alert …`: look at alerts."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, pass_app, show_options
from nocctl.vocabulary import ALERT_STATUSES, SEVERITIES


@click.group()
def alert():
    """List and inspect alerts."""


@alert.command("list")
@click.option("--status", multiple=True, type=click.Choice(ALERT_STATUSES, case_sensitive=False),
              help="Only these statuses (repeatable).")
@click.option("--active", is_flag=True, help="Only active alerts (not RESOLVED).")
@click.option("--severity", multiple=True, type=click.Choice(SEVERITIES, case_sensitive=False),
              help="Only these severities (repeatable).")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this alert type (repeatable).")
@click.option("--client", metavar="CODE", help="Only this client's alerts.")
@click.option("--site", metavar="CODE", help="Only this site's alerts.")
@click.option("--since", metavar="TIME", help="First seen at or after TIME (ISO 8601 with offset).")
@click.option("--until", metavar="TIME", help="First seen before TIME.")
@click.option("--days", type=click.IntRange(1), help="First seen in the last N days.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many, newest first.")
@listing_options
@pass_app
def list_(app: App, status, active, severity, types, client, site, since, until, days, limit, fmt, out):
    """List the alerts you can see, newest first."""
    from nocctl import clock
    from nocctl.services import alerts

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    statuses = list(status) or ([s for s in ALERT_STATUSES if s != "RESOLVED"] if active else [])
    rows = alerts.list_alerts(app.session(), app.caller(), statuses, severity, types, client, site, start, end, limit)
    emit_rows(rows, alerts.TABLE_COLUMNS if fmt == "table" else alerts.LIST_COLUMNS, fmt, out)


@alert.command()
@click.argument("alert_id", type=int)
@show_options
@pass_app
def show(app: App, alert_id, fmt):
    """Show one alert: every field, its metadata and its correlation group."""
    from nocctl.services import alerts

    data = alerts.show_alert(app.session(), app.caller(), alert_id)
    if fmt == "json":
        emit_object(data, fmt)
        return
    group = data.pop("correlation_group")
    emit_object(data, fmt)
    if group:
        click.echo(f"\ncorrelation group ({len(group)} alerts)")
        emit_rows(group, ("id", "alert_type", "severity", "status", "site", "first_seen_at"), "table")


COMMANDS = (alert,)
