"""`nocctl user …`: people and their capabilities."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, say, show_options
from nocctl.vocabulary import CAPABILITIES

PERSON_COLUMNS = ("username", "name", "email", "phone", "active")


@click.group()
def user():
    """People of the tenant and their capabilities."""


@user.command("add")
@click.argument("username")
@click.option("--name", help="Full name.")
@click.option("--email", help="Email address (for notifications).")
@click.option("--phone", help="Phone number.")
@show_options
@pass_app
def add(app: App, username, name, email, phone, fmt):
    """Add a person. Grants come separately (`nocctl user grant`)."""
    from nocctl.services import people

    person = people.add(app.session(write=True), app.caller(), username, name, email, phone)
    emit_object(person.as_dict(), "json") if fmt == "json" else say(person.username)


@user.command("list")
@listing_options
@pass_app
def list_(app: App, fmt, out):
    """List the people you can see: everyone with a tenant-wide view, else yourself and
    those holding a grant over a client or site you see. Email and phone need
    noc:configure over one of the person's clients or sites (else they are empty)."""
    from nocctl.services import people

    emit_rows([p.as_dict() for p in people.list_people(app.session(), app.caller())], PERSON_COLUMNS, fmt, out)


@user.command()
@click.argument("username")
@show_options
@pass_app
def show(app: App, username, fmt):
    """Show a person you can see and their grants over what you see (one you cannot see:
    exit 3, as for nobody)."""
    from nocctl.services import people

    person = people.show(app.session(), app.caller(), username).as_dict()
    if fmt == "json":
        emit_object(person, fmt)
        return
    grants = person.pop("grants")
    emit_object(person, fmt)
    click.echo()
    emit_rows(grants, ("capability", "scope", "unit"), "table")


def _scope_options(func):
    func = click.option("--site", metavar="CODE", help="Only for this site.")(func)
    return click.option("--client", metavar="CODE", help="Only for this client and its sites.")(func)


_CAPABILITY_HELP = "CAPABILITY is one of: " + ", ".join(CAPABILITIES) + "."


@user.command(epilog=_CAPABILITY_HELP)
@click.argument("username")
@click.argument("capability")
@_scope_options
@pass_app
def grant(app: App, username, capability, client, site):
    """Give USERNAME a CAPABILITY, tenant-wide or for one client or site."""
    from nocctl.services import people

    changed = people.grant(app.session(write=True), app.caller(), username, capability, client, site)
    scope = f"client {client}" if client else f"site {site}" if site else "tenant-wide"
    if changed:
        say(f"granted {capability} to {username} ({scope})")
    else:
        note(f"{username} already holds {capability} ({scope}); nothing changed")


@user.command(epilog=_CAPABILITY_HELP)
@click.argument("username")
@click.argument("capability")
@_scope_options
@pass_app
def revoke(app: App, username, capability, client, site):
    """Take a CAPABILITY away from USERNAME (same scope as it was granted with)."""
    from nocctl.services import people

    people.revoke(app.session(write=True), app.caller(), username, capability, client, site)
    scope = f"client {client}" if client else f"site {site}" if site else "tenant-wide"
    say(f"revoked {capability} from {username} ({scope})")


@user.command("can-i", epilog=_CAPABILITY_HELP)
@click.argument("capability")
@_scope_options
@show_options
@pass_app
def can_i(app: App, capability, client, site, fmt):
    """Whether you (or the person of `--as`) hold CAPABILITY, tenant-wide or over a client
    or site. Exit 0 and the grant that allows it, or 77 and the grant to ask for; an
    unknown capability is 2, a client or site you cannot see 3."""
    from nocctl.services import people

    answer = people.can_i(app.session(), app.caller(), capability, client, site)
    if fmt == "json":
        emit_object(answer.as_dict(), fmt)
    elif answer.allowed:
        emit_object({"allowed": "yes", "person": answer.person, "capability": answer.capability,
                     "scope": answer.granted_scope, "unit": answer.granted_unit or ""}, fmt)
    if not answer.allowed:
        raise answer.refusal()


COMMANDS = (user,)
