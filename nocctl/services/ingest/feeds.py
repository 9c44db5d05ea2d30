"""Operational feeds (`nocctl ingest --kind KIND`): tickets, work orders, attendance shifts,
devices, geofence and security events, kept in `feed_record` for the snapshot pass.

The fields of each kind and their validation live here (no database: the reader process
imports this module alone); the writing is `feed_ingest.FeedIngest`; everything else is the
alert pipeline's (`pipeline.Ingest`): streaming input, batches parsed in a forked reader process,
client/site codes resolved within the person's noc:ingest scope, rejects on stderr, in
`--rejects FILE` and in the dead-letter table (with the kind as `input_format`, so `ingest
rejects retry` re-processes them as that kind), `--strict`, `--dry-run`.

Writing: one `INSERT … ON CONFLICT (tenant_id, kind, external_id) DO UPDATE … WHERE
excluded.updated_at > feed_record.updated_at` per batch (per 500 rows on SQLite): the newest
`updated_at` wins, an older or equal one leaves the stored record as it is, so a feed can be
replayed in any order and gives the same table. Several versions of one id in a batch are
reduced to the newest first (ties: the later one in the input). RETURNING tells inserts from
updates: `xmax = 0` on PostgreSQL; on SQLite a new row's id is above the table's largest id
read before the statement (ids are the rowid, allocated as max + 1, under the write lock
that write sessions take when they begin). Rows the WHERE skipped return nothing: unchanged.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple, overload

from nocctl import clock
from nocctl.errors import BadInput
from nocctl.services.ingest import formats
from nocctl.services.ingest.formats import RecordError, alert_type_name
from nocctl.vocabulary import FEED_KINDS, SEVERITIES

TICKET_PRIORITIES = ("P1", "P2", "P3", "P4")
TICKET_STATUSES = ("OPEN", "IN_PROGRESS", "ON_HOLD", "RESOLVED", "CLOSED")
WORK_ORDER_STATUSES = ("OPEN", "ASSIGNED", "IN_PROGRESS", "COMPLETED", "CANCELLED")
DEVICE_STATUSES = ("ONLINE", "OFFLINE", "UNKNOWN")
GEOFENCE_EVENTS = ("ENTER", "EXIT", "BREACH")
MAX_SECONDS = 2**31 - 1  # offline_after is an INTEGER column


Instant = str  # UTC, fixed width: "2026-03-02 03:30:00.000000" (see `instant_text`)


class FeedItem(NamedTuple):
    """One validated feed record: the columns of `feed_record` (NULL where the kind has no
    such field) plus the client/site codes, which the pipeline resolves to ids.

    Instants are UTC text of fixed width, which sorts like the instants: SQLite stores
    exactly that, PostgreSQL reads it with `+00` appended, and it travels from the reader
    process several times cheaper than a datetime (the hot path of a large feed)."""

    external_id: str
    updated_at: Instant
    client: str | None
    site: str | None
    status: str | None
    priority: str | None
    title: str | None
    opened_at: Instant | None
    due_at: Instant | None
    closed_at: Instant | None
    escalated: bool | None
    person: str | None
    people_group: str | None
    shift_start: Instant | None
    shift_end: Instant | None
    checked_in_at: Instant | None
    last_seen_at: Instant | None
    offline_after: int | None
    sync_health: float | None
    occurred_at: Instant | None
    event_type: str | None
    severity: str | None
    data: dict | None


def instant_text(value: datetime) -> Instant:
    """An aware instant in the FeedItem form (the text SQLAlchemy writes on SQLite)."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@overload
