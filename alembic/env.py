"""Alembic environment for nocctl: metadata from nocctl.models, the URL from nocctl's own
settings resolution, and a connection handed in by `nocctl db …` when there is one."""
from __future__ import annotations

from alembic import context

from nocctl.models import Base
from nocctl.models.base import on_dialect

config = context.config
target_metadata = Base.metadata


def _render_item(type_, obj, autogen_context):
    """Render nocctl's own column types as plain SQLAlchemy ones, so migrations stay frozen."""
    from nocctl.models.base import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
        render_item=_render_item,
        include_object=on_dialect(connection.dialect.name),  # the other database's indexes left out
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from nocctl import config as settings
    from nocctl.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or settings.resolve().database_url, create=True)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("nocctl migrations run online only: use `nocctl db upgrade`")
run_migrations_online()
