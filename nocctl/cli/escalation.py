"""`nocctl escalation policy …` (who an unacknowledged alert climbs to, and when) and
`nocctl escalate run` (the cron pass that climbs it)."""
from __future__ import annotations

import json

import click

from nocctl import output
from nocctl.cli.common import App, collector_paused, emit_object, pass_app, say, show_options

LEVEL_COLUMNS = ("level", "target", "CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")


@click.group()
def escalation():
    """Escalation policies: who an unacknowledged alert climbs to, and when.

    A policy is ordered levels, each a target and a delay per severity. Level 1's delay
    counts from the alert's first_seen, each later level's from the escalation before it;
    levels past the listed ones repeat the last, up to the maximum level. Targets: oncall
    (the client's schedule, else the tenant's), site_in_charge, client_owner, user:NAME; a
    target naming nobody falls through on-call → site in-charge → client owner.

    A client's policy wins over the tenant default, which wins over the built-in one
    (oncall, site_in_charge, client_owner; CRITICAL after 15m, HIGH after 30m, others never).
    `nocctl escalate run` (cron) applies them.
    """


@escalation.group()
def policy():
    """Show, set and delete escalation policies."""


def _print_policy(data: dict, fmt: str) -> None:
    from nocctl import clock

    if fmt == "json":
        emit_object(data, fmt)
        return
    scope = f"client {data['client']}" if data.get("client") else "tenant default"
    say(f"escalation policy for the {scope}: {data['source']}, max level {data['max_level']}")
    rows = []
    for number in range(1, data["max_level"] + 1):
        level = data["levels"][min(number, len(data["levels"])) - 1]
        delays = level["delays"]
        rows.append({"level": number, "target": level["target"],
                     **{sev: clock.format_duration(delays[sev]) if sev in delays else "never"
                        for sev in LEVEL_COLUMNS[2:]}})
    output.write(output.render_rows(rows, LEVEL_COLUMNS, "table"))


@policy.command("show")
@click.option("--client", metavar="CODE", help="The policy in force for this client  [default: the tenant default]")
@show_options
@pass_app
def policy_show(app: App, client, fmt):
    """Show the escalation policy in force, level by level, and where it comes from."""
    from nocctl.services import escalation as service

    _print_policy(service.show_policy(app.session(), app.caller(), client), fmt)


@policy.command("set")
@click.option("--client", metavar="CODE", help="Set this client's policy  [default: the tenant default]")
@click.option("--level", "levels", multiple=True, required=True, metavar="TARGET[,SEV=DELAY…]",
              help="A level, in order (repeatable): oncall, site_in_charge, client_owner or user:NAME, "
                   "then delays such as CRITICAL=10m,HIGH=1h,MEDIUM=never. Unnamed severities keep the "
                   "defaults (CRITICAL 15m, HIGH 30m, others never).")
@click.option("--max-level", type=click.IntRange(min=1), metavar="N",
              help="Highest level; levels past the listed ones repeat the last  [default: the number of levels]")
@show_options
@pass_app
def policy_set(app: App, client, levels, max_level, fmt):
    """Set the escalation policy of a client, or the tenant default.

    \b
    nocctl escalation policy set --level oncall --level site_in_charge --level client_owner
    nocctl escalation policy set --client ACME --level oncall,CRITICAL=5m,HIGH=15m \\
        --level user:duty-manager,CRITICAL=10m,HIGH=30m,MEDIUM=2h --max-level 4

    Replaces the whole policy; unacknowledged alerts it governs are re-planned at the next
    `escalate run`. Needs noc:configure over the client (tenant-wide for the default);
    writes a CONFIG_CHANGE audit row with the policy before and after.
    """
    from nocctl.services import escalation as service

    data = service.set_policy(app.session(write=True), app.caller(), levels, client, max_level)
    _print_policy(data, fmt)


@policy.command("delete")
@click.option("--client", metavar="CODE", help="Delete this client's policy  [default: the tenant default]")
@show_options
@pass_app
def policy_delete(app: App, client, fmt):
    """Delete a client's policy (the tenant default then applies to it) or the tenant
    default (the built-in policy then applies). Needs noc:configure; audited."""
    from nocctl.services import escalation as service

    data = service.delete_policy(app.session(write=True), app.caller(), client)
    if fmt == "json":
        emit_object(data, fmt)
    else:
        say(f"deleted the escalation policy of the {data['deleted']}; now in force: {data['now_in_force']}")


@click.group()
def escalate():
    """The escalation pass (run it from cron, e.g. every 10 minutes)."""


@escalate.command("run")
@click.option("--now", "now_text", metavar="TIME", help="Run as of TIME: ISO 8601 or relative (2h)  [default: now]")
@click.option("--dry-run", is_flag=True, help="Decide and report, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the escalations made as a JSON array on stdout.")
@pass_app
def escalate_run(app: App, now_text, dry_run, as_json):
    """Escalate every unacknowledged alert whose delay has passed, one level up.

    Looks at alerts that are NEW or ESCALATED (never acknowledged, assigned or suppressed)
    in every tenant: when the next level's delay since first_seen (or the last escalation)
    has passed, the alert becomes ESCALATED to that level's target, an ESCALATE audit row
    is written (actor: the system, with this login and host) and a notification is queued
    for each configured channel (`nocctl notify run` delivers them).

    Safe from cron: a second run while one is going exits 75; running again at the same
    --now changes nothing. One JSON summary line goes to stderr.

    \b
    */10 * * * *  nocctl escalate run
    nocctl escalate run --now 2026-03-01T10:00:00Z --dry-run --json
    """
    from nocctl import clock, log
    from nocctl.services import escalation as service

    now = clock.parse_instant(now_text, "--now") if now_text else clock.now()
    with collector_paused():
        summary, escalations = service.run(app.engine(), app.settings, app.caller(), now, dry_run)
    if as_json:
        click.echo(json.dumps(escalations))
    log.get().info("escalate summary", now=clock.isoformat(now), **summary.as_dict())


COMMANDS = (escalation, escalate)
