"""`nocctl audit …`: read the audit log and verify its hash chain."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, pass_app, show_options
from nocctl.vocabulary import AUDIT_ACTIONS


@click.group()
def audit():
    """Read the append-only audit log and check it for tampering."""


def _target(ctx, param, value: str | None) -> tuple[str, str | None] | None:
    """`TYPE` or `TYPE:ID` -> (type, id or None)."""
    if value is None:
        return None
    kind, sep, ident = value.partition(":")
    kind, ident = kind.strip().lower(), ident.strip()
    if not kind or (sep and not ident):
        raise click.BadParameter(f"{value!r} is not TYPE or TYPE:ID (e.g. alert or alert:42)")
    return kind, ident or None


@audit.command("list")
@click.option("--actor", metavar="USER", help="Only entries by this person.")
@click.option("--action", type=click.Choice(AUDIT_ACTIONS, case_sensitive=False), help="Only this action.")
@click.option("--target", metavar="TYPE[:ID]", callback=_target,
              help="Only entries about this target type (alert, person, client, site, …), or one target.")
@click.option("--since", metavar="TIME", help="Entries at or after TIME (ISO 8601 with offset).")
@click.option("--until", metavar="TIME", help="Entries before TIME.")
@click.option("--days", type=click.IntRange(1), help="Entries of the last N days.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many, newest first.")
@listing_options
@pass_app
def list_(app: App, actor, action, target, since, until, days, limit, fmt, out):
    """List the audit entries you may read, newest first.

    Needs noc:audit_view: tenant-wide for every entry, or for a client or site to see the
    entries about that client or site only."""
    from nocctl import clock
    from nocctl.services import audit as service

    start = end = None
    if since or until or days:
        start, end = clock.window(since, until, days)
    target_type, target_id = target or (None, None)
    rows = service.list_entries(app.session(), app.caller(), actor=actor, action=action, target_type=target_type,
                                target_id=target_id, since=start, until=end, limit=limit)
    emit_rows(rows, service.TABLE_COLUMNS if fmt == "table" else service.LIST_COLUMNS, fmt, out)


@audit.command()
@show_options
@pass_app
def verify(app: App, fmt):
    """Recompute the hash chain; name the first broken row and exit 65 if there is one.

    Needs a tenant-wide noc:audit_view."""
    from nocctl.errors import BadInput
    from nocctl.services import audit as service

    result = service.verify(app.session(), app.caller())
    if fmt == "json":
        emit_object(result.as_dict(), fmt)
    elif result.intact:
        click.echo(f"audit log intact: {result.rows_checked} rows")
    if not result.intact:
        raise BadInput(f"audit log broken at row {result.first_broken_id}: {result.reason}")


COMMANDS = (audit,)
