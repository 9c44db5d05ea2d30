"""`nocctl maintenance …`: plan, inspect, end and cancel maintenance windows, and ask whether
an alert would be held by one."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from nocctl import output
from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, say, show_options

STATE_CHOICES = ("pending", "active", "expired", "all")
TABLE_COLUMNS = ("id", "state", "scope", "types", "matchers", "starts_at", "ends_at", "recurrence", "next_occurrence",
                 "reason")


@click.group()
def maintenance():
    """Maintenance windows: hold the alerts of a site, a client or the whole tenant.

    An alert that arrives (by its occurred_at) inside an occurrence of a matching window is
    stored SUPPRESSED with the window's id, never dropped; a resolve still resolves it, and
    its next duplicate after the window turns it NEW. Recurring windows follow the wall
    clock of their time zone (--tz, default UTC).
    """


def _scope(client: str | None, site: str | None, all_sites: bool) -> tuple[str, str | None]:
    given = [name for name, value in (("--client", client), ("--site", site), ("--all-sites", all_sites)) if value]
    if len(given) != 1:
        raise click.UsageError("give one scope: --client CODE, --site CODE or --all-sites"
                               + (f" (not {' and '.join(given)})" if given else ""))
    if all_sites:
        return "tenant", None
    return ("client", client) if client else ("site", site)


@maintenance.command()
@click.option("--client", metavar="CODE", help="Hold alerts of this client and all its sites.")
@click.option("--site", metavar="CODE", help="Hold alerts of this site only.")
@click.option("--all-sites", is_flag=True, help="Hold alerts of the whole tenant (every client and site).")
@click.option("--start", metavar="TIME",
              help="Start of the (first) occurrence: ISO 8601 with offset, `now`, or `+30m` from now  [default: now]")
@click.option("--end", metavar="TIME", help="End of the (first) occurrence: ISO 8601 or relative (+2h).")
@click.option("--duration", metavar="LENGTH", help="Instead of --end: the length, e.g. 2h, 90m, 1h30m.")
@click.option("--for", "for_", metavar="LENGTH", help="The same as --duration: `--start now --for 2h`.")
@click.option("--suppress-all", is_flag=True, help="Hold alerts of every type.")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Hold only alerts of this type (repeatable, or a comma list).")
@click.option("--allow-unknown-type", is_flag=True,
              help="Accept a --type neither built in nor seen in an alert yet (otherwise a likely typo: exit 2).")
@click.option("--match", "matchers", multiple=True, metavar="MATCHER",
              help="Hold only alerts this Alertmanager matcher selects: NAME=V, NAME!=V, NAME=~RE, NAME!~RE over "
                   "labels, `entity`, `entity_type` and `type` (repeatable, ANDed; regexes anchored).")
@click.option("--reason", required=True, help="Why: the work, the change ticket. Shown in listings and the audit log.")
@click.option("--recur", type=click.Choice(("daily", "weekly"), case_sensitive=False),
              help="Repeat the occurrence every day, or every week.")
@click.option("--on", "weekdays", multiple=True, metavar="DAYS",
              help="Weekly: the days, e.g. sat,sun (default: the start's weekday in --tz).")
@click.option("--until", metavar="DATE",
              help="Last day an occurrence may start (YYYY-MM-DD in --tz, inclusive); required with --recur.")
@click.option("--tz", "zone", default="UTC", show_default=True, metavar="ZONE",
              help="IANA time zone whose wall clock the recurrence and --until follow.")
@show_options
@pass_app
def add(app: App, client, site, all_sites, start, end, duration, for_, suppress_all, types, allow_unknown_type,
        matchers, reason, recur, weekdays, until, zone, fmt):
    """Plan a maintenance window; prints its id.

    \b
    nocctl maintenance add --site ACME-BLR-WF --start 2026-03-07T22:00:00+05:30 \\
        --duration 4h --suppress-all --reason "UPS replacement, CHG-1042"
    nocctl maintenance add --client ACME --for 2h --match 'instance=~edge-.*' \\
        --match 'severity!=critical' --reason "edge router firmware, CHG-1077"
    nocctl maintenance add --client GLOBEX --type DEVICE_OFFLINE --type SYNC_DEGRADED \\
        --start 2026-03-08T02:00:00+05:30 --end 2026-03-08T03:30:00+05:30 \\
        --recur weekly --on sun --until 2026-06-28 --tz Asia/Kolkata --reason "weekly patching"

    A window holds an alert when its scope covers the alert's client or site, its type is
    one of --type (or --suppress-all), and every --match holds (Alertmanager syntax; a label
    the alert lacks reads as empty). --match without --type holds every type it matches.

    Needs noc:manage_maintenance over the scope (tenant-wide for --all-sites). A type that is
    neither built in nor ever seen in an alert is refused (exit 2, with the nearest known
    type) unless --allow-unknown-type.
    """
    from datetime import timedelta

    from nocctl import clock
    from nocctl.services import maintenance as service

    scope, unit = _scope(client, site, all_sites)
    lengths = [name for name, value in (("--end", end), ("--duration", duration), ("--for", for_)) if value]
    if len(lengths) != 1:
        raise click.UsageError("give --end TIME or --duration LENGTH (or --for LENGTH): one of them"
                               + (f", not {' and '.join(lengths)}" if lengths else ""))
    if suppress_all and types:
        raise click.UsageError("give --suppress-all or --type TYPE (one of them)")
    if not suppress_all and not types and not matchers:
        raise click.UsageError("give --suppress-all or --type TYPE (one of them), or --match MATCHER")
    if weekdays and (recur or "").lower() != "weekly":
        raise click.UsageError("--on names the days of a weekly window: add --recur weekly")
    if recur and not until:
        raise click.UsageError("--recur needs --until DATE (the last day an occurrence may start)")
    if until and not recur:
        raise click.UsageError("--until ends a recurrence: add --recur daily or --recur weekly")
    starts_at = clock.now() if start is None else clock.parse_instant(start, "--start")
    length = duration or for_
    ends_at = clock.parse_instant(end, "--end") if end else \
        starts_at + timedelta(seconds=clock.parse_duration(length, "--duration" if duration else "--for"))
    added = service.add(app.session(write=True), app.caller(), service.NewWindow(
        scope, unit, starts_at, ends_at, reason, suppress_all, types, recur or "none", weekdays,
        clock.parse_date(until, "--until") if until else None, zone, matchers, allow_unknown_type))
    for warning in added.warnings:
        note(f"nocctl: warning: {warning}")
    emit_object(added.window, "json") if fmt == "json" else click.echo(added.window["id"])


@maintenance.command("list")
@click.option("--state", type=click.Choice(STATE_CHOICES, case_sensitive=False), default=None,
              help="Only windows in this state  [default: pending and active]")
@click.option("--client", metavar="CODE", help="Only windows that cover this client or any of its sites.")
@click.option("--site", metavar="CODE", help="Only windows that cover this site (its own, its client's, tenant-wide).")
@listing_options
@pass_app
def list_(app: App, state, client, site, fmt, out):
    """List the maintenance windows you can see, by start.

    States at the clock's now: active (an occurrence covers now), pending (the next
    occurrence is still to come), expired (none now or later, or ended, or deleted).
    next_occurrence is the occurrence in effect, else the next one to start. The table
    shows times in your preferred time zone (`nocctl prefs set timezone ZONE`); the other
    formats in UTC.
    """
    from nocctl.services import maintenance as service

    if client and site:
        raise click.UsageError("give --client or --site, not both")
    states = [state.lower()] if state else ["pending", "active"]
    found = service.listing(app.session(), app.caller(), states, client, site)
    if fmt == "table":
        emit_rows([_table_row(r, found.timezone) for r in found.rows], TABLE_COLUMNS, fmt, out, zone=found.timezone)
    else:
        emit_rows(found.rows, service.LIST_COLUMNS, fmt, out)


def matcher_text(data: Mapping[str, Any]) -> str:
    """A window's matchers as typed (`instance=~"edge-.*"`), comma separated."""
    from nocctl.services.maintenance.matchers import Matcher

    return ", ".join(str(Matcher(m["name"], m["op"], m["value"])) for m in data.get("matchers") or ())


