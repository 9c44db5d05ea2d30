"""`nocctl user db-role`: map a person to a PostgreSQL login role (multi-user mode)."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, pass_app, say, show_options


@click.command("db-role")
@click.argument("username")
@click.argument("role", required=False)
@click.option("--service", is_flag=True,
              help="Make ROLE a service login (cron passes, ingest feeds): all rows, no person scope.")
@show_options
@pass_app
def db_role(app: App, username, role, service, fmt):
    """Map USERNAME to the PostgreSQL login ROLE (default: the username as an identifier).

    Creates ROLE (LOGIN, no password: authentication is the DBA's — pg_hba.conf, passwords,
    certificates) if it does not exist and makes it a member of this database's persons
    group (`nocctl db secure`), whose row-level security then holds it to USERNAME's grants.
    A session whose login is ROLE acts as USERNAME. With --service, ROLE joins the services
    group instead (every row; passes and feeds; the person is who its ingests act as).
    Needs noc:configure tenant-wide, and a database login that may create roles (the DBA).
    PostgreSQL only."""
    from nocctl.services import db_secure

    mapping = db_secure.map_role(app.session(write=True), app.caller(), username, role, service)
    if fmt == "json":
        emit_object(mapping.as_dict(), fmt)
        return
    made = " (created)" if mapping.role_created else ""
    if mapping.changed:
        say(f"{username} -> PostgreSQL role {mapping.role}{made}, member of the {mapping.group}s group")
    else:
        say(f"{username} is mapped to {mapping.role} already")


def register(user: click.Group) -> None:
    """Put `db-role` on the `nocctl user` group."""
    user.add_command(db_role)


COMMANDS: tuple[click.Command, ...] = ()
