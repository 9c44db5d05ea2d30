"""The ingest run of an operational feed: the alert pipeline's driving, placing and dead
letters (`pipeline.Ingest`), with the feed's own parsing (`feeds`) and writing (one upsert
per batch where the newest `updated_at` wins; see the `feeds` module docstring)."""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from nocctl.models import FeedRecord
from nocctl.rawsql import RawSQL, columns_and_types
from nocctl.services.ingest.feeds import _INDEX, COLUMNS, FeedItem, instant_text, instant_value, records_with_items
from nocctl.services.ingest.formats import RecordError
from nocctl.services.ingest.options import Options, Reject, future_reason
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.rbac import Caller
from nocctl.vocabulary import FEED_KINDS

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


FEEDS = FeedRecord.__table__
_KEY = ("tenant_id", "kind", "external_id")
_BASE = _KEY + ("client_id", "site_id", "updated_at", "received_at")


def statement(kind: str, pg: bool) -> tuple[str, list[str], str]:
    """(head, PostgreSQL types, tail) of the batch upsert of `kind`: its own columns only (the
    others stay NULL for ever, as the kind is part of the key); every one is replaced when
    the incoming record is newer."""
    columns = _BASE + COLUMNS[kind]
    head, types = columns_and_types(FEEDS, columns)
    tail = ("ON CONFLICT (tenant_id, kind, external_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns if c not in _KEY)
            + " WHERE excluded.updated_at > feed_record.updated_at"
            + (" RETURNING (xmax = 0)" if pg else " RETURNING id"))
    return head, types, tail


class FeedIngest(Ingest):
    """An ingest run of one feed kind (`options.kind`): the pipeline's driving, placing and
    dead letters; its own parsing and writing."""

    record_type = FeedItem
    # The run's counts are a feed's, not an alert run's: the pipeline's `summary` is typed as
    # its own Summary, and only composition (the pipeline taking its differing steps and
    # summary as arguments) would type this without an ignore.
    summary: FeedSummary  # type: ignore[assignment]

    def __init__(self, session_factory: Callable[[], Session], caller: Caller, options: Options,
                 on_reject: Callable[[Reject], None] = lambda r: None,
                 on_batch: Callable[[Any], None] = lambda s: None):
        if options.kind not in FEED_KINDS:
            raise ValueError(f"not a feed kind: {options.kind!r}")
        super().__init__(session_factory, caller, options, on_reject, on_batch)
        self.summary = FeedSummary()
        self.kind = options.kind
        self._places: dict[tuple, tuple[int, int | None, str]] = {}  # (site, client) codes -> placed

    def _parser(self):
        return records_with_items, self.kind

    def _prepare(self, session: Session) -> None:
        pass  # no maintenance windows: feeds are facts, not alerts

    def _process(self, session: Session, batch) -> list[Reject]:
        if not self.started:
            self._start(session)
        now = self._now()
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
                at = instant_value(record.updated_at)
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
            inserted, updated = self._write(session, sql, newest, now)
        self.summary.inserted += inserted
        self.summary.updated += updated
        self.summary.unchanged += valid - inserted - updated
        self._keep_rejects(sql, rejects, now)
        return rejects

    def _write(self, session: Session, sql: RawSQL, newest: dict[str, tuple], now: datetime) -> tuple[int, int]:
        tid, kind, as_json = self.actor.tenant_id, self.kind, sql.json
        pick = operator.itemgetter(*[_INDEX[c] for c in COLUMNS[kind][:-1]])
        received = instant_text(now)
        rows: list[Sequence[Any]] = []
        for key in sorted(newest):  # one lock order for concurrent ingests
            record, client_id, site_id = newest[key]
            rows.append((tid, kind, key, client_id, site_id, record.updated_at, received, *pick(record),
                         as_json(record.data)))
        head, types, tail = statement(kind, sql.pg)
        if sql.pg:
            # The instants' text says UTC (timestamptz would otherwise read it in the session's zone).
            instants = [i for i, t in enumerate(types) if t == "timestamptz"]
            for n, row in enumerate(rows):
                values = list(row)
                for i in instants:
                    if values[i] is not None:
                        values[i] += "+00"
                rows[n] = values
            returned = sql.insert(head, types, rows, tail, fetch=True)
            inserted = sum(1 for (new,) in returned if new)
        else:
            # Under the write lock: a row inserted now gets an id above every id there was.
            top = session.execute(text("SELECT coalesce(max(id), 0) FROM feed_record")).scalar_one()
            returned = sql.insert(head, types, rows, tail, fetch=True)
            inserted = sum(1 for (row_id,) in returned if row_id > top)
        return inserted, len(returned) - inserted
