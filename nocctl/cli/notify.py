"""`nocctl notify …`: the notification outbox."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_rows, listing_options, pass_app
from nocctl.lifecycle import NOTIFICATION_STATUSES


@click.group()
def notify():
    """The notification outbox: deliver, list and retry messages.

    Escalation queues messages here; `notify run` (cron, every minute) delivers the due
    ones through the channels of the [notify] section of the config file — a webhook
    POST of the JSON payload, a command run with the JSON on stdin, or a mail over SMTP;
    a channel's `template` (slack, teams, text, or a Jinja2 file) shapes what it sends.
    Channels are served at once (parallel_channels, default 8), the messages of each in
    order. `notify test CHANNEL` tries a channel now. A failed attempt is retried with
    exponential backoff (1m, 2m, 4m… up to 1h by default) until max_attempts (default
    6), then the message is FAILED; nothing is deleted, and `notify retry` queues it
    again.

    \b
    [notify.channels.ops-hook]
    type = "webhook"
    url = "https://hooks.example.com/T0/XYZ"
    severities = ["CRITICAL", "HIGH"]
    template = "slack"
    """


@notify.command("run")
@click.option("--now", "now_text", metavar="TIME", help="Deliver what is due at TIME (ISO 8601 or relative: 2h, +30m)  "
                                                        "[default: now]")
@click.option("--dry-run", is_flag=True, help="Count the messages due; deliver nothing, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_context
def run(ctx: click.Context, now_text, dry_run, as_json):
    """Deliver the due messages of every tenant (the cron pass).

    \b
    nocctl notify run                                  # from cron, every minute
    nocctl notify run --dry-run --json                 # what is due, nothing sent
    nocctl notify run --now 2026-03-01T10:05:00Z       # as if it were then

    Logs one summary line on stderr (due, sent, retrying, failed, duration_ms). Runs as
    the system: no person is needed. Exit 0 when no message gave up in this run; 65 when
    some became FAILED (each is logged; see `nocctl notify list --status failed`); 75
    when another `notify run` holds the lock (it delivers the rest; safe to retry).
    """
    from nocctl import clock, log
    from nocctl.services import notify as service

    app: App = ctx.obj
    now = clock.parse_instant(now_text, "--now") if now_text else clock.now()
    logger = log.get()

    def on_failed(failure) -> None:
        logger.warning("notify.failed", id=failure.id, tenant_id=failure.tenant_id, channel=failure.channel,
                       attempts=failure.attempts, error=failure.error)

    summary = service.run(app.engine(), app.settings, now, dry_run=dry_run, on_failed=on_failed)
    if as_json:
        import json

        click.echo(json.dumps(summary))
    logger.info("notify.run", **summary, dry_run=dry_run)
    if summary["failed"]:
        ctx.exit(65)


@notify.command("list")
@click.option("--status", type=click.Choice([s.lower() for s in NOTIFICATION_STATUSES], case_sensitive=False),
              help="Only messages in this status.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many, newest first.")
@listing_options
@pass_app
def list_(app: App, status, limit, fmt, out):
    """List the outbox messages you can see, newest first.

    \b
    nocctl notify list --status failed
    nocctl notify list --status pending --format json

    A message of a client or site is seen with it; a tenant-level one needs a tenant-wide
    view grant. next_attempt_at is shown for pending messages only; last_error keeps the
    reason of the latest failed attempt.
    """
    from nocctl.services import notify as service

    rows = service.list_notifications(app.session(), app.caller(), status, limit)
    emit_rows(rows, service.TABLE_COLUMNS if fmt == "table" else service.LIST_COLUMNS, fmt, out)


@notify.command("retry")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format of the per-message report.")
@click.pass_context
def retry(ctx: click.Context, ids, fmt):
    """Queue FAILED messages again: PENDING, attempts 0, due at once.

    \b
    nocctl notify list --status failed
    nocctl notify retry 41 42 && nocctl notify run

    Needs noc:escalate over the message's client (tenant-wide for a tenant-level one).
    Each message is reported; the others are done when one is refused (exit 4: not
    FAILED, 3: not found, 77: not permitted — the first failure's code).
    """
    from nocctl.cli.moves import report_moves
    from nocctl.services import notify as service

    app: App = ctx.obj
    report_moves(ctx, service.retry(app.session(write=True), app.caller(), ids), "notification", fmt)


@notify.command("test")
@click.argument("channel")
@click.option("--to", "to", metavar="ADDRESS",
              help="The address an smtp channel mails the test to (required for smtp).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format of the result.")
@click.pass_context
def test(ctx: click.Context, channel, to, fmt):
    """Send one test message through CHANNEL now and say whether it was delivered.

    \b
    nocctl notify test ops-hook
    nocctl notify test mail --to asha.rao@example.com
    nocctl notify test ops-slack --format json

    The message is built like an escalation's (so the channel's template is tried on it)
    and clearly marked as a test: kind "test", "test": true, subject "[TEST] …", an alert
    of type NOCCTL_TEST that says no alert is concerned. It is sent at once, synchronously,
    bypassing the outbox and the channel's severity filter; nothing is written to the
    database. Exit 0 delivered; 75 not delivered (the error is printed; safe to retry);
    65 the [notify] section or the channel's template is wrong (the key is named); 3 no
    such channel; 2 an smtp channel without --to.
    """
    from nocctl import clock, output
    from nocctl.errors import TemporaryFailure
    from nocctl.services import notify as service

    app: App = ctx.obj
    result = service.send_test(app.settings, channel, clock.now(), to)
    if fmt == "json":
        output.write(output.to_json(result.as_dict()) + "\n")
    elif result.delivered:
        click.echo(f"channel {result.channel}: delivered ({result.type}, template {result.template}, "
                   f"{result.duration_ms} ms)")
    if not result.delivered:
        raise TemporaryFailure(f"channel {result.channel}: the test message was not delivered: {result.error}",
                               f"check the channel's endpoint, then run `nocctl notify test {result.channel}` again")


COMMANDS = (notify,)