def instant_value(text: Instant) -> datetime: ...
@overload
def instant_value(text: None) -> None: ...
def instant_value(text: Instant | None) -> datetime | None:
    """The aware UTC datetime of a FeedItem instant."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


_INDEX = {name: i for i, name in enumerate(FeedItem._fields)}
_WIDTH = len(FeedItem._fields)
_DEVICE_TYPE = -1  # not a column: kept in data


# ---------------------------------------------------------------- value converters
# Each takes a value that is not None and the input key (for the message).

def _text(limit: int | None) -> Callable[[Any, str], str | None]:
    def convert(value: Any, key: str) -> str | None:
        if type(value) is not str:
            raise RecordError(f"{key} must be a string, not {type(value).__name__}")
        value = value.strip()
        if limit is not None and len(value) > limit:
            raise RecordError(f"{key} is longer than {limit} characters")
        return value or None
    return convert


def _ident(value: Any, key: str) -> str | None:
    """An external id: a string, or an integer kept as its decimal text."""
    if type(value) is int:
        return str(value)
    if type(value) is not str:
        raise RecordError(f"{key} must be a string or an integer, not {type(value).__name__}")
    value = value.strip()
    if len(value) > 200:
        raise RecordError(f"{key} is longer than 200 characters")
    return value or None


def _instant(value: Any, key: str) -> Instant:
    return formats.instant(value, key).isoformat(" ", "microseconds")[:26]  # already UTC


_SEPARATORS = re.compile(r"[\s\-]+")


def _enum(values: tuple[str, ...]) -> Callable[[Any, str], str]:
    """One of `values`, in any case (`in progress` and `in-progress` read as IN_PROGRESS)."""
    allowed = frozenset(values)
    listing = ", ".join(values)

    def convert(value: Any, key: str) -> str:
        if type(value) is str:
            if value in allowed:
                return value
            name = _SEPARATORS.sub("_", value.strip()).upper()
            if name in allowed:
                return name
        raise RecordError(f"{key} must be one of {listing}, not {value!r}")
    return convert


def _flag(value: Any, key: str) -> bool:
    if type(value) is bool:
        return value
    raise RecordError(f"{key} must be true or false, not {value!r}")


def _health(value: Any, key: str) -> float:
    if type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 100:
        return float(value)
    raise RecordError(f"{key} must be a number from 0 to 100, not {value!r}")


def _duration(value: Any, key: str) -> int:
    """Seconds: an integer, or a duration such as 15m, 1h30m, 900."""
    if type(value) is int:
        seconds = value
    elif type(value) is str:
        try:
            seconds = clock.parse_duration(value, key)
        except BadInput as exc:
            raise RecordError(f"{exc} (e.g. 15m, 1h, or seconds)") from None
    else:
        raise RecordError(f"{key} must be a duration such as 15m, or seconds, not {value!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise RecordError(f"{key} must be more than 0 seconds and at most {MAX_SECONDS}, not {value!r}")
    return seconds


def _object(value: Any, key: str) -> dict:
    if type(value) is dict:
        return value
    raise RecordError(f"{key} must be an object, not {type(value).__name__}")


def _event_name(value: Any, key: str) -> str:
    """A security event's type, UPPER_SNAKE like an alert type (door forced → DOOR_FORCED)."""
    return alert_type_name(value, key)


# ---------------------------------------------------------------- the kinds
# input key -> (column of FeedItem, converter, required). Every kind also has the common
# fields: id, updated_at, client, site, metadata.

_CODE = _text(64)
COMMON = {
    "id": ("external_id", _ident, True),
    "updated_at": ("updated_at", _instant, True),
    "client": ("client", _CODE, False),
    "site": ("site", _CODE, False),
    "metadata": ("data", _object, False),
}

