"""Rendering of listings and single objects: table, json, ndjson, csv (DESIGN §4).

Data goes to stdout (or `-o FILE`); nothing here writes logs."""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any

from nocctl.clock import isoformat

LIST_FORMATS = ("table", "json", "ndjson", "csv")
SHOW_FORMATS = ("table", "json")


def plain(value: Any) -> Any:
    """A JSON-ready value: instants as ISO UTC, enums by value, sets sorted."""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    return value


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(plain(value), indent=indent, ensure_ascii=False)


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Render a listing. JSON is one array (empty listing: `[]`), NDJSON one object a line."""
    if fmt == "json":
        return to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n"
    if fmt == "ndjson":
        return "".join(to_json({c: row.get(c) for c in columns}, indent=None) + "\n" for row in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
        return buffer.getvalue()
    from tabulate import tabulate

    if not rows:
        return "(none)\n"
    return tabulate([[_cell(row.get(c)) for c in columns] for row in rows], headers=list(columns), tablefmt="simple") + "\n"


def render_object(obj: Mapping[str, Any], fmt: str) -> str:
    """Render one object (`show` commands): JSON, or a two-column key/value table."""
    if fmt == "json":
        return to_json(obj) + "\n"
    from tabulate import tabulate

    return tabulate([[key, _cell(value)] for key, value in obj.items()], tablefmt="plain") + "\n"


def write(text: str, path: str | None = None, stream: IO[str] | None = None) -> None:
    """Write rendered output to `path` ('-' or None: stdout)."""
    if path and path != "-":
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return
    (stream or sys.stdout).write(text)
