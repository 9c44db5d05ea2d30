"""`nocctl retention run`: the retention pass."""
from __future__ import annotations

import json

import click

from nocctl.cli.common import App, pass_app


@click.group()
def retention():
    """The retention pass (run it from cron, e.g. daily)."""


@retention.command("run")
@click.option("--now", "now_text", metavar="TIME", help="Run as of TIME: ISO 8601 or relative (2h)  [default: now]")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing, write no archive.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
def run(app: App, now_text, dry_run, as_json):
    """Remove what is kept only for a while, in every tenant, in batches.

    \b
    Removed when older than their age in the [retention] section of the config
    (strictly older than now − age; a row exactly at the cutoff stays):
      snapshots      metric snapshots, by window end             (default 30d)
      event_keys     replay keys of ingested events, by seen_at  (default 30d)
      notifications  delivered (SENT) notifications, by sent_at  (default 30d);
                     PENDING and FAILED ones are never removed
      rejects        dead letters of ingest, pending or retried,
                     by received_at                              (default 30d)
    An age of "never" keeps that kind forever.

    \b
    Alerts and incidents are never touched unless an archive age is set:
      alerts = "365d"     RESOLVED alerts resolved before the cutoff
      incidents = "365d"  CLOSED incidents closed before the cutoff
    They are written first to NDJSON files (archive_gzip = true by default)
    in archive_dir (default $XDG_DATA_HOME/nocctl/archive/), named
    KIND-TENANT-DATE.ndjson.gz, fsync'ed, and only then deleted. An alert stays
    while an incident that is not archived links it, or while a kept alert of
    its correlation group names it as parent. The audit log is append-only and
    is never deleted.

    Safe from cron: a second run while one is going exits 75, a run right after
    removes nothing. Bad settings exit 65 naming the key. One summary line goes to
    stderr (counts per kind, archive files, duration).

    \b
    30 3 * * *  nocctl retention run
    nocctl retention run --now 2026-03-01T03:30:00Z --dry-run --json
    """
    from nocctl import clock, log
    from nocctl.services import retention as service

    now = clock.parse_instant(now_text, "--now") if now_text else clock.now()
    summary = service.run(app.engine(), app.settings, now, dry_run)
    data = summary.as_dict()
    if as_json:
        click.echo(json.dumps(data))
    log.get().info("retention summary", **data)


COMMANDS = (retention,)
