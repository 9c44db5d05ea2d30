"""`nocctl incident …`: open, work and close incidents."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, pass_app, show_options
from nocctl.cli.moves import report_moves
from nocctl.cli.prefs import pref_listing_options
from nocctl.lifecycle import ACKNOWLEDGED, CLOSED, IN_PROGRESS, INCIDENT_OPEN, INCIDENT_STATUSES, NEW, RESOLVED
from nocctl.vocabulary import SEVERITIES


@click.group()
def incident():
    """Incidents: alerts wrapped with an SLA target, worked to closure."""


@incident.command()
@click.option("--title", required=True, help="What is happening, in a line.")
@click.option("--alert", "alert_ids", type=int, multiple=True, metavar="ID", help="Alert to include (repeatable).")
@click.option("--severity", type=click.Choice(SEVERITIES, case_sensitive=False),
              help="Default: the most severe of its alerts.")
@click.option("--client", metavar="CODE", help="Client, when no alert says it.")
@click.option("--site", metavar="CODE", help="Site, when no alert says it.")
@click.option("--runbook", metavar="URL", help="Runbook link.")
@click.option("--ticket", metavar="REF", help="Ticket reference.")
@click.option("--work-order", metavar="REF", help="Work-order reference.")
@show_options
@pass_app
def create(app: App, title, alert_ids, severity, client, site, runbook, ticket, work_order, fmt):
    """Open an incident; its SLA target is now plus the SLA of its severity (config `sla`)."""
    from nocctl.services import incidents

    made = incidents.create(app.session(write=True), app.caller(), title, list(alert_ids), severity, runbook, ticket,
                            work_order, client, site, app.settings.sla)
    emit_object(made, "json") if fmt == "json" else click.echo(made["id"])


@incident.command("list")
@click.option("--status", multiple=True, type=click.Choice(INCIDENT_STATUSES, case_sensitive=False),
              help="Only these statuses (repeatable).")
@click.option("--open", "open_only", is_flag=True, help=f"Only incidents not {RESOLVED} or {CLOSED}.")
@click.option("--severity", multiple=True, type=click.Choice(SEVERITIES, case_sensitive=False),
              help="Only these severities (repeatable; replaces your severity preference).")
@click.option("--client", metavar="CODE", help="Only this client's incidents (replaces your client preference).")
@click.option("--since", metavar="TIME", help="Created at or after TIME: ISO 8601 or relative (2h, 30m, 1d).")
@click.option("--until", metavar="TIME", help="Created before TIME (the same forms).")
@click.option("--days", type=click.IntRange(1), help="Created in the last N days.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many, newest first.")
@pref_listing_options
@pass_app
def list_(app: App, status, open_only, severity, client, since, until, days, limit, no_prefs, fmt, out):
    """List the incidents you can see, newest first.

    Your client, severity, format and time-zone preferences apply as for `alert list`
    (table output in your time zone; json, ndjson and csv always in UTC)."""
    from nocctl import clock
    from nocctl.cli.prefs import emit_listing
    from nocctl.services import incidents

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    statuses = list(status) or (list(INCIDENT_OPEN) if open_only else [])
    rows, applied = incidents.list_incidents(app.session(), app.caller(), statuses, severity, client, start, end,
                                             limit, use_prefs=not no_prefs)
    emit_listing(app, rows, applied, incidents.TABLE_COLUMNS, incidents.LIST_COLUMNS, fmt, out)


@incident.command()
@click.argument("incident_id", type=int)
@show_options
@pass_app
def show(app: App, incident_id, fmt):
    """Show one incident with its alerts."""
    from nocctl.services import incidents

    data = incidents.show(app.session(), app.caller(), incident_id)
    if fmt == "json":
        emit_object(data, fmt)
        return
    linked = data.pop("linked_alerts")
    emit_object(data, fmt)
    click.echo(f"\nalerts ({len(linked)})")
    emit_rows(linked, ("id", "alert_type", "severity", "status", "site", "first_seen_at"), "table")


def _move(action: str, summary: str):
    @click.argument("ids", nargs=-1, type=int, required=True)
    @click.option("--note", help="A note for the audit log (resolve: the resolution).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
                  help="Output format of the per-incident report.")
    @click.pass_context
    def command(ctx, ids, note, fmt):
        from nocctl.services import incidents

        app: App = ctx.obj
        verb = "acknowledge" if action == "ack" else action
        report_moves(ctx, incidents.act(app.session(write=True), app.caller(), verb, ids, note=note),
                     "incident", fmt)

    command.__doc__ = summary
    return incident.command(action)(command)


for _name, _doc in (("ack", f"Acknowledge incidents ({NEW} → {ACKNOWLEDGED})."),
                    ("start", f"Start work on incidents (→ {IN_PROGRESS})."),
                    ("resolve", f"Resolve incidents (→ {RESOLVED}; time_to_resolve from creation)."),
                    ("reopen", f"Reopen resolved incidents ({RESOLVED} → {IN_PROGRESS})."),
                    ("close", f"Close incidents (→ {CLOSED}, final).")):
    _move(_name, _doc)


@incident.command()
@click.argument("incident_id", type=int)
@click.argument("username")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.pass_context
def assign(ctx, incident_id, username, fmt):
    """Assign an incident to a person (needs noc:assign_incidents)."""
    from nocctl.services import incidents

    app: App = ctx.obj
    report_moves(ctx, incidents.act(app.session(write=True), app.caller(), "assign", [incident_id],
                                    assignee=username), "incident", fmt)


@incident.command("add-alert")
@click.argument("incident_id", type=int)
@click.argument("alert_ids", nargs=-1, type=int, required=True)
@show_options
@pass_app
def add_alert(app: App, incident_id, alert_ids, fmt):
    """Link alerts to an incident."""
    from nocctl.services import incidents

    result = incidents.add_alerts(app.session(write=True), app.caller(), incident_id, list(alert_ids))
    if fmt == "json":
        emit_object(result, fmt)
    else:
        click.echo(f"incident {incident_id}: linked {', '.join(map(str, result['linked'])) or 'nothing new'}")


COMMANDS = (incident,)