KIND_FIELDS: dict[str, dict[str, tuple[str, Callable[[Any, str], Any], bool]]] = {
    "ticket": {
        "priority": ("priority", _enum(TICKET_PRIORITIES), False),
        "status": ("status", _enum(TICKET_STATUSES), False),
        "opened_at": ("opened_at", _instant, False),
        "due_at": ("due_at", _instant, False),
        "closed_at": ("closed_at", _instant, False),
        "escalated": ("escalated", _flag, False),
        "title": ("title", _text(None), False),
    },
    "work_order": {
        "status": ("status", _enum(WORK_ORDER_STATUSES), False),
        "due_at": ("due_at", _instant, False),
        "completed_at": ("closed_at", _instant, False),
        "title": ("title", _text(None), False),
    },
    "attendance": {
        "person": ("person", _text(200), True),
        "group": ("people_group", _text(100), False),
        "shift_start": ("shift_start", _instant, True),
        "shift_end": ("shift_end", _instant, True),
        "checked_in_at": ("checked_in_at", _instant, False),
    },
    "device": {
        "status": ("status", _enum(DEVICE_STATUSES), False),
        "last_seen_at": ("last_seen_at", _instant, False),
        "offline_after": ("offline_after", _duration, False),
        "sync_health": ("sync_health", _health, False),
        "device_type": ("device_type", _text(64), False),  # kept in data
        "name": ("title", _text(None), False),
    },
    "geofence": {
        "person": ("person", _text(200), False),
        "event": ("event_type", _enum(GEOFENCE_EVENTS), False),
        "occurred_at": ("occurred_at", _instant, True),
    },
    "security": {
        "event": ("event_type", _event_name, True),
        "severity": ("severity", _enum(SEVERITIES), False),
        "occurred_at": ("occurred_at", _instant, True),
        "message": ("title", _text(None), False),
    },
}
assert set(KIND_FIELDS) == set(FEED_KINDS)

# Per kind: key -> (index in FeedItem or _DEVICE_TYPE, converter), the required keys, and
# the columns the kind writes (besides tenant, kind, external id, units, times; data last).
_TABLES: dict[str, dict[str, tuple[int, Callable]]] = {}
_REQUIRED: dict[str, tuple[tuple[str, int], ...]] = {}
COLUMNS: dict[str, tuple[str, ...]] = {}
for _kind, _fields in KIND_FIELDS.items():
    _all = {**COMMON, **_fields}
    _TABLES[_kind] = {key: (_DEVICE_TYPE if column == "device_type" else _INDEX[column], convert)
                      for key, (column, convert, _) in _all.items()}
    _REQUIRED[_kind] = tuple((key, _INDEX[column]) for key, (column, _, required) in _all.items() if required)
    COLUMNS[_kind] = tuple(dict.fromkeys(column for column, _, _ in _fields.values() if column in _INDEX)) + ("data",)
del _kind, _fields, _all


def _checks(kind: str, v: list) -> None:
    """Rules across fields (times in order)."""
    if kind == "ticket":
        opened = v[_INDEX["opened_at"]]
        if opened is not None:
            if v[_INDEX["closed_at"]] is not None and v[_INDEX["closed_at"]] < opened:
                raise RecordError("closed_at is before opened_at")
            if v[_INDEX["due_at"]] is not None and v[_INDEX["due_at"]] < opened:
                raise RecordError("due_at is before opened_at")
    elif kind == "attendance" and v[_INDEX["shift_end"]] <= v[_INDEX["shift_start"]]:
        raise RecordError("shift_end must be after shift_start")


_CHECKED = frozenset(("ticket", "attendance"))


def parse(record: Any, kind: str) -> FeedItem:
    """Validate one JSON record of `kind` into a FeedItem, or raise RecordError."""
    if type(record) is not dict:
        raise RecordError(f"a record must be a JSON object, not {type(record).__name__}")
    table = _TABLES[kind]
    if not table.keys() >= record.keys():
        raise RecordError(f"unknown field(s) for {kind}: {', '.join(sorted(record.keys() - table.keys()))}")
    values: list[Any] = [None] * _WIDTH
    device_type = None
    for key, value in record.items():
        if value is None:
            continue
        index, convert = table[key]
        if index >= 0:
            values[index] = convert(value, key)
        else:
            device_type = convert(value, key)
    for key, index in _REQUIRED[kind]:
        if values[index] is None:
            raise RecordError(f"{key} is required")
    if kind in _CHECKED:
        _checks(kind, values)
    if device_type is not None:
        values[-1] = {**(values[-1] or {}), "device_type": device_type}
    return FeedItem._make(values)


def records_with_items(document: Any, kind: str) -> Iterator[tuple[Any, FeedItem | RecordError]]:
    """The records of one document (an array holds several), each with the JSON it came from;
    a bad record yields its RecordError in its place."""
    if type(document) is list:
        for item in document:
            yield from records_with_items(item, kind)
        return
    try:
        yield document, parse(document, kind)
    except RecordError as exc:
        yield document, exc
