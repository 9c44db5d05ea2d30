"""`nocctl alert …`: look at alerts and work them."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, pass_app, show_options
from nocctl.cli.moves import report_moves
from nocctl.cli.prefs import pref_listing_options
from nocctl.lifecycle import ALERT_ACTIVE, ALERT_STATUSES, RESOLVED
from nocctl.vocabulary import SEVERITIES


@click.group()
def alert():
    """List and inspect alerts."""


@alert.command("list")
@click.option("--status", multiple=True, type=click.Choice(ALERT_STATUSES, case_sensitive=False),
              help="Only these statuses (repeatable; replaces your status preference).")
@click.option("--active", is_flag=True,
              help=f"Only active alerts (not {RESOLVED}; replaces your status preference).")
@click.option("--severity", multiple=True, type=click.Choice(SEVERITIES, case_sensitive=False),
              help="Only these severities (repeatable; replaces your severity preference).")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this alert type (repeatable).")
@click.option("--client", metavar="CODE", help="Only this client's alerts (replaces your client preference).")
@click.option("--site", metavar="CODE", help="Only this site's alerts (replaces your client preference).")
@click.option("--since", metavar="TIME", help="First seen at or after TIME (ISO 8601 with offset).")
@click.option("--until", metavar="TIME", help="First seen before TIME.")
@click.option("--days", type=click.IntRange(1), help="First seen in the last N days.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many, newest first.")
@pref_listing_options
@pass_app
def list_(app: App, status, active, severity, types, client, site, since, until, days, limit, no_prefs, fmt, out):
    """List the alerts you can see, newest first.

    Your preferences (`nocctl prefs`) fill in what you do not give: the client (unless
    --client or --site), severities, statuses (unless --status or --active) and the
    format. With a time zone preference, table output shows times in that zone with
    their offset; json, ndjson and csv always give times in UTC (ISO 8601, Z).
    --no-prefs ignores the preferences.
    """
    from nocctl import clock
    from nocctl.cli.prefs import emit_listing
    from nocctl.services import alerts

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    statuses = list(status) or (list(ALERT_ACTIVE) if active else [])
    listing = alerts.list_alerts(app.session(), app.caller(), statuses, severity, types, client, site, start, end,
                                 limit, use_prefs=not no_prefs)
    emit_listing(app, listing.rows, listing.applied, alerts.TABLE_COLUMNS, alerts.LIST_COLUMNS, fmt, out)


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


_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
                       help="Output format of the per-alert report.")
_KEYS = click.option("--dedup-key", "keys", multiple=True, metavar="KEY",
                     help="The active alert of this dedup key (repeatable), besides or instead of IDs.")


def _run(ctx: click.Context, action: str, ids, keys, fmt: str, **options) -> None:
    from nocctl.services import alerts

    if not ids and not keys:
        raise click.UsageError("give at least one alert ID or --dedup-key")
    app: App = ctx.obj
    report_moves(ctx, alerts.act(app.session(write=True), app.caller(), action, ids, keys, **options),
                 "alert", fmt)


@alert.command("ack")
@click.argument("ids", nargs=-1, type=int)
@_KEYS
@click.option("--note", help="A note for the audit log.")
@_FORMAT
@click.pass_context
def ack(ctx, ids, keys, note, fmt):
    """Acknowledge alerts (from NEW, ESCALATED or ASSIGNED). Sets time_to_ack.

    Each alert is reported; the others are done when one is refused (exit 4: wrong state,
    3: not found, 77: not permitted — the first failure's code)."""
    _run(ctx, "acknowledge", ids, keys, fmt, note=note)


@alert.command("assign")
@click.argument("alert_id", type=int)
@click.argument("username")
@click.option("--note", help="A note for the audit log.")
@_FORMAT
@click.pass_context
def assign(ctx, alert_id, username, note, fmt):
    """Assign an alert to a person (any active state but SUPPRESSED; needs noc:assign_incidents)."""
    _run(ctx, "assign", (alert_id,), (), fmt, note=note, assignee=username)


@alert.command("escalate")
@click.argument("ids", nargs=-1, type=int)
@_KEYS
@click.option("--to", "escalate_to", metavar="USER", help="The person it is escalated to.")
@click.option("--note", help="A note for the audit log.")
@_FORMAT
@click.pass_context
def escalate(ctx, ids, keys, escalate_to, note, fmt):
    """Escalate alerts one level (from NEW, ACKNOWLEDGED, ASSIGNED or ESCALATED)."""
    _run(ctx, "escalate", ids, keys, fmt, note=note, escalate_to=escalate_to)


@alert.command("resolve")
@click.argument("ids", nargs=-1, type=int)
@_KEYS
@click.option("--note", help="The resolution, kept on the alert.")
@_FORMAT
@click.pass_context
def resolve(ctx, ids, keys, note, fmt):
    """Resolve alerts (any active state). Sets time_to_resolve; the key may open a new alert."""
    _run(ctx, "resolve", ids, keys, fmt, note=note)


COMMANDS = (alert,)
