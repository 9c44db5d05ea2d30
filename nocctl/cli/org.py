"""`nocctl org …`: clients, sites and importing an organisation."""
from __future__ import annotations

import click

from nocctl import output
from nocctl.cli.common import App, emit_object, emit_rows, listing_options, pass_app, say, show_options
from nocctl.cli.inputs import InputFile


@click.group()
def org():
    """Clients, their sites, and importing an organisation from CSV or JSON."""


@org.group()
def client():
    """Clients (customers)."""


@client.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Display name.")
@click.option("--owner", metavar="USER", help="Person who owns the client relationship.")
@show_options
@pass_app
def client_add(app: App, code, name, owner, fmt):
    """Add a client with a unique CODE."""
    from nocctl.services import org as service

    unit = service.add_client(app.session(write=True), app.caller(), code, name, owner)
    emit_object(unit, "json") if fmt == "json" else say(unit["code"])


@org.group()
def site():
    """Sites (business units) of clients."""


@site.command("add")
@click.argument("code")
@click.option("--client", "client_code", metavar="CODE", required=True, help="The client the site belongs to.")
@click.option("--name", required=True, help="Display name.")
@click.option("--city", help="City.")
@click.option("--state", help="State or region.")
@click.option("--in-charge", metavar="USER", help="Site-in-charge (a person).")
@show_options
@pass_app
def site_add(app: App, code, client_code, name, city, state, in_charge, fmt):
    """Add a site with a unique CODE under a client."""
    from nocctl.services import org as service

    unit = service.add_site(app.session(write=True), app.caller(), code, client_code, name, city, state, in_charge)
    emit_object(unit, "json") if fmt == "json" else say(unit["code"])


@org.command("import")
@click.argument("file", type=InputFile())
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@pass_app
def import_(app: App, file, as_json):
    """Create or update people, clients and sites from FILE (JSON or CSV; `-` for stdin).

    \b
    JSON: {"people": [{"username", "name", "email", "phone"}],
           "clients": [{"code", "name", "owner"}],
           "sites": [{"code", "name", "client", "city", "state", "in_charge"}]}
    CSV:  a `kind` column (person|client|site) and the same field names as columns.

    Upserts by code/username, so running it again changes nothing. All or nothing: every
    bad row is reported with its line and nothing is applied when any row is bad.

    A path examples/… that does not exist here (outside a checkout) reads the example
    shipped with nocctl: `nocctl org import examples/org.json` works from any directory.
    """
    import sys

    from nocctl.services import org as service

    text = sys.stdin.read() if file == "-" else None
    doc = service.parse_org_file("<stdin>" if file == "-" else file, text)
    result = service.import_org(app.session(write=True), app.caller(), doc)
    if as_json:
        emit_object(result.as_dict(), "json")
        return
    for kind, label in (("person", "people"), ("client", "clients"), ("site", "sites")):
        click.echo(f"{label:<8} {result.created[kind]} created, {result.updated[kind]} updated, "
                   f"{result.unchanged[kind]} unchanged")


@org.command("list")
@click.option("--kind", type=click.Choice(["client", "site"]), help="Only clients or only sites.")
@click.option("--client", "client_code", metavar="CODE", help="Only this client and its sites.")
@listing_options
@pass_app
def list_(app: App, kind, client_code, fmt, out):
    """List the clients and sites you can see."""
    from nocctl.services import org as service

    rows = service.list_units(app.session(), app.caller(), kind, client_code)
    emit_rows(rows, service.UNIT_COLUMNS, fmt, out)


@org.command()
@click.option("--client", "client_code", metavar="CODE", help="Only this client.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@pass_app
def tree(app: App, client_code, fmt):
    """Show the organisation as a tree: client → state → city → site."""
    from nocctl.services import org as service

    clients = service.tree(app.session(), app.caller(), client_code)
    if fmt == "json":
        output.write(output.to_json(clients) + "\n")
        return
    if not clients:
        click.echo("(none)")
    for entry in clients:
        owner = f"  [owner: {entry['owner']}]" if entry["owner"] else ""
        say(f"{entry['code']}  {entry['name']}{owner}")
        for s_index, state in enumerate(entry["states"]):
            last_state = s_index == len(entry["states"]) - 1
            say(f"{'└── ' if last_state else '├── '}{state['state']}")
            pad = "    " if last_state else "│   "
            for c_index, city in enumerate(state["cities"]):
                last_city = c_index == len(state["cities"]) - 1
                say(f"{pad}{'└── ' if last_city else '├── '}{city['city']}")
                pad2 = pad + ("    " if last_city else "│   ")
                for i, s in enumerate(city["sites"]):
                    branch = "└── " if i == len(city["sites"]) - 1 else "├── "
                    who = f"  [in charge: {s['in_charge']}]" if s["in_charge"] else ""
                    say(f"{pad2}{branch}{s['code']}  {s['name']}{who}")


COMMANDS = (org,)
