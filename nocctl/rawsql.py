"""Set-based statements on the DBAPI connection of a Session, for the hot paths (ingest, the
escalation pass, audit rows).

SQLAlchemy's per-parameter processing costs more than the database work when 100k records
a second go through; here values are already in the driver's form and one statement
carries many rows: on SQLite a multi-row VALUES, on PostgreSQL one array per column
expanded by `unnest` (a short, constant statement whatever the row count). Same
connection, so the same transaction as the rest of the batch."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session

# Rows per multi-row VALUES on SQLite: a fixed size, so the statement text repeats and the
# driver reuses one prepared statement instead of caching one per batch shape.
SQLITE_ROWS = 500

# The element type of the `unnest` array of a column, by its type as PostgreSQL DDL names it.
# Strings go as text: an explicit cast to varchar(n) would cut a long value silently, where
# the assignment to the column refuses it.
_ARRAY_TYPES = {
    "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "BOOLEAN": "boolean",
    "VARCHAR": "text", "TEXT": "text", "JSONB": "jsonb", "BYTEA": "bytea", "FLOAT": "float8",
    "DOUBLE PRECISION": "float8", "TIMESTAMP WITH TIME ZONE": "timestamptz",
}
_PG = PGDialect()


def pg_type(table: Table, name: str) -> str:
    """The PostgreSQL type `RawSQL.insert` casts column `name` of `table` to, from the table definition."""
    ddl = table.c[name].type.compile(dialect=_PG)
    base = ddl.split("(", 1)[0].strip()
    try:
        return _ARRAY_TYPES[base]
    except KeyError:
        raise ValueError(f"{table.name}.{name}: no array type for {ddl}") from None


def columns_and_types(table: Table, names: Sequence[str]) -> tuple[str, list[str]]:
    """(`INSERT INTO table (names…)`, their PostgreSQL types) for `RawSQL.insert`: both from
    the one list of names and the table definition, so they cannot drift apart."""
    return f"INSERT INTO {table.name} ({', '.join(names)})", [pg_type(table, name) for name in names]


def update_by_id(table: Table, columns: Iterable[str]) -> str:
    """`UPDATE table SET column = ?, … WHERE id = ?` for `RawSQL.many`, setting `columns`
    (the keys of the fields a move sets, from `lifecycle`) in their order, then the id."""
    return f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


class RawSQL:
    def __init__(self, session: Session):
        connection = session.connection()
        self.pg = connection.dialect.name == "postgresql"
        dbapi = connection.connection.dbapi_connection
        # None only once the pool has invalidated the connection, never while the session holds it.
        assert dbapi is not None, "the session's connection is closed"
        self.dbapi = dbapi
        self.mark = "%s" if self.pg else "?"

    def ts(self, value: datetime | None) -> Any:
        """An aware instant as the driver stores it (SQLite: the text SQLAlchemy writes,
        fixed width, so it compares like the instants)."""
        if value is None or self.pg:
            return value
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:26]  # without the +00:00

    @staticmethod
    def json(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def insert(self, head: str, types: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
               fetch: bool = False) -> list[tuple]:
        """`head` (INSERT INTO t (columns)) with `rows`, then `tail` (ON CONFLICT …, RETURNING …).
        `types` are the PostgreSQL types of the columns (for the arrays of `unnest`)."""
        if not rows:
            return []
        cursor = self.dbapi.cursor()
        out: list[tuple] = []
        try:
            if self.pg:
                columns = [list(column) for column in zip(*rows, strict=True)]
                arrays = ", ".join(f"%b::{kind}[]" for kind in types)  # binary: dumped in C
                cursor.execute(f"{head} SELECT * FROM unnest({arrays}) {tail}", columns)
                if fetch:
                    out.extend(cursor.fetchall())
                return out
            per = SQLITE_ROWS
            row_marks = "(" + ", ".join("?" * len(types)) + ")"
            for i in range(0, len(rows), per):
                chunk = rows[i:i + per]
                cursor.execute(f"{head} VALUES {', '.join([row_marks] * len(chunk))} {tail}",
                               [value for row in chunk for value in row])
                if fetch:
                    out.extend(cursor.fetchall())
            return out
        finally:
            cursor.close()

    def select_in(self, sql: str, params: Sequence[Any], values: Sequence[Any], kind: str = "text") -> list[tuple]:
        """`sql` with `{in}` standing for "column IN the values" (PostgreSQL: = ANY(array))."""
        cursor = self.dbapi.cursor()
        try:
            out: list[tuple] = []
            if self.pg:
                cursor.execute(sql.replace("{in}", f"= ANY(%s::{kind}[])"), [*params, list(values)])
                out.extend(cursor.fetchall())
                return out
            for i in range(0, len(values), 900):
                chunk = values[i:i + 900]
                cursor.execute(sql.replace("{in}", f"IN ({', '.join('?' * len(chunk))})"), [*params, *chunk])
                out.extend(cursor.fetchall())
            return out
        finally:
            cursor.close()

    def update(self, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Set `columns` of the rows of `table` by id, each row (values…, id): on PostgreSQL one
        statement joining the arrays of `unnest` (executemany runs one per row), on SQLite
        executemany. In no particular order: for rows this transaction already holds (it
        wrote them), where the order of taking locks cannot matter."""
        if not rows:
            return
        if not self.pg:
            self.many(update_by_id(table, columns), rows)
            return
        names = [*columns, "id"]
        arrays = ", ".join(f"%b::{pg_type(table, name)}[]" for name in names)
        sets = ", ".join(f"{name} = v.{name}" for name in columns)
        cursor = self.dbapi.cursor()
        try:
            cursor.execute(f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)})"
                           f" WHERE {table.name}.id = v.id", [list(column) for column in zip(*rows, strict=True)])
        finally:
            cursor.close()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """executemany of one statement (UPDATEs by id); `?` marks the parameters."""
        if rows:
            cursor = self.dbapi.cursor()
            try:
                cursor.executemany(sql.replace("?", self.mark), rows)
            finally:
                cursor.close()
