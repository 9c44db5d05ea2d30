"""`nocctl alert …`: look at alerts and work them."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, pass_app, show_options
from nocctl.cli.moves import report_moves
from nocctl.cli.prefs import pref_listing_options
from nocctl.lifecycle import ALERT_ACTIVE, ALERT_STATUSES, RESOLVED, SUPPRESSED
from nocctl.vocabulary import SEVERITIES

WATCH_SECONDS = 5.0  # `alert list --watch` without a number
DEFAULT_LIMIT = 100


@click.group()
def alert():
    """List and inspect alerts."""


@alert.command("list")
@click.option("--status", multiple=True, type=click.Choice(ALERT_STATUSES, case_sensitive=False),
              help="Only these statuses (repeatable; replaces your status preference; snoozed alerts included).")
@click.option("--active", is_flag=True,
              help=f"Every active alert (not {RESOLVED}: {SUPPRESSED} and snoozed ones too; replaces your status "
                   "preference).")
@click.option("--all", "every", is_flag=True,
              help="Every alert, whatever its status, and no limit unless --limit is given.")
@click.option("--severity", multiple=True, type=click.Choice(SEVERITIES, case_sensitive=False),
              help="Only these severities (repeatable; replaces your severity preference).")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this alert type (repeatable).")
@click.option("--client", metavar="CODE", help="Only this client's alerts (replaces your client preference).")
@click.option("--site", metavar="CODE", help="Only this site's alerts (replaces your client preference).")
@click.option("--label", "labels", multiple=True, metavar="MATCHER",
              help="Only alerts whose label (Alertmanager's, else a metadata key) matches: KEY=VALUE, KEY!=VALUE, "
                   "KEY=~REGEX, KEY!~REGEX (regex over the whole value; repeatable, all must match).")
@click.option("--entity", metavar="[TYPE:]ID", help="Only alerts about this entity (entity_id, or entity_type:id).")
@click.option("--since", metavar="TIME", help="First seen at or after TIME: ISO 8601 or relative (2h, 30m, 1d).")
@click.option("--until", metavar="TIME", help="First seen before TIME (the same forms).")
@click.option("--days", type=click.IntRange(1), help="First seen in the last N days.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="At most N alerts  [default: 100; every one with --all]")
@click.option("--watch", type=click.FloatRange(min=0, min_open=True), is_flag=False, flag_value=WATCH_SECONDS,
              default=None, metavar="[SECONDS]",
              help=f"Refresh every SECONDS (default {WATCH_SECONDS:g}): in place on a terminal (Ctrl-C quits); "
                   "piped, one JSON array a line per refresh (NDJSON snapshots); with -o, the file is replaced.")
@click.option("--count", type=click.IntRange(min=1), hidden=True,
              help="With --watch: stop after N refreshes (for tests and scripts).")
@pref_listing_options
@pass_app
def list_(app: App, status, active, every, severity, types, client, site, labels, entity, since, until, days, limit,
          watch, count, no_prefs, fmt, out):
    """List the alerts in front of the NOC, worst first.

    By default the active alerts that need someone: NEW, ACKNOWLEDGED, ASSIGNED and
    ESCALATED — not those a maintenance window holds (SUPPRESSED: see --status
    SUPPRESSED or --active) and not snoozed ones (`alert snooze`). Ordered by severity
    (CRITICAL first), then age (the longest waiting first), then id. When --limit cuts
    the listing, stderr says so (`showing 100 of 127`); JSON stays one plain array.

    Your preferences (`nocctl prefs`) fill in what you do not give: the client (unless
    --client or --site), severities, statuses (unless --status, --active or --all) and
    the format. With a time zone preference, table output shows times in that zone with
    their offset; json, ndjson and csv always give times in UTC (ISO 8601, Z).
    --no-prefs ignores the preferences.

    \b
    nocctl alert list
    nocctl alert list --severity critical --since 2h
    nocctl alert list --label 'instance=~edge-.*' --label env=prod
    nocctl alert list --entity instance:edge-1:9100 --all
    nocctl alert list --watch 10
    """
    from nocctl import clock
    from nocctl.services import alerts

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    if every and (status or active):
        raise click.UsageError("give --all or --status/--active, not both")
    matchers = [alerts.Matcher.parse(text) for text in labels]
    statuses = list(status) or (list(ALERT_ACTIVE) if active else [])
    shown_limit = limit if limit is not None else (None if every else DEFAULT_LIMIT)

    def fetch():
        session = app.session()
        try:
            return alerts.list_alerts(session, app.caller(), statuses, severity, types, client, site, start, end,
                                      shown_limit, use_prefs=not no_prefs, every_status=every, labels=matchers,
                                      entity=entity)
        finally:
            session.close()

    if watch is None:
        _show_listing(app, fetch(), fmt, out, every)
        return
    _watch_listing(app, fetch, fmt, out, every, watch, count)


def _cut_notice(app: App, listing, every: bool) -> None:
    """Say on stderr that the limit cut the listing (silent with -q, like every note)."""
    from nocctl.cli.common import note

    if listing.total is not None and app.verbosity >= 0:
        remedy = "--limit N" if every else "--limit N, or --all"
        note(f"nocctl: showing {len(listing.rows)} of {listing.total} ({remedy})")


def _show_listing(app: App, listing, fmt, out, every: bool) -> None:
    import sys

    from nocctl.cli.prefs import emit_listing
    from nocctl.services import alerts

    emit_listing(app, listing.rows, listing.applied, alerts.TABLE_COLUMNS, alerts.LIST_COLUMNS, fmt, out)
    sys.stdout.flush()  # the notice after the listing, also on a terminal
    _cut_notice(app, listing, every)


def _watch_listing(app: App, fetch, fmt, out, every: bool, seconds: float, count: int | None) -> None:
    """`--watch`: the loop of `status --watch`. On a terminal: cleared and redrawn. To a
    file (-o): replaced by each listing. Piped: NDJSON snapshots — each refresh one line,
    the listing as one JSON array (the objects of --format json), whatever --format says;
    the cut notice on stderr when it changes."""
    from nocctl import output
    from nocctl.cli import status as status_cli
    from nocctl.cli.prefs import note_filters
    from nocctl.services import alerts

    to_file = bool(out) and out != "-"
    on_terminal = not to_file and status_cli._isatty()
    if on_terminal or to_file:
        status_cli.watch_loop(fetch, lambda listing: _show_listing(app, listing, fmt, out, every), seconds, count,
                         on_terminal)
        return
    said: list[tuple[int, int | None]] = []

    def snapshot(listing) -> None:
        if not said:
            note_filters(app, listing.applied)
        rows = [{c: row.get(c) for c in alerts.LIST_COLUMNS} for row in listing.rows]
        output.write(output.to_json(rows, indent=None) + "\n")
        cut = (len(listing.rows), listing.total)
        if listing.total is not None and (not said or said[-1] != cut):
            import sys

            sys.stdout.flush()
            _cut_notice(app, listing, every)
        said.append(cut)

    status_cli.watch_loop(fetch, snapshot, seconds, count, on_terminal=False)


@alert.command()
@click.argument("alert_id", type=int)
@show_options
@pass_app
def show(app: App, alert_id, fmt):
    """Show one alert: every field, its metadata, its correlation group and its timeline.

    The timeline, oldest first: first seen; duplicates (how many, the last one, the
    severity now — the severity of each occurrence is not kept); every acknowledge,
    assign, escalate, note, resolve, suppress, unsuppress, snooze and unsnooze with who,
    when and the note; notifications queued, sent or failed; the maintenance window or
    the snooze that held it; the other alerts of its correlation group; its incidents.
    --format json gives the same as a `timeline` array of {at, event, actor, details}."""
    from nocctl.services import alert_timeline, alerts

    data = alerts.show_alert(app.session(), app.caller(), alert_id)
    if fmt == "json":
        emit_object(data, fmt)
        return
    group = data.pop("correlation_group")
    timeline = data.pop("timeline")
    emit_object(data, fmt)
    if group:
        click.echo(f"\ncorrelation group ({len(group)} alerts)")
        emit_rows(group, ("id", "alert_type", "severity", "status", "site", "first_seen_at"), "table")
    click.echo(f"\ntimeline ({len(timeline)} events)")
    emit_rows([{**event, "details": alert_timeline.summary(event["details"])} for event in timeline],
              ("at", "event", "actor", "details"), "table")


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
    3: not found, 77: not permitted — the first failure's code). One acknowledged
    already is reported `already acknowledged` (exit 0, nothing written)."""
    _run(ctx, "acknowledge", ids, keys, fmt, note=note)


