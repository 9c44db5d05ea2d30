"""`nocctl oncall …`: on-call rotations, overrides, and who is on call."""
from __future__ import annotations

import click

from nocctl import output
from nocctl.cli.common import App, emit_object, emit_rows, listing_options, pass_app, say, show_options

TABLE_COLUMNS = ("id", "name", "client", "starts_at", "turn", "members")


@click.group()
def oncall():
    """On-call schedules: who escalation reaches.

    A schedule rotates through its members, one turn each (--turn), from its start. At a
    given time the person on call is the one of an override covering it (the latest to
    start wins), else the member whose turn it is; before the start, the first member.
    A client's schedule answers for it; otherwise the tenant-wide one (no --client).
    """


@oncall.group()
def schedule():
    """Add and list on-call schedules."""


@schedule.command("add")
@click.argument("name")
@click.option("--client", metavar="CODE", help="The schedule of this client  [default: tenant-wide]")
@click.option("--member", "members", multiple=True, required=True, metavar="USER",
              help="A person in the rotation, in turn order (repeatable).")
@click.option("--start", required=True, metavar="TIME", help="Start of the first turn: ISO 8601 or relative (+1h).")
@click.option("--turn", required=True, metavar="LENGTH", help="Length of one turn, e.g. 12h, 1d, 7d.")
@show_options
@pass_app
def schedule_add(app: App, name, client, members, start, turn, fmt):
    """Add an on-call schedule; prints its id.

    \b
    nocctl oncall schedule add ops --member asha --member ravi --start 2026-03-02T09:00:00+05:30 --turn 7d
    nocctl oncall schedule add acme-nights --client ACME --member li --member sam \\
        --start 2026-03-01T20:00:00Z --turn 1d

    Needs noc:configure over the client (tenant-wide for a tenant-wide schedule).
    """
    from nocctl import clock
    from nocctl.services import oncall as service

    data = service.add_schedule(app.session(write=True), app.caller(), name, client, members,
                                clock.parse_instant(start, "--start"), turn)
    emit_object(data, "json") if fmt == "json" else click.echo(data["id"])


@schedule.command("list")
@listing_options
@pass_app
def schedule_list(app: App, fmt, out):
    """List the on-call schedules you can see."""
    from nocctl.services import oncall as service

    rows = service.list_schedules(app.session(), app.caller())
    if fmt == "table":
        emit_rows([{**r, "client": r["client"] or "(tenant-wide)", "members": ", ".join(r["members"])}
                   for r in rows], TABLE_COLUMNS, fmt, out)
    else:
        emit_rows(rows if fmt in ("json", "ndjson") else [{**r, "members": ",".join(r["members"])} for r in rows],
                  service.LIST_COLUMNS, fmt, out)


@oncall.group()
def override():
    """Put someone on call for a while, whoever's turn it is."""


@override.command("add")
@click.argument("schedule_name", metavar="SCHEDULE")
@click.argument("user", metavar="USER")
@click.option("--start", required=True, metavar="TIME", help="Start: ISO 8601 or relative (now, +1h).")
@click.option("--end", required=True, metavar="TIME", help="End (not included): ISO 8601 or relative (+8h).")
@show_options
@pass_app
def override_add(app: App, schedule_name, user, start, end, fmt):
    """Put USER on call for SCHEDULE from --start to --end; prints the override's id.

    Overlapping overrides: the one that starts latest wins. Needs noc:configure over the
    schedule's client (tenant-wide for a tenant-wide schedule).
    """
    from nocctl import clock
    from nocctl.services import oncall as service

    data = service.add_override(app.session(write=True), app.caller(), schedule_name, user,
                                clock.parse_instant(start, "--start"), clock.parse_instant(end, "--end"))
    emit_object(data, "json") if fmt == "json" else click.echo(data["id"])


@oncall.command()
@click.option("--client", metavar="CODE", help="For this client (its schedule, else the tenant-wide one).")
@click.option("--at", metavar="TIME", help="At this time: ISO 8601 or relative (2h, +1d)  [default: now]")
@show_options
@pass_app
def who(app: App, client, at, fmt):
    """Who is on call, until when, who is next, and from which schedule or override.

    \b
    vikram.nair is on call until 2026-03-04T09:00:00Z (schedule ops, turn 2); next: meera.iyer (turn 3)

    "until" is when someone else takes over (the end of the turn or override, or an override
    that starts earlier); the next person is on call from then. Consecutive turns or
    overrides of one person are one shift. No schedule answers (none for the client, none
    tenant-wide): exit 3.
    """
    from nocctl import clock
    from nocctl.services import oncall as service

    result = service.who(app.session(), app.caller(), client, clock.parse_instant(at, "--at") if at else None)
    if fmt == "json":
        emit_object(result, fmt)
        return
    source = f"(schedule {result['schedule']}, {result['source']})"
    upcoming = result["next"]
    if upcoming is None:
        say(f"{result['person']} is on call {source}; nobody else is scheduled")
    else:
        say(f"{result['person']} is on call until {output.plain(result['until'])} {source}; "
            f"next: {upcoming['person']} ({upcoming['source']})")


COMMANDS = (oncall,)
