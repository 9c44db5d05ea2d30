"""`nocctl report …`: MTTR, MTTA, alert frequency, SLA compliance and noisy sites (DESIGN §7),
as a terminal table, JSON, CSV, Markdown or one self-contained HTML file. The numbers come
from `services.reports.build()`, the rendering from `nocctl.reporting`; both are imported
inside the callbacks, so `--help` stays instant."""
from __future__ import annotations

import os

import click

from nocctl.cli.common import App, note, pass_app
from nocctl.reporting import FORMATS, format_for, sections_of
from nocctl.vocabulary import REPORT_DEFINITIONS as DEFINITIONS

SUMMARIES = {
    "mttr": "Mean time to resolve alerts: mean, p50, p90 and count, overall, by severity and by client.",
    "mtta": "Mean time to acknowledge alerts: mean, p50, p90 and count, overall, by severity and by client.",
    "frequency": "Alerts and events by type, by severity and per day (with a sparkline of the trend).",
    "sla": "SLA compliance of the incidents created in the window: met, breached, pending.",
    "noisy": "The noisiest sites: most alerts first, with events, suppressed alerts and share.",
    "weekly": "All five reports in one document, with the key figures against the previous period, the breached "
              "incidents and SLA by client.",
}

EXAMPLES = {
    "mttr": ["nocctl report mttr                      # the last 7 days, every client you can see",
             "nocctl report mttr --client ACME --days 30 --format json",
             "nocctl report mttr --since 2026-02-01T00:00:00Z --until 2026-03-01T00:00:00Z -o mttr-feb.csv"],
    "mtta": ["nocctl report mtta --days 1",
             "nocctl report mtta --client GLOBEX --format markdown"],
    "frequency": ["nocctl report frequency --tz Asia/Kolkata   # days from midnight to midnight IST",
                  "nocctl report frequency --days 30 --format csv -o alerts-by-day.csv"],
    "sla": ["nocctl report sla --days 30",
            "nocctl report sla --client ACME --format json"],
    "noisy": ["nocctl report noisy --top 5",
              "nocctl report noisy --client GLOBEX --days 30 --format html -o globex-noisy.html"],
    "weekly": ["nocctl report weekly                                  # on the terminal",
               "nocctl report weekly --tz Asia/Kolkata -o weekly.html   # one self-contained HTML file",
               "nocctl report weekly --client ACME --format markdown -o acme-week.md"],
}


def _help(name: str) -> str:
    if name == "weekly":
        definitions = "Definitions:\n\n" + "\n\n".join(f"{kind}: {DEFINITIONS[kind]}" for kind in sections_of(name))
    else:
        definitions = f"Definition: {DEFINITIONS[name]}"
    examples = "\n".join(f"  {line}" for line in EXAMPLES[name])
    return f"{SUMMARIES[name]}\n\n{definitions}\n\n\b\nExamples:\n{examples}"


@click.group()
def report():
    """MTTR, MTTA, alert frequency, SLA compliance and noisy-site reports.

    Every report covers a window — the last 7 days ending now unless --days or
    --since/--until say otherwise — and the alerts and incidents of the clients and sites
    you may view (--client narrows it to one client). Days are counted, and times shown, in
    --tz (default UTC); a day the window or the clock cuts short is marked partial.

    Formats: table (the terminal, with a sparkline of the daily trend), json (the report's
    data, stable snake_case keys), csv (one flat table), markdown (GitHub tables) and html
    (one self-contained file with inline SVG charts, fit to print or read on a phone).
    Definitions of what is counted are printed in every human format and in each
    command's --help.

    -o FILE writes the report to FILE (the format follows its extension unless --format
    is given). A report that leaves as a file is an export: it needs noc:export (for the
    client, or tenant-wide) and is recorded in the audit log (EXPORT_DATA).

    \b
    Examples:
      nocctl report weekly
      nocctl report mttr --client ACME --days 30 --format json
      nocctl report weekly --tz Asia/Kolkata -o weekly.html
    """


def _options(top: bool):
    options = [
        click.option("--client", metavar="CODE", help="Only this client (default: every client you can see)."),
        click.option("--days", type=click.IntRange(1), help="The N days before --until (default 7)."),
        click.option("--since", metavar="TIME", help="Window start, included: ISO 8601 or relative (2h, 30m, 1d)."),
        click.option("--until", metavar="TIME", help="End of the window, excluded (the same forms; default: now)."),
        click.option("--tz", metavar="ZONE", help="IANA time zone of the report's days and of the times it shows, "
                                                  "e.g. Asia/Kolkata (default UTC; JSON keeps UTC instants)."),
    ]
    if top:
        options.append(click.option("--top", type=click.IntRange(1), default=10, show_default=True,
                                    help="How many of the noisiest sites to list."))
    options += [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                     help="Output format (default: table; with -o, the one the file's extension names)."),
        click.option("-o", "--output", "out", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Write the report to FILE (an export: needs noc:export, audited)."),
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _make(name: str, top: bool) -> click.Command:
    @report.command(name, help=_help(name), short_help=SUMMARIES[name])
    @_options(top)
    @pass_app
    def command(app: App, client, days, since, until, tz, fmt, out, top=10):
        run(app, name, client=client, days=days, since=since, until=until, tz=tz, top=top, fmt=fmt, out=out)

    return command


def run(app: App, name: str, *, client, days, since, until, tz, top, fmt, out) -> None:
    """Build the report's data (a read), render it, then print it — or, with -o, record
    the export (noc:export, an EXPORT_DATA audit row) and write the file."""
    from nocctl import clock, output
    from nocctl.reporting import render
    from nocctl.services import reports

    start, end = clock.window(since, until, days)
    fmt = fmt or format_for(out) or "table"
    kinds = sections_of(name)
    if not out or out == "-":
        document = reports.build(app.session(), app.caller(), kinds, start, end, tz, client, top,
                                 compare=name == "weekly")
        output.write(render(document, name, fmt))
        return
    path = os.path.abspath(out)
    # The temporary file beside FILE is made before any data is read, so a path that could
    # never be written is a usage error (exit 2) and no export. The whole report is on disk
    # (fsync'ed) before the export is recorded, so a full disk (exit 75) records none
    # either; the file replaces the old one in one step, after the audit row.
    with output.AtomicFile(out) as target:
        document = reports.build(app.session(), app.caller(), kinds, start, end, tz, client, top, export=True,
                                 compare=name == "weekly")
        target.write(render(document, name, fmt))
        target.sync()
        reports.record_export(app.session(write=True), app.caller(), document,
                              {"report": name, "format": fmt, "file": path})
    note(f"nocctl: wrote the {name} report ({fmt}) to {path}")


for _name in sections_of("weekly") + ("weekly",):
    _make(_name, top=_name in ("noisy", "weekly"))

COMMANDS = (report,)