@alert.command("assign")
@click.argument("alert_id", type=int)
@click.argument("username")
@click.option("--note", help="A note for the audit log.")
@_FORMAT
@click.pass_context
def assign(ctx, alert_id, username, note, fmt):
    """Assign an alert to a person (any active state but SUPPRESSED; needs noc:assign_incidents).
    Assigned to that person already: `already assigned`, exit 0."""
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
    """Resolve alerts (any active state). Sets time_to_resolve; the key may open a new alert.
    One resolved already: `already resolved`, exit 0."""
    _run(ctx, "resolve", ids, keys, fmt, note=note)


@alert.command("note")
@click.argument("alert_id", type=int)
@click.argument("text")
@_FORMAT
@click.pass_context
def note(ctx, alert_id, text, fmt):
    """Add a note to an alert (any status; needs noc:ack_alerts over it). Audited (NOTE) and
    shown in `alert show`'s timeline."""
    from nocctl.services import alerts

    app: App = ctx.obj
    report_moves(ctx, [alerts.note(app.session(write=True), app.caller(), alert_id, text)], "alert", fmt)


@alert.command("snooze")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--for", "for_", metavar="DURATION", help="Snooze this long from now: 30m, 2h, 1d.")
@click.option("--until", metavar="TIME", help="Snooze until TIME (ISO 8601 with offset, or +30m, +2h).")
@click.option("--note", help="Why, for the audit log and the timeline.")
@_FORMAT
@click.pass_context
def snooze(ctx, ids, for_, until, note, fmt):
    """Snooze alerts: out of the active `alert list` and the escalation pass until then;
    they come back by themselves (needs noc:ack_alerts). A duplicate that arrives CRITICAL
    wakes a snoozed alert early. Snoozing again moves the end. A RESOLVED alert: exit 4."""
    from nocctl import clock
    from nocctl.services import alerts

    if (for_ is None) == (until is None):
        raise click.UsageError("give --for DURATION or --until TIME")
    app: App = ctx.obj
    seconds = clock.parse_duration(for_, "--for") if for_ is not None else None
    end = clock.parse_instant(until, "--until") if until is not None else None
    report_moves(ctx, alerts.snooze(app.session(write=True), app.caller(), ids, end, seconds, note), "alert", fmt)


@alert.command("unsnooze")
@click.argument("ids", nargs=-1, type=int, required=True)
@_FORMAT
@click.pass_context
def unsnooze(ctx, ids, fmt):
    """Wake snoozed alerts now (needs noc:ack_alerts); one not snoozed: `not snoozed`, exit 0."""
    from nocctl.services import alerts

    app: App = ctx.obj
    report_moves(ctx, alerts.unsnooze(app.session(write=True), app.caller(), ids), "alert", fmt)


COMMANDS = (alert,)
