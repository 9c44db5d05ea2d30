"""Set-based statements on the DBAPI connection of a Session, for the hot paths (ingest, the
escalation pass, audit rows).

SQLAlchemy's per-parameter processing costs more than the database work when 100k records
a second go through; here values are already in the driver's form and one statement
carries many rows: on SQLite a multi-row VALUES, on PostgreSQL one array per column
expanded by `unnest` (a short, constant statement whatever the row count). Same
connection, so the same transaction as the rest of the batch."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
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
_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)\b")  # a `:name` parameter (not a `::type` cast)


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
                # Binary: dumped in C. JSON documents go as text and are cast one by one as the
                # rows are read: a `jsonb[]` parameter is parsed whole at planning time, into
                # one array as large as all the documents (0.3 s for 11,000 snapshots).
                arrays = ", ".join(f"%b::{'text' if kind == 'jsonb' else kind}[]" for kind in types)
                if "jsonb" in types:
                    names = [f"c{i}" for i in range(len(types))]
                    picked = ", ".join(f"{name}::jsonb" if kind == "jsonb" else name
                                       for name, kind in zip(names, types, strict=True))
                    source = f"SELECT {picked} FROM unnest({arrays}) AS v({', '.join(names)})"
                else:
                    source = f"SELECT * FROM unnest({arrays})"
                cursor.execute(f"{head} {source} {tail}", columns)
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

    def fetch(self, sql: str, bind: dict[str, Any], instants: Sequence[int] = ()) -> list[tuple]:
        """The rows of `sql`, whose parameters are `:name`s from `bind`, as plain tuples (no
        SQLAlchemy row objects or result processing: passes read thousands of rows). Instants
        are bound aware; the columns at positions `instants` come back aware UTC on both
        backends (SQLite keeps instants as fixed-width text, see `ts`)."""
        convert: Callable[[Any], datetime | None]
        cursor = self.dbapi.cursor()
        try:
            if self.pg:
                assert "%" not in sql, "a literal % would be read as a parameter"
                cursor.execute(_NAMED.sub(r"%(\1)s", sql), bind)
                convert = _pg_utc
            else:
                cursor.execute(sql, {k: self.ts(v) if isinstance(v, datetime) else v for k, v in bind.items()})
                convert = _sqlite_utc
            rows: list[tuple] = list(cursor.fetchall())
        finally:
            cursor.close()
        if instants:
            for n, row in enumerate(rows):
                values = list(row)
                for i in instants:
                    values[i] = convert(values[i])
                rows[n] = tuple(values)
        return rows

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


def _pg_utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is UTC else value.astimezone(UTC)


def _sqlite_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)
