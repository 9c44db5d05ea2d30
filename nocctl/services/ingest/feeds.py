"""Operational feeds (`nocctl ingest --kind KIND`): tickets, work orders, attendance shifts,
devices, geofence and security events, kept in `feed_record` for the snapshot pass.

The fields of each kind and their validation live here; everything else is the alert
pipeline's (`pipeline.Ingest`): streaming input, batches parsed in a forked reader process,
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
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import BadInput
from nocctl.rawsql import RawSQL
from nocctl.services.ingest import formats
from nocctl.services.ingest.formats import RecordError, alert_type_name
from nocctl.services.ingest.pipeline import Ingest, Options, Reject, future_reason
from nocctl.services.rbac import Caller
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
    return value.astimezone(timezone.utc).isoformat(" ", "microseconds")[:26]


def instant_value(text: Instant | None) -> datetime | None:
    """The aware UTC datetime of a FeedItem instant."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


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
    elif kind == "attendance":
        if v[_INDEX["shift_end"]] <= v[_INDEX["shift_start"]]:
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


# ---------------------------------------------------------------- the ingest run

@dataclass
class FeedSummary:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # an older or equal updated_at than stored (or than another version in the batch)
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("received", "inserted", "updated", "unchanged", "rejected")}


_PG_TYPES = {
    "tenant_id": "bigint", "kind": "text", "external_id": "text", "client_id": "bigint", "site_id": "bigint",
    "updated_at": "timestamptz", "received_at": "timestamptz", "status": "text", "priority": "text",
    "title": "text", "opened_at": "timestamptz", "due_at": "timestamptz", "closed_at": "timestamptz",
    "escalated": "boolean", "person": "text", "people_group": "text", "shift_start": "timestamptz",
    "shift_end": "timestamptz", "checked_in_at": "timestamptz", "last_seen_at": "timestamptz",
    "offline_after": "integer", "sync_health": "float8", "occurred_at": "timestamptz", "event_type": "text",
    "severity": "text", "data": "jsonb",
}
_KEY = ("tenant_id", "kind", "external_id")
_BASE = _KEY + ("client_id", "site_id", "updated_at", "received_at")


def statement(kind: str, pg: bool) -> tuple[str, list[str], str]:
    """(head, PostgreSQL types, tail) of the batch upsert of `kind`: its own columns only (the
    others stay NULL for ever, as the kind is part of the key); every one is replaced when
    the incoming record is newer."""
    columns = _BASE + COLUMNS[kind]
    head = f"INSERT INTO feed_record ({', '.join(columns)})"
    tail = ("ON CONFLICT (tenant_id, kind, external_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns if c not in _KEY)
            + " WHERE excluded.updated_at > feed_record.updated_at"
            + (" RETURNING (xmax = 0)" if pg else " RETURNING id"))
    return head, [_PG_TYPES[c] for c in columns], tail


class FeedIngest(Ingest):
    """An ingest run of one feed kind (`options.kind`): the pipeline's driving, placing and
    dead letters; its own parsing and writing."""

    record_type = FeedItem

    def __init__(self, session_factory: Callable[[], Session], caller: Caller, options: Options,
                 on_reject: Callable[[Reject], None] = lambda r: None,
                 on_batch: Callable[[Any], None] = lambda s: None):
        if options.kind not in FEED_KINDS:
            raise ValueError(f"not a feed kind: {options.kind!r}")
        super().__init__(session_factory, caller, options, on_reject, on_batch)
        self.summary = FeedSummary()  # type: ignore[assignment]
        self.kind = options.kind
        self._places: dict[tuple, tuple[int, int | None, str]] = {}  # (site, client) codes -> placed

    def _parser(self):
        return records_with_items, self.kind

    def _prepare(self, session: Session) -> None:
        pass  # no maintenance windows: feeds are facts, not alerts

    def _process(self, session: Session, batch) -> list[Reject]:
        if not self.started:
            self._start(session)
        now = clock.now()
        skew = self.options.max_future_skew
        latest = instant_text(now + timedelta(seconds=skew))  # fixed-width text sorts like the instants
        self._load_units(session, batch)
        rejects: list[Reject] = []
        reject, place, places = self._reject, self._place, self._places
        newest: dict[str, tuple[FeedItem, int, int | None]] = {}
        valid = 0
        for record, source, line, item in batch:
            if isinstance(record, RecordError):
                reject(rejects, source, line, str(record), item)
                continue
            if record.updated_at > latest:  # it would win over every later version, for ever
                at = datetime.fromisoformat(record.updated_at + "+00:00")
                reject(rejects, source, line, future_reason("updated_at", at, now, skew), item)
                continue
            placed = places.get((record.site, record.client))
            if placed is None:
                try:
                    placed = place(record.site, record.client)
                    if placed is None:
                        raise RecordError("no client or site: give one in the record, or --client/--site")
                except RecordError as exc:
                    reject(rejects, source, line, str(exc), item)
                    continue
                places[record.site, record.client] = placed  # the units of a run do not change
            valid += 1
            key = record.external_id
            found = newest.get(key)
            # Several versions of one id in a batch: the newest, the later one on a tie.
            if found is None or record.updated_at >= found[0].updated_at:
                newest[key] = (record, placed[0], placed[1])
        self.summary.received += len(batch)
        self.summary.rejected += len(rejects)
        sql = RawSQL(session)
        inserted = updated = 0
        if newest:
            inserted, updated = self._upsert(session, sql, newest, now)
        self.summary.inserted += inserted
        self.summary.updated += updated
        self.summary.unchanged += valid - inserted - updated
        self._keep_rejects(sql, rejects, now)
        return rejects

    def _upsert(self, session: Session, sql: RawSQL, newest: dict[str, tuple], now: datetime) -> tuple[int, int]:
        tid, kind, as_json = self.actor.tenant_id, self.kind, sql.json
        pick = operator.itemgetter(*[_INDEX[c] for c in COLUMNS[kind][:-1]])
        received = instant_text(now)
        rows = []
        for key in sorted(newest):  # one lock order for concurrent ingests
            record, client_id, site_id = newest[key]
            rows.append((tid, kind, key, client_id, site_id, record.updated_at, received, *pick(record),
                         as_json(record.data)))
        head, types, tail = statement(kind, sql.pg)
        if sql.pg:
            # The instants' text says UTC (timestamptz would otherwise read it in the session's zone).
            instants = [i for i, t in enumerate(types) if t == "timestamptz"]
            for n, row in enumerate(rows):
                row = list(row)
                for i in instants:
                    if row[i] is not None:
                        row[i] += "+00"
                rows[n] = row
            returned = sql.insert(head, types, rows, tail, fetch=True)
            inserted = sum(1 for (new,) in returned if new)
        else:
            # Under the write lock: a row inserted now gets an id above every id there was.
            top = session.execute(text("SELECT coalesce(max(id), 0) FROM feed_record")).scalar_one()
            returned = sql.insert(head, types, rows, tail, fetch=True)
            inserted = sum(1 for (row_id,) in returned if row_id > top)
        return inserted, len(returned) - inserted