def _table_row(data: Mapping[str, Any], zone: str | None = None) -> dict[str, Any]:
    scope = {"tenant": "tenant", "client": f"client {data['client']}", "site": f"site {data['site']}"}[data["scope"]]
    recurrence = "-"
    if data["recurrence"] != "none":
        days = f" {','.join(data['weekdays'])}" if data["weekdays"] else ""
        recurrence = f"{data['recurrence']}{days} until {data['until']} ({data['timezone']})"
    upcoming = data["next_occurrence"]
    state = data["state"]
    if data["deleted_at"] is not None:
        state += " (deleted)"
    elif data["ended_at"] is not None:
        state += " (ended)"
    return {
        "id": data["id"], "state": state, "scope": scope,
        "types": "all" if data["suppress_all"] else ",".join(data["alert_types"]),
        "matchers": matcher_text(data),
        "starts_at": data["starts_at"], "ends_at": data["ends_at"], "recurrence": recurrence,
        # Text, not instants: shown in the zone the table's own times are (`output.table_time`).
        "next_occurrence": (f"{output.table_time(upcoming['starts_at'], zone)} → "
                            f"{output.table_time(upcoming['ends_at'], zone)}"
                            if upcoming else ""),
        "reason": data["reason"],
    }


@maintenance.command()
@click.argument("window_id", type=int, metavar="ID")
@show_options
@pass_app
def show(app: App, window_id, fmt):
    """Show one maintenance window, with its state and next occurrence."""
    from nocctl.services import maintenance as service

    data = service.show(app.session(), app.caller(), window_id)
    emit_object(data if fmt == "json" else {**data, "matchers": matcher_text(data)}, fmt)


