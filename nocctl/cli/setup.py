"""`nocctl init`, `nocctl db …`, `nocctl config show`."""
from __future__ import annotations

import click

from nocctl.cli.common import App, emit_object, emit_rows, listing_options, note, pass_app, show_options


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
    schema.upgrade(engine)
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
    click.echo(f"database  {data['database']}")
    click.echo(f"schema    {after}" + (f" (upgraded from {before or 'empty'})" if before != after else " (up to date)"))
    click.echo(f"tenant    {result.tenant}" + (" (created)" if result.tenant_created else " (exists)"))
    granted = len(result.capabilities_granted)
    plural = "capability" if granted == 1 else "capabilities"
    click.echo(f"admin     {result.admin}" + (f" ({granted} {plural} granted)" if granted else " (already admin)"))


@click.group()
def db():
    """Schema migrations: upgrade, downgrade, current, history."""


@db.command()
@click.argument("revision", default="head")
@pass_app
def upgrade(app: App, revision):
    """Upgrade the schema to REVISION (default: head). Creates a SQLite file if missing."""
    from nocctl.services import schema

    engine = app.engine(create=True)
    before = schema.current(engine)
    schema.upgrade(engine, revision)
    after = schema.current(engine)
    click.echo(f"{before or 'empty'} -> {after}" if before != after else f"already at {after}")


@db.command()
@click.argument("revision")
@pass_app
def downgrade(app: App, revision):
    """Downgrade the schema to REVISION (`base` removes every table: data is lost)."""
    from nocctl.services import schema

    engine = app.engine()
    before = schema.current(engine)
    schema.downgrade(engine, revision)
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
        click.echo(f"{key:<24} {'' if emit is None else emit}" + (f"   ({origin})" if origin else ""))
    if settings.config_path is None:
        note("no config file found (NOC_CONFIG, ~/.config/nocctl/config.toml, /etc/nocctl/config.toml)")


COMMANDS = (init, db, config)
