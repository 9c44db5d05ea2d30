"""`nocctl init`, `nocctl db …`, `nocctl config show`."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, say, show_options


@click.command()
@click.option("--admin", metavar="USER", help="Person to make tenant admin (default: your login).")
@show_options
@pass_app
def init(app: App, admin, fmt):
    """Create the database, bring its schema to the latest version, create the tenant and
    make you (your login) its admin. Safe to run again: it only does what is missing."""
    from nocctl.config import mask_url
    from nocctl.services import schema, tenants
    from nocctl.services.rbac import os_login

    engine = app.engine(create=True)
    before = schema.current(engine)
    _migrate(engine, before, "head", schema.upgrade)
    after = schema.current(engine)
    caller = app.caller()
    result = tenants.initialise(app.session(write=True), caller, admin or caller.username or os_login())
    data = {
        "database": mask_url(app.settings.database_url),
        "schema_revision": after,
        "schema_upgraded": before != after,
        "tenant": result.tenant,
        "tenant_created": result.tenant_created,
        "admin": result.admin,
        "admin_created": result.admin_created,
        "capabilities_granted": result.capabilities_granted,
    }
    if fmt == "json":
        emit_object(data, fmt)
        return
    say(f"database  {data['database']}")
    click.echo(f"schema    {after}" + (f" (upgraded from {before or 'empty'})" if before != after else " (up to date)"))
    say(f"tenant    {result.tenant}" + (" (created)" if result.tenant_created else " (exists)"))
    granted = len(result.capabilities_granted)
    plural = "capability" if granted == 1 else "capabilities"
    say(f"admin     {result.admin}" + (f" ({granted} {plural} granted)" if granted else " (already admin)"))


@click.group()
def db():
    """Schema migrations (upgrade, downgrade, current, history) and PostgreSQL's multi-user mode (secure)."""


def _migrate(engine, before: str | None, revision: str, step) -> None:
    """Run a migration `step`; on a database under `nocctl db secure`, the persons' policies
    are dropped first (persons see nothing meanwhile: a failed migration fails closed) and
    everything is re-applied at head, so new tables are owned and secured too."""
    from nocctl.services import db_secure, schema

    if revision == "head" and before is not None and before == schema.head():
        step(engine, revision)  # nothing to migrate: the policies stay as they are
        return
    secured = db_secure.before_migration(engine)
    step(engine, revision)
    if secured:
        if db_secure.after_migration(engine, schema.current(engine) == schema.head()) is None:
            note("row-level security: the persons' policies stay removed below head (persons see nothing);"
                 " `nocctl db upgrade` re-applies them")
        else:
            note("row-level security re-applied (`nocctl db secure`)")


@db.command()
@click.option("--prefix", metavar="NAME",
              help="Prefix of the group roles NAME_owner, NAME_person, NAME_service (default: the database name).")
@show_options
@pass_app
def secure(app: App, prefix, fmt):
    """PostgreSQL multi-user mode: the database itself enforces who sees what.

    Creates the group roles (owner, persons, services; NOLOGIN), makes the owner own every
    table, revokes everything from PUBLIC, grants each group only what its commands need and
    enables row-level security on every table, with the scope rules of `nocctl user grant`
    keyed on the person mapped to the login (`session_user`; see `nocctl user db-role`).
    Run it as the DBA (a superuser, or the tables' owner with CREATEROLE). Safe to run again.
    `db upgrade` re-applies it after migrating a secured database."""
    from nocctl.services import db_secure

    report = db_secure.secure(app.engine(), prefix)
    data = report.as_dict()
    if fmt == "json":
        emit_object(data, fmt)
        return
    roles = report.roles
    created = set(report.roles_created)
    say(f"database  {report.database} (schema {report.schema})")
    for group, name in roles.as_dict().items():
        say(f"{group:<9} {name}" + (" (created)" if name in created else " (exists)"))
    click.echo(f"tables    {len(report.tables)} with row-level security, {len(data['scoped_tables'])} of them by"
               " client/site scope")
    for table in report.unknown_tables:
        say(f"nocctl: table {table} is not nocctl's: closed to persons (owner and services only)", err=True)
    click.echo("secured" if report.changed else "already secured (nothing changed)")


@db.command()
@click.argument("revision", default="head")
@pass_app
def upgrade(app: App, revision):
    """Upgrade the schema to REVISION (default: head). Creates a SQLite file if missing."""
    from nocctl.services import schema

    engine = app.engine(create=True)
    before = schema.current(engine)
    _migrate(engine, before, revision, schema.upgrade)
    after = schema.current(engine)
    click.echo(f"{before or 'empty'} -> {after}" if before != after else f"already at {after}")


@db.command(context_settings={"ignore_unknown_options": True})  # `-1`: a relative revision, not an option
@click.argument("revision")
@pass_app
def downgrade(app: App, revision):
    """Downgrade the schema to REVISION: a revision such as `0011`, `-1` for one step back,
    or `base`, which removes every table (data is lost)."""
    from nocctl.services import schema

    engine = app.engine()
    before = schema.current(engine)
    _migrate(engine, before, revision, schema.downgrade)
    after = schema.current(engine)
    click.echo(f"{before or 'empty'} -> {after or 'base'}" if before != after else f"already at {after or 'base'}")


@db.command()
@pass_app
def current(app: App):
    """Print the schema revision of the database (and whether it is the latest)."""
    from nocctl.services import schema

    now, head = schema.current(app.engine()), schema.head()
    click.echo(f"{now or 'empty'}" + (" (head)" if now == head else f" (head is {head}; run `nocctl db upgrade`)"))


@db.command()
@listing_options
@pass_app
def history(app: App, fmt, out):
    """List the migrations, newest first, marking the database's current one."""
    from nocctl.services import schema

    rows = [
        {"revision": r.revision, "down_revision": r.down_revision, "message": r.message,
         "head": r.is_head, "current": r.is_current}
        for r in schema.history(app.engine())
    ]
    emit_rows(rows, ("revision", "down_revision", "message", "head", "current"), fmt, out)


@db.command(hidden=True)
@click.option("-m", "--message", required=True)
@pass_app
def revision(app: App, message):
    """(developers) Write a migration from the models' difference to the database."""
    from nocctl.services import schema

    schema.autogenerate(app.engine(), message)


@click.group()
def config():
    """Inspect the effective configuration."""


@config.command()
@show_options
@pass_app
def show(app: App, fmt):
    """Print the settings in force (flag > env > config file > default), secrets masked."""
    settings = app.settings
    data = settings.effective()
    if fmt == "json":
        emit_object({**data, "sources": settings.sources}, fmt)
        return
    for key, value in data.items():
        origin = settings.sources.get(key)
        emit = value if not isinstance(value, (dict, list)) else __import__("json").dumps(value)
        say(f"{key:<24} {'' if emit is None else emit}" + (f"   ({origin})" if origin else ""))
    if settings.config_path is None:
        note("no config file found (NOC_CONFIG, ~/.config/nocctl/config.toml, /etc/nocctl/config.toml)")


COMMANDS = (init, db, config)
