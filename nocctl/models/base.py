"""The one declarative Base, with a naming convention so every constraint and index has a
name Alembic can alter (SQLite batch mode drops unnamed CHECK constraints)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, Integer, MetaData, Table, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSON documents: JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """An instant stored as UTC (timestamptz on PostgreSQL) and always returned aware.
    Naive values are refused: they would be shifted silently."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; pass a timezone-aware instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every model maps one Table (none a join or a select): `Model.__table__` is typed as
        # the Table it is, for Core statements and the bulk paths. Nothing changes at runtime.
        __table__: ClassVar[Table]


def one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    """A named CHECK that `column` takes one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


# Foreign keys that PostgreSQL checks once per statement instead (migration 0014: the rows
# ingest writes most); SQLite has them as declared.
PG_STATEMENT_CHECKED = frozenset({
    "fk_alert_tenant_id_tenant", "fk_alert_client_id_business_unit", "fk_alert_site_id_business_unit",
    "fk_ingest_event_tenant_id_tenant"})


def on_dialect(dialect: str):
    """Alembic's `include_object` for a database of `dialect`: leaves out the model's indexes
    that exist on the other database only (`Index(...).ddl_if(dialect=...)`) and, on
    PostgreSQL, the foreign keys it checks by statement, so comparing the models with a
    database (drift, autogenerate) sees only that database's own."""
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "foreign_key_constraint" and dialect == "postgresql" and name in PG_STATEMENT_CHECKED:
            return False
        only = getattr(obj, "_ddl_if", None)
        if reflected or type_ != "index" or only is None or only.dialect is None:
            return True
        return dialect == only.dialect if isinstance(only.dialect, str) else dialect in only.dialect
    return include
