"""`nocctl alertmanager sync`: the cron pass that keeps an Alertmanager integration's
alerts as Alertmanager sees them (silenced, back, gone)."""
from __future__ import annotations

import json

import click

from nocctl.cli.common import App, pass_app


@click.group()
def alertmanager():
    """Prometheus Alertmanager: what its webhook cannot tell (run `sync` from cron)."""


def _settle(text: str) -> int:
    from nocctl import clock

    return 0 if text.strip() in ("0", "0s") else clock.parse_duration(text, "--settle")


@alertmanager.command("sync")
@click.option("--url", required=True, metavar="URL",
              help="Alertmanager's base URL, e.g. http://127.0.0.1:9093 (user:password@ for basic auth).")
@click.option("--integration", "integration", required=True, metavar="NAME",
              help="The alertmanager integration whose alerts to keep in step (`nocctl integration list`).")
@click.option("--now", "now_text", metavar="TIME", help="Run as of TIME: ISO 8601 or relative (2h)  [default: now]")
@click.option("--dry-run", is_flag=True, help="Read Alertmanager and decide, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=300), default=10, show_default=True, metavar="SECONDS",
              help="Give up on an Alertmanager request after this long (exit 75).")
@click.option("--settle", "settle_text", default="5m", show_default=True, metavar="DURATION",
              help="Resolve vanished alerts only once Alertmanager has been up this long (0: at once).")
@pass_app
def sync(app: App, url, integration, now_text, dry_run, as_json, timeout, settle_text):
    """Keep an Alertmanager integration's alerts as Alertmanager sees them.

    Reads GET URL/api/v2/alerts and, for the integration's active alerts (dedup
    key am: + fingerprint, within the integration's scope):

    \b
      silenced or inhibited in Alertmanager    → SUPPRESSED (silence ids, inhibiting
                                                 fingerprints, silence end in metadata)
      active again (the silence ended)         → NEW, unless a maintenance window holds it
      no longer reported (it ended)            → RESOLVED, at --now
    Alertmanager's webhook never tells of these: a silenced alert sends no notification,
    not even its "resolved". Acknowledged and assigned alerts stay with whoever took them
    (a vanished one is still resolved). Every change is audited (SUPPRESS, UNSUPPRESS,
    RESOLVE; the actor is the system, the details name the integration).

    Alertmanager keeps alerts in memory: after it restarts, its array is empty until
    Prometheus re-sends them, so vanished alerts are resolved only once it has been up
    for --settle. Alerts it reports that nocctl has not are left for its webhook.

    A cron pass, one per integration: a second run while one is going exits 75; an
    unreachable Alertmanager exits 75 naming the URL (nothing changed), an answer that
    is not Alertmanager's JSON 65. One JSON summary line goes to stderr.

    \b
    *  * * * *  nocctl alertmanager sync --url http://127.0.0.1:9093 --integration prometheus
    nocctl alertmanager sync --url http://am.internal:9093 --integration prometheus --dry-run --json
    """
    from nocctl import clock, log
    from nocctl.services import alertmanager_sync as service

    now = clock.parse_instant(now_text, "--now") if now_text else clock.now()
    settle = _settle(settle_text)
    summary, view = service.run(app.engine(), app.caller(), integration, url, now, dry_run, timeout, settle)
    logger = log.get()
    for note in view.notes:
        logger.warning(note, integration=integration)
    data = summary.as_dict()
    if as_json:
        click.echo(json.dumps(data))
    logger.info("alertmanager sync summary", integration=integration, url=service.Endpoint(url).shown,
                now=clock.isoformat(now), dry_run=dry_run, duration_ms=view.duration_ms, **data)


COMMANDS = (alertmanager,)
