"""`nocctl prefs …`: your own defaults for the listing commands (the dashboard
configuration), and the helpers listing commands use to apply them."""
from __future__ import annotations

from typing import Any

import click

from nocctl.cli.common import App, emit_object, emit_rows, note, pass_app, say, show_options
from nocctl.lifecycle import ALERT_STATUSES
from nocctl.vocabulary import SEVERITIES

# The same keys as nocctl.services.prefs.KEYS (not imported: `--help` stays free of SQLAlchemy).
KEYS = ("client", "severity", "status", "format", "timezone")

KEYS_HELP = f"""\b
KEY is one of:
  client    a client code you can see: only its alerts
  severity  comma list of {", ".join(SEVERITIES)}
  status    comma list of {", ".join(ALERT_STATUSES[:4])},
            {", ".join(ALERT_STATUSES[4:])}, or `active` (every status but RESOLVED)
  format    table, json, ndjson or csv
  timezone  an IANA time zone such as Asia/Kolkata: times in table output
            are shown in it (json, ndjson and csv stay UTC)"""


@click.group(help=(
    "Your defaults for `alert list`: client, severity, status, format, time zone.\n\n"
    "A filter you give on the command line replaces the preference of its kind; "
    "`alert list --no-prefs` ignores them all. Preferences are per person: `--as` picks whose.\n\n"
    + KEYS_HELP
))
def prefs():
    pass  # the help is above: it lists the keys from the vocabulary


@prefs.command()
@show_options
@pass_app
def show(app: App, fmt):
    """Show your preferences (unset ones too)."""
    from nocctl.services import prefs as service

    data = service.show(app.session(), app.caller())
    if fmt == "json":
        emit_object(data, fmt)
        return
    updated = data.pop("updated_at")
    shown = {key: _text(value) for key, value in data.items()}
    if updated is not None:
        shown["updated_at"] = updated
    emit_object(shown, fmt)


@prefs.command("set", epilog=KEYS_HELP)
@click.argument("key", metavar="KEY", type=click.Choice(KEYS, case_sensitive=False))
@click.argument("value")
@pass_app
def set_(app: App, key, value):
    """Set one of your preferences to VALUE.

    Example: `nocctl prefs set severity critical,high`.
    """
    from nocctl.services import prefs as service

    data = service.set_pref(app.session(write=True), app.caller(), key, value)
    say(f"{key.lower()}: {_text(data[key.lower()])}")


@prefs.command(epilog=KEYS_HELP)
@click.argument("key", metavar="KEY", type=click.Choice(KEYS, case_sensitive=False))
@pass_app
def unset(app: App, key):
    """Clear one preference (the command's own default applies again)."""
    from nocctl.services import prefs as service

    service.unset(app.session(write=True), app.caller(), key)
    click.echo(f"{key.lower()}: (not set)")


def _text(value: Any) -> str:
    if value is None:
        return "(not set)"
    return ",".join(value) if isinstance(value, list) else str(value)


# ---------------------------------------------------------------- for listing commands


def listing_format(fmt: str | None, applied) -> str:
    """The output format: the `--format` given, else the preference, else table."""
    return fmt or applied.format or "table"


def pref_listing_options(func):
    """`--no-prefs`, and `--format`/`-o` whose default is the format preference."""
    from nocctl import output

    func = click.option("-o", "--output", "out", type=click.Path(dir_okay=False, writable=True), default=None,
                        help="Write to FILE instead of stdout.")(func)
    func = click.option("--format", "fmt", type=click.Choice(output.LIST_FORMATS), default=None,
                        help="Output format  [default: your format preference, else table]")(func)
    return click.option("--no-prefs", is_flag=True, help="Ignore your preferences (`nocctl prefs show`).")(func)


def emit_listing(app: App, rows, applied, table_columns, columns, fmt: str | None, out: str | None) -> None:
    """Render a listing that applied preferences: say which filters came from them, pick the
    format, and show table times in the preferred zone (other formats stay UTC; with
    --no-prefs, `applied` has no zone: UTC)."""
    note_filters(app, applied)
    fmt = listing_format(fmt, applied)
    if fmt == "table":
        emit_rows(rows, table_columns, fmt, out, zone=applied.timezone)
    else:
        emit_rows(rows, columns, fmt, out)


def note_filters(app: App, applied) -> None:
    """Tell (on stderr) which filters came from the preferences, so a short listing is
    never a mystery. Silent with -q and when none applied."""
    filters = [f"{key}={','.join(value)}" if isinstance(value, (list, tuple)) else f"{key}={value}"
               for key, value in (("client", applied.client), ("severity", applied.severities),
                                  ("status", applied.statuses)) if value]
    if filters and app.verbosity >= 0:
        note(f"nocctl: filtered by your preferences: {' '.join(filters)} (--no-prefs to ignore them)")


COMMANDS = (prefs,)
