"""Schema migrations, run from code (`nocctl init`, `nocctl db …`). Alembic is imported only here."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nocctl.errors import NotFound, UsageError
from nocctl.resources import alembic_dir

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass
class Revision:
    revision: str
    down_revision: str | Sequence[str] | None  # None for the first; a merge has several
    message: str
    is_head: bool
    is_current: bool


def _config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.attributes["connection"] = connection
    return cfg


def _run_with_fk_off(engine: Engine, action) -> None:
    """Run a migration action on one connection. SQLite's foreign keys are switched off
    while batch operations rebuild tables, as SQLite's ALTER TABLE procedure requires."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        action(_config(conn))
        conn.commit()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _move(engine: Engine, step, revision: str) -> None:
    """Run an upgrade or downgrade; a revision Alembic cannot use is the user's error
    (unknown: exit 3; otherwise, e.g. a relative step past the end: exit 2)."""
    from alembic.util.exc import CommandError

    try:
        _run_with_fk_off(engine, lambda cfg: step(cfg, revision))
    except CommandError as exc:
        if "can't locate revision" in str(exc).lower():
            raise NotFound(f"unknown schema revision {revision!r}", "see `nocctl db history`") from None
        raise UsageError(f"cannot move the schema to {revision!r}: {exc}", "see `nocctl db history`") from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    _move(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    _move(engine, command.downgrade, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "nocctl ships its migrations: there is always a head"
    return found


def history(engine: Engine) -> list[Revision]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    now = current(engine)
    heads = set(script.get_heads())
    return [
        Revision(rev.revision, rev.down_revision, rev.doc or "", rev.revision in heads, rev.revision == now)
        for rev in script.walk_revisions()
    ]


def autogenerate(engine: Engine, message: str) -> None:
    """Developers: write a new migration from the difference between models and database."""
    from alembic import command

    _run_with_fk_off(engine, lambda cfg: command.revision(cfg, message=message, autogenerate=True))


def drift(engine: Engine) -> list:
    """Differences between the models and the database (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from nocctl.models import Base
    from nocctl.models.base import on_dialect

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": on_dialect(conn.dialect.name)})
        return compare_metadata(ctx, Base.metadata)