@maintenance.command("end")
@click.argument("window_id", type=int, metavar="ID")
@show_options
@pass_app
def end_(app: App, window_id, fmt):
    """End a pending or active window now (no later occurrence either).

    Alerts it holds stay SUPPRESSED until their next duplicate, which then turns them NEW.
    An expired window: exit 4. Needs noc:manage_maintenance over its scope.
    """
    from nocctl.services import maintenance as service

    data = service.end(app.session(write=True), app.caller(), window_id)
    if fmt == "json":
        emit_object(data, fmt)
    else:
        click.echo(f"maintenance window {window_id}: ended at {output.plain(data['ended_at'])}")


@maintenance.command()
@click.argument("window_id", type=int, metavar="ID")
@show_options
@pass_app
def delete(app: App, window_id, fmt):
    """Cancel a window: it covers nothing from now on; it is kept for history.

    Deleted already: exit 4. Needs noc:manage_maintenance over its scope.
    """
    from nocctl.services import maintenance as service

    data = service.delete(app.session(write=True), app.caller(), window_id)
    if fmt == "json":
        emit_object(data, fmt)
    else:
        click.echo(f"maintenance window {window_id}: deleted at {output.plain(data['deleted_at'])}")


@maintenance.command()
@click.option("--client", metavar="CODE", help="A client-level alert of this client.")
@click.option("--site", metavar="CODE", help="An alert of this site.")
@click.option("--type", "alert_type", required=True, metavar="TYPE", help="The alert type.")
@click.option("--at", metavar="TIME", help="When the alert occurs (ISO 8601 or relative: 2h, +30m)  [default: now]")
@click.option("--entity", "entity_id", metavar="ID", help="The alert's entity_id (what `--match entity…` reads).")
@click.option("--entity-type", metavar="TYPE", help="The alert's entity_type.")
@click.option("--label", "labels", multiple=True, metavar="NAME=VALUE",
              help="An Alertmanager label of the alert (repeatable): what windows' --match read.")
@show_options
@pass_app
def check(app: App, client, site, alert_type, at, entity_id, entity_type, labels, fmt):
    """Would an alert be suppressed, and by which window?

    Answers as ingest decides: the window with the lowest id that covers the alert's
    client or site, type and time, and whose matchers hold on its entity and labels. The
    exit status is 0 either way.
    """
    from nocctl import clock
    from nocctl.services import maintenance as service

    if bool(client) == bool(site):
        raise click.UsageError("give --client CODE or --site CODE (one of them)")
    given: dict[str, str] = {}
    for label in labels:
        name, sep, value = label.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--label {label!r} is not NAME=VALUE")
        given[name.strip()] = value
    result = service.check(app.session(), app.caller(), alert_type, client, site,
                           clock.parse_instant(at, "--at") if at else None, entity_type, entity_id, given)
    if fmt == "json":
        emit_object(result, fmt)
        return
    place = f"site {result['site']}" if result["site"] else f"client {result['client']} (client-level)"
    when = output.plain(result["at"])
    if not result["suppressed"]:
        say(f"not suppressed: no maintenance window holds {result['alert_type']} at {place} at {when}")
        return
    window, occurrence = result["window"], result["occurrence"]
    say(f"suppressed by maintenance window {window['id']} ({_table_row(window)['scope']}; "
               f"{output.plain(occurrence['starts_at'])} → {output.plain(occurrence['ends_at'])}): {window['reason']}")
    others = result["windows"][1:]
    if others:
        click.echo(f"also covered by window{'s' if len(others) > 1 else ''} {', '.join(map(str, others))}")


COMMANDS = (maintenance,)
