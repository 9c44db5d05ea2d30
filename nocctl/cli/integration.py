"""`nocctl integration …`: the keys of the HTTP senders of `nocctl serve`.

`--format` of `integration add` is the integration's format (pagerduty, alertmanager,
native), so the commands that print one integration take `--json` for JSON output
(`show` also takes the usual `--format table|json`); `list` takes the usual
`--format table|json|ndjson|csv`."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, say
from nocctl.vocabulary import INTEGRATION_FORMATS

LIST_COLUMNS = ("name", "format", "scope", "key_prefix", "status", "created_at", "rotated_at", "revoked_at")


@click.group()
def integration():
    """Integrations: the keys that senders of `nocctl serve` present.

    Each integration acts as a service identity of its own (the person `integration:NAME`)
    holding noc:ingest over its scope only: a key for client A cannot create, acknowledge
    or resolve client B's alerts. The key is printed once, when it is made (`add`,
    `rotate`); nocctl keeps only its SHA-256 and a short visible prefix.

    Every command needs noc:configure over the integration's scope (tenant-wide for a
    tenant-wide one) and is audited (CONFIG_CHANGE).
    """


def _json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print the integration as JSON.")(func)


def _plain(view: dict) -> dict:
    """The shown fields of one integration, in the table order."""
    return {k: view[k] for k in ("name", "format", "scope", "username", "key_prefix", "status", "path", "created_at",
                                 "rotated_at", "previous_key_expires_at", "revoked_at")}


def _issued(issued, as_json: bool, what: str) -> None:
    """The key on stdout (alone on its line: `KEY=$(nocctl integration add …)`), or the
    integration with its key as JSON; how to use it on stderr."""
    from nocctl.services import integrations

    view = issued.integration
    if as_json:
        emit_object(issued.as_dict(), "json")
    else:
        click.echo(issued.key)
    note(f"integration {view['name']} {what} ({view['format']}, {view['scope']}); the key is shown this once: "
         "store it now (nocctl keeps only its hash)")
    note(f"send to {integrations.HOW[view['format']]}")


@integration.command("add")
@click.argument("name")
@click.option("--format", "integration_format", type=click.Choice(INTEGRATION_FORMATS), required=True,
              help="What the sender posts: PagerDuty Events v2, Alertmanager (and Grafana) webhooks, or "
                   "nocctl's native records.")
@click.option("--client", metavar="CODE", help="Ingest for this client and its sites only.")
@click.option("--site", metavar="CODE", help="Ingest for this site only.")
@_json_option
@pass_app
def add(app: App, name, integration_format, client, site, as_json):
    """Add an integration NAME and print its key (once).

    \b
    nocctl integration add prom-acme --format alertmanager --client ACME
    nocctl integration add grafana --format alertmanager        # tenant-wide
    nocctl integration add zabbix-s1 --format pagerduty --site S1 --json

    Without --client or --site it may ingest for the whole tenant. The key goes to stdout
    alone; the path to post to, to stderr.
    """
    from nocctl.services import integrations

    issued = integrations.add(app.session(write=True), app.caller(), name, integration_format, client, site)
    _issued(issued, as_json, "added")


@integration.command("list")
@listing_options
@pass_app
def list_(app: App, fmt, out):
    """List the integrations you may configure, revoked ones too (never a key)."""
    from nocctl.services import integrations

    emit_rows(integrations.list_integrations(app.session(), app.caller()), LIST_COLUMNS, fmt, out)


@integration.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True,
              help="Output format.")
@_json_option
@pass_app
def show(app: App, name, fmt, as_json):
    """Show the integration NAME (never its key)."""
    from nocctl.services import integrations

    view = integrations.show(app.session(), app.caller(), name)
    emit_object(view if as_json or fmt == "json" else _plain(view), "json" if as_json else fmt)


@integration.command()
@click.argument("name")
@_json_option
@pass_app
def revoke(app: App, name, as_json):
    """Revoke the integration NAME: its key stops working at once (the server answers 401)
    and its identity becomes inactive. Revoking it again changes nothing (exit 0)."""
    from nocctl import clock
    from nocctl.services import integrations

    view, changed = integrations.revoke(app.session(write=True), app.caller(), name)
    if as_json:
        emit_object({**view, "changed": changed}, "json")
    elif changed:
        say(f"revoked integration {name}")
    else:
        note(f"integration {name} was revoked already ({clock.isoformat(view['revoked_at'])}); nothing changed")


@integration.command()
@click.argument("name")
@click.option("--grace", metavar="DURATION", default=None,
              help="Keep the old key working this long too (e.g. 1h), while the senders are reconfigured "
                   "[default: it stops at once].")
@_json_option
@pass_app
def rotate(app: App, name, grace, as_json):
    """Give the integration NAME a new key and print it (once). The old key stops working
    at once, or after --grace."""
    from nocctl import clock
    from nocctl.services import integrations

    seconds = clock.parse_duration(grace, "--grace") if grace else 0
    issued = integrations.rotate(app.session(write=True), app.caller(), name, seconds)
    _issued(issued, as_json, "rotated")
    if seconds:
        note(f"the old key works until {clock.isoformat(issued.integration['previous_key_expires_at'])}")


COMMANDS = (integration,)
