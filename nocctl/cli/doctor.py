"""`nocctl doctor`: one line per health check, and an exit status that says it all."""
from __future__ import annotations

import click

from nocctl.cli.common import App, pass_app, to_terminal

#: The mark of each status: on a terminal, then off one (plain words for grep and logs).
_MARKS = {"ok": ("✓", "ok"), "problem": ("✗", "FAIL"), "info": ("·", "info"), "unknown": ("?", "unknown")}
_COLOURS = {"ok": "green", "problem": "red", "info": None, "unknown": "yellow"}


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format (json: an array of {check, status, detail, remedy}).")
@pass_app
def doctor(app: App, fmt):
    """Check this install: the config file, the database and its schema, file permissions,
    the notification channels, the pass locks and the last run of each cron pass, the
    audit chain. One line per check.

    Exit 0 when healthy, 65 when a problem was found (each names its remedy), 75 when it
    cannot tell now (database unavailable or locked). Read-only: creates and changes
    nothing (a missing database is reported, not made). A pass that has never run is not
    a problem; one overdue by more than 3 times its cron cadence is. Any person may run
    it; the audit chain is checked for a tenant-wide noc:audit_view only."""
    from nocctl import output, terminal
    from nocctl.errors import BadInput, TemporaryFailure
    from nocctl.services import doctor as service

    settings = app.settings
    checks = service.diagnose(settings, app.caller())
    if fmt == "json":
        output.write(output.to_json([check.as_dict() for check in checks]) + "\n")
    else:
        fancy = to_terminal()
        colour = fancy and terminal.colour_allowed()
        width = max(len(output.line(check.check)) for check in checks)
        for check in checks:
            mark = _MARKS[check.status][0 if fancy else 1]
            text = check.detail + (f"; {check.remedy}" if check.remedy and check.status != "ok" else "")
            line = f"{mark:<{1 if fancy else 7}} {output.line(check.check):<{width}}  {output.line(text)}"
            if colour and _COLOURS[check.status]:
                line = click.style(mark, fg=_COLOURS[check.status]) + line[len(mark):]
            click.echo(line)
    verdict = service.exit_status(checks)
    if verdict == service.PROBLEM:
        found = [check.check for check in checks if check.status == service.PROBLEM]
        raise BadInput(f"doctor found {len(found)} problem(s): {', '.join(found)}", "each says its remedy")
    if verdict == service.UNKNOWN:
        unsure = [check.check for check in checks if check.status == service.UNKNOWN]
        raise TemporaryFailure(f"doctor cannot tell now: {', '.join(unsure)} not checked", "retry shortly")


COMMANDS = (doctor,)
