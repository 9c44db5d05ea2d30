"""`nocctl audit …`: read the audit log, verify its hash chain, anchor its end with signed checkpoints."""
from __future__ import annotations

from pathlib import Path

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, show_options
from nocctl.vocabulary import AUDIT_ACTIONS


@click.group()
def audit():
    """Read the append-only audit log, check it for tampering, anchor its end (checkpoints)."""


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
@click.option("--since", metavar="TIME", help="Entries at or after TIME: ISO 8601 or relative (2h, 30m, 1d).")
@click.option("--until", metavar="TIME", help="Entries before TIME (the same forms).")
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


def _key_option(func):
    return click.option("--key", "key_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
                        help="The checkpoint key (mode 600; default: audit_key_file of the config).")(func)


@audit.command()
@click.option("--checkpoints", "checkpoints", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check the chain against the checkpoints in FILE (`audit checkpoint` lines): a row"
                   " they name removed or rewritten, or a log shorter than they say, fails.")
@_key_option
@show_options
@pass_app
def verify(app: App, checkpoints: Path | None, key_file: Path | None, fmt):
    """Recompute the hash chain; name the first broken row and exit 65 if there is one.

    With --checkpoints, also check every checkpoint of the tenant in FILE (its MAC first,
    under the key): the row it names must still be there with its hash, and the log at
    least that long. A bad line, a missing or rewritten row: exit 65 naming it.
    Rows written after the last checkpoint are covered by the chain only.

    Needs a tenant-wide noc:audit_view."""
    from nocctl.errors import BadInput, UsageError
    from nocctl.services import audit as service

    if checkpoints is None:
        if key_file is not None:
            raise UsageError("--key is for --checkpoints FILE", "give both, or neither")
        result = service.verify(app.session(), app.caller())
        if fmt == "json":
            emit_object(result.as_dict(), fmt)
        elif result.intact:
            click.echo(f"audit log intact: {result.rows_checked} rows")
        if not result.intact:
            raise BadInput(f"audit log broken at row {result.first_broken_id}: {result.reason}")
        return
    _verify_checkpoints(app, checkpoints, key_file, fmt)


def _verify_checkpoints(app: App, path: Path, key_file: Path | None, fmt: str) -> None:
    from nocctl.errors import BadInput
    from nocctl.services import audit_checkpoints as anchors

    key = anchors.load_key(key_file or app.settings.audit_key_file)
    lines = anchors.read_lines(path)
    found = anchors.verify(app.session(), app.caller(), lines, key, str(path))
    if fmt == "json":
        emit_object(found.as_dict(), fmt)
    problems = found.problems()
    if problems:
        details = problems[1:anchors.MAX_DETAILS + 1]
        if len(problems) > anchors.MAX_DETAILS + 1:
            details.append(f"… and {len(problems) - anchors.MAX_DETAILS - 1} more (see --format json)")
        raise BadInput(problems[0], details=details)
    if fmt != "json":
        report = found.checkpoints
        click.echo(f"audit log intact: {found.chain.rows_checked} rows")
        last = report.last_held
        where = "" if last is None else (f" (the last: row {last.row_id}, {last.rows} rows, at {last.at})"
                                         if last.row_id is not None else f" (the last: an empty log, at {last.at})")
        others = f"; {report.other_tenants} of other tenants not checked" if report.other_tenants else ""
        click.echo(f"checkpoints hold: {report.checked}{where}{others}")


@audit.command()
@_key_option
@pass_app
def checkpoint(app: App, key_file: Path | None):
    """Sign the head of the audit chain and print it as one JSON line.

    The line names the tenant, the last row (id and hash), the number of rows and the time,
    with an HMAC-SHA256 under the key (mode 600, readable by this account only). Append it
    to a file kept on another host or account, hourly from cron; `audit verify --checkpoints
    FILE` then finds rows removed from the end or rewritten up to the last checkpoint.

    Needs a tenant-wide noc:audit_view."""
    from nocctl.services import audit_checkpoints as anchors

    key = anchors.load_key(key_file or app.settings.audit_key_file)
    click.echo(anchors.to_line(anchors.checkpoint(app.session(), app.caller(), key)))


@audit.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def keygen(file: Path):
    """Create FILE holding a new random key for `audit checkpoint`.

    32 random bytes (as hex), mode 600 whatever the umask; an existing file is never
    replaced. Keep it readable by the account that signs only, and a copy where the auditor
    verifying can read it: checkpoints cannot be verified without it."""
    import json

    from nocctl.services import audit_checkpoints as anchors

    anchors.generate_key(file)
    note(f"wrote a new audit key to {file} (mode 600); set audit_key_file = {json.dumps(str(file.absolute()))}"
         " in the config")


COMMANDS = (audit,)
