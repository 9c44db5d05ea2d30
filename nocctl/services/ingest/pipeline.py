"""The ingest pipeline: records in, alerts out, in batches of set-based SQL.

Per batch, in one transaction: resolve client/site codes; drop replayed events (their
event keys are inserted with ON CONFLICT DO NOTHING, so concurrent ingests of the same
input apply each event once); upsert triggers against the partial unique index of active
alerts (one statement, never check-then-insert); correlate the alerts just created; apply
acknowledge/resolve events; write audit rows and the dead letters. A trigger that follows a
resolve of the same key in one batch goes to that key's next round, so per-key order is kept.

What a run is given and reports (`Options`, `Summary`, `Reject`) is `options`'; what a batch
holds is `events`'; the planning of correlation groups is `correlation`'s; the
acknowledge/resolve events are `closing`'s; the statuses the upsert writes are `nocctl.lifecycle`'s.

Everything a batch writes is stamped with one instant: `Options.now` when the run is given
one (a cron pass), else the clock read at the start of the batch.
"""
from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import NocError, NotFound, PermissionDenied, TemporaryFailure, from_database_error
from nocctl.lifecycle import (
    ALERT_ACTIVE_SQL,
    ALERT_HOLD,
    ALERT_SURFACE,
    ALERT_UNSNOOZE,
    ALERT_WAKE_SEVERITY,
    NEW,
    SUPPRESSED,
    sql_in,
)
from nocctl.models import Alert, BusinessUnit, IngestEvent, IngestReject
from nocctl.rawsql import RawSQL, columns_and_types
from nocctl.services import access, audit, incidents, maintenance
from nocctl.services.ingest import closing, correlation, formats, reader
from nocctl.services.ingest.batches import read_batches
from nocctl.services.ingest.events import Event, Trigger, default_dedup_key, event_key, with_keys
from nocctl.services.ingest.formats import Record, RecordError
from nocctl.services.ingest.options import Options, Reject, Summary, future_reason
from nocctl.services.ingest.reader import Document
from nocctl.services.rbac import Actor, Caller, authenticate, tenant_id

ALERTS = Alert.__table__
# The upsert's columns, in the order of its rows, and their types (from the table definition).
UPSERT_HEAD, UPSERT_TYPES = columns_and_types(ALERTS, (
    "tenant_id", "client_id", "site_id", "alert_type", "severity", "status", "message", "entity_type", "entity_id",
    "dedup_key", "source", "metadata", "first_seen_at", "last_seen_at", "created_at", "duplicate_count",
    "maintenance_window_id", "correlation_id", "parent_alert_id", "next_escalation_at"))
REJECT_HEAD, REJECT_TYPES = columns_and_types(IngestReject.__table__, (
    "tenant_id", "received_at", "source", "line", "reason", "raw", "raw_hash", "input_format", "defaults",
    "sender_person_id", "sender_login", "sender_system"))
EVENT_HEAD, EVENT_TYPES = columns_and_types(IngestEvent.__table__, ("tenant_id", "event_key", "seen_at"))
# A SUPPRESSED alert still firing after its window: the NOC must see it.
_SURFACE = f"UPDATE alert SET status = '{ALERT_SURFACE.to}' WHERE id = ? AND status IN {sql_in(ALERT_SURFACE.allowed)}"
# The sender reports an active alert muted (Alertmanager: silenced or inhibited): held.
_HOLD = f"UPDATE alert SET status = '{ALERT_HOLD.to}' WHERE id = ? AND status IN {sql_in(ALERT_HOLD.allowed)}"


def _muted_by(record: Record) -> dict[str, Any]:
    """What the audit row of a hold names: the silences and inhibiting alerts (formats)."""
    state = (record.metadata or {}).get("status") or {}
    return {"by": record.source or "ingest", "silenced_by": state.get("silencedBy", []),
            "inhibited_by": state.get("inhibitedBy", [])}


def _is_per_record(exc: Exception) -> bool:
    """Whether a failed batch may be split to find the records behind it: not when the
    database is down or locked, its schema is old, or the caller may not ingest (then the
    run stops with that error's code); yes for a bug, or a value the database refused."""
    if isinstance(exc, (NocError, MemoryError)):
        return False
    # The driver's own exceptions too: `RawSQL` runs statements on the DBAPI cursor, whose
    # errors (a lock or statement timeout, a dropped connection) SQLAlchemy never wraps.
    driver = isinstance(exc, DBAPIError) or type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg")
    mapped = from_database_error(exc) if driver else None
    return not isinstance(mapped, (TemporaryFailure, NotFound, PermissionDenied))


class Ingest:
    """One ingest run. `session_factory` makes write sessions; `on_reject` is told of
    every bad record at once (stderr, the rejects file); `on_batch` after each batch.

    The driving (batches, the reader process, transactions for --strict and --dry-run),
    the placing of records on clients and sites within the ingesting person's scope and the
    dead letters are shared with the operational feeds (`feed_ingest.FeedIngest` overrides the
    parsing, `_prepare` and `_process`)."""

    record_type: Any = Record  # the NamedTuple class the parser yields for a good record (its _make builds one)

    def __init__(self, session_factory: Callable[[], Session], caller: Caller, options: Options,
                 on_reject: Callable[[Reject], None] = lambda r: None,
                 on_batch: Callable[[Summary], None] = lambda s: None):
        self.session_factory = session_factory
        self.caller = caller
        self.options = options
        self.on_reject = on_reject
        self.on_batch = on_batch
        self.summary = Summary()
        self.units: dict[str, tuple[int, str, int | None] | None] = {}  # code -> (id, kind, client_id)
        self.preload: set[str] = set()  # looked up with the next batch's codes (`expect_units`)
        self.started = False
        self.internal_errors = 0  # records kept as dead letters because processing them failed

    def expect_units(self, codes: Iterable[str]) -> None:
        """Look up these client and site codes with the next batch's own, in the same query:
        the server's run of an integration that goes on from an earlier run reads the units
        that run knew again at once, rather than in one query per batch that names a unit it
        has not seen yet."""
        self.preload.update(codes)

    # ------------------------------------------------------------ driving

    def run(self, documents: Iterable[Document] = (), session: Session | None = None,
            batches: Iterable[list] | None = None) -> Summary:
        """Ingest `documents` (or `batches` already begun with `batches.read_batches`, as the
        command line does before it imports the database layer). With `session`, everything
        happens in that session's open transaction and the caller commits; otherwise each
        batch commits on its own (or, for --strict and --dry-run, one transaction decides at
        the end)."""
        single = session is not None or self.options.dry_run or self.options.strict
        outer = session if session is not None else (self.session_factory() if single else None)
        try:
            if outer is not None and not outer.in_transaction():
                outer.begin()
            if batches is None:
                batches = read_batches(documents, *self._parser(), self.options.batch_size, self.record_type._make)
            for batch in batches:
                self._flush(batch, outer)
            if not self.started:  # empty input: still say whether this person may ingest
                with self._transaction(outer) as check:
                    self._start(check)
            if session is None and outer is not None:
                if self.options.dry_run or self.summary.rejected:
                    outer.rollback()
                else:
                    outer.commit()
        finally:
            if session is None and outer is not None:
                outer.close()
        return self.summary

    def _parser(self) -> tuple[Callable[[object, str], Iterator[tuple[object, object]]], str]:
        """(function, its second argument) that yields (item, record or RecordError) for one
        JSON document."""
        return with_keys(formats.records_with_items, self.options.client, self.options.site), self.options.input_format

    def _start(self, session: Session) -> None:
        """Who ingests, where they may, and what else the run needs: read once, inside the
        first batch's transaction (one alert from a script costs one transaction)."""
        if self.options.system:
            self.actor = Actor(tenant_id(session, self.caller.tenant), None, "system",  # type: ignore[arg-type]
                               self.caller.os_user, self.caller.host)
            scope = access.Scope.system(self.actor)
        else:
            self.actor = authenticate(session, self.caller)
            scope = access.load(session, self.actor)
        # Where this person may ingest (77 when nowhere): records are placed (`_place`) and
        # acknowledge/resolve events find their alerts (`_close`) within it.
        self.may_ingest = scope.require_somewhere(access.INGEST)
        self.may_see = scope.view  # a unit neither seen nor ingested for is "unknown" (`_known`)
        self._prepare(session)
        self.started = True

    def _prepare(self, session: Session) -> None:
        """The maintenance windows (suppression)."""
        self.rules = maintenance.Rulebook(maintenance.load_rules(session, self.actor.tenant_id))

    def _flush(self, batch, outer: Session | None) -> None:
        """Write one batch in its own transaction (a savepoint inside `outer`), then tell of
        its rejects. If it fails for a reason that is not the database's or the caller's
        (a bug reached by some record), the batch is retried in halves until the records
        that fail are alone; each is kept as a dead letter `internal error: …` and the rest
        is written: a bug costs the records that reach it, never their neighbours."""
        saved = copy.copy(self.summary)
        try:
            with self._transaction(outer) as session:
                rejects = self._process(session, batch)
        except Exception as exc:  # sorted by _is_per_record, re-raised otherwise
            if not self.started or not _is_per_record(exc):
                raise
            self.summary = saved
            if len(batch) > 1:
                half = len(batch) // 2
                self._flush(batch[:half], outer)
                self._flush(batch[half:], outer)
            else:
                self._keep_internal_error(batch[0], exc, outer)
            return
        for reject in rejects:
            self.on_reject(reject)
        self.on_batch(self.summary)

    @contextmanager
    def _transaction(self, outer: Session | None) -> Iterator[Session]:
        """A savepoint inside `outer`, else a transaction of its own."""
        if outer is not None:
            with outer.begin_nested():
                yield outer
        else:
            with self.session_factory() as session, session.begin():
                yield session

    def _keep_internal_error(self, item, exc: Exception, outer: Session | None) -> None:
        _, source, line, raw = item
        detail = " ".join(str(exc).split())[:300]
        reject = Reject(source, line, f"internal error: {type(exc).__name__}" + (f": {detail}" if detail else ""),
                        reader.raw_text(raw))
        with self._transaction(outer) as session:
            self._keep_rejects(RawSQL(session), [reject], self._now())
        self.summary.received += 1
        self.summary.rejected += 1
        self.internal_errors += 1
        self.on_reject(reject)
        self.on_batch(self.summary)

    # ------------------------------------------------------------ one batch

    def _now(self) -> datetime:
        """The instant a batch is written at: the run's (`Options.now`, a pass's), else the
        clock's, read once per batch (a long interactive ingest goes on with the time)."""
        return self.options.now if self.options.now is not None else clock.now()

    def _process(self, session: Session, batch) -> list[Reject]:
        """Write one batch; return its rejects (told once the batch is committed)."""
        if not self.started:
            self._start(session)
        now = self._now()
        self.latest = now + timedelta(seconds=self.options.max_future_skew)
        rejects: list[Reject] = []
        events: list[Event] = []
        self._load_units(session, batch)
        reject = self._reject

        for record, source, line, item in batch:
            self.summary.received += 1
            if isinstance(record, RecordError):
                reject(rejects, source, line, str(record), item)
                continue
            try:
                events.append(self._event(record, now))
            except RecordError as exc:
                reject(rejects, source, line, str(exc), item)
        self.summary.rejected += len(rejects)

        sql = RawSQL(session)
        events = self._drop_replayed(sql, events, now)
        audit_entries: list[audit.Entry] = []
        for triggers, closes in self._rounds(events):
            self._apply_round(session, sql, triggers, closes, now, audit_entries)

        if audit_entries:
            audit.record_many(session, self.actor, audit_entries, at=now)
        self._keep_rejects(sql, rejects, now)
        return rejects

    @staticmethod
    def _reject(rejects: list[Reject], source: str, line: int | None, reason: str, raw: object) -> None:
        """Note one bad record of the batch (kept with it, told when it is committed). The
        reason is one line of at most 300 characters: it may quote the record's values."""
        if len(reason) > 300 or "\n" in reason:
            reason = " ".join(reason.split())
            reason = reason if len(reason) <= 300 else reason[:150] + " … " + reason[-147:]
        rejects.append(Reject(source, line, reason, reader.raw_text(raw)))

    def _keep_rejects(self, sql: RawSQL, rejects: list[Reject], now: datetime) -> None:
        """The batch's bad records into the dead-letter table, with what `ingest rejects
        retry` needs to re-process them: the input format (a feed's kind) and the defaults."""
        if rejects and self.options.keep_rejects and not (self.options.strict or self.options.dry_run):
            kind = self.options.kind
            tid, fmt = self.actor.tenant_id, self.options.input_format if kind == "alert" else kind
            defaults = sql.json({"client": self.options.client, "site": self.options.site})
            # Who sent it: `rejects retry` re-processes it with the sender's rights, not the retrier's.
            person, login, system = self.actor.person_id, self.caller.os_user[:100], self.options.system
            sender = "system" if system else str(person)
            sql.insert(
                REJECT_HEAD, REJECT_TYPES,
                [(tid, sql.ts(now), r.source[:500], r.line, r.reason, r.raw,
                  hashlib.sha1(f"{sender}\n{r.raw}".encode()).hexdigest(), fmt, defaults, person, login, system)
                 for r in rejects],
                # The same bad record piped again by the same sender is kept once while pending.
                "ON CONFLICT (tenant_id, raw_hash) WHERE status = 'PENDING' DO NOTHING",
            )

    def _load_units(self, session: Session, batch) -> None:
        """The clients and sites the batch names (records carry `client` and `site` codes),
        and those of `expect_units`."""
        wanted = {self.options.client, self.options.site, *self.preload}
        self.preload = set()
        for record, *_ in batch:
            if not isinstance(record, RecordError):
                wanted.add(record.client)
                wanted.add(record.site)
        missing = [code for code in wanted if code is not None and code not in self.units]
        if not missing:
            return
        for code in missing:
            self.units[code] = None
        for i in range(0, len(missing), 500):
            rows = session.execute(select(BusinessUnit.code, BusinessUnit.id, BusinessUnit.kind, BusinessUnit.client_id)
                                   .where(BusinessUnit.tenant_id == self.actor.tenant_id,
                                          BusinessUnit.code.in_(missing[i:i + 500])))
            for code, unit_id, kind, client_id in rows:
                self.units[code] = (unit_id, kind, client_id)

    def _event(self, record: Record, now: datetime) -> Event:
        if record.occurred_at is not None and record.occurred_at > self.latest:
            raise RecordError(future_reason("occurred_at", record.occurred_at, now, self.options.max_future_skew))
        placed = self._place(record.site, record.client)
        occurred_at = record.occurred_at or now
        if placed is None:
            if record.action != "trigger" and record.dedup_key:
                # Acknowledge/resolve by key alone: the alert says where it is (scope checked then).
                return Event(record, None, None, record.dedup_key, occurred_at,
                             event_key(record.dedup_key, record, occurred_at))
            raise RecordError("no client or site: give one in the record, or --client/--site")
        client_id, site_id, unit_code = placed
        if record.keys is not None:  # computed by the reader (`events.with_keys`) for this same unit
            dedup_key, key = record.keys
            assert dedup_key is not None
            return Event(record, client_id, site_id, dedup_key, occurred_at, key)
        dedup_key = record.dedup_key
        if not dedup_key:
            assert record.alert_type is not None  # formats: a record without a dedup_key names its type
            dedup_key = default_dedup_key(record.alert_type, unit_code, record.entity_type, record.entity_id)
        return Event(record, client_id, site_id, dedup_key, occurred_at, event_key(dedup_key, record, occurred_at))

    def _place(self, site_of_record: str | None, client_of_record: str | None) -> tuple[int, int | None, str] | None:
        """(client id, site id or None, code of the unit) for a record's site and client codes
        (--site/--client when it names neither); None when there is neither. Unknown codes, a
        site of another client and a unit outside the person's noc:ingest scope are errors."""
        site_code = site_of_record or (self.options.site if client_of_record is None else None)
        client_code = client_of_record or (self.options.client if site_of_record is None else None)
        if site_code:
            site = self.units.get(site_code)
            # A site always has its client; one the sender may not know of reads as unknown.
            if site is None or site[1] != "SITE" or site[2] is None or not self._known(site[2], site[0]):
                raise RecordError(f"unknown site {site_code!r}")
            site_id, client_id = site[0], site[2]
            if client_code:
                client = self.units.get(client_code)
                if client is None or client[1] != "CLIENT" or not self._known(client[0]):
                    raise RecordError(f"unknown client {client_code!r}")
                if client[0] != client_id:
                    raise RecordError(f"site {site_code!r} does not belong to client {client_code!r}")
            unit_code = site_code
        elif client_code:
            client = self.units.get(client_code)
            if client is None or client[1] != "CLIENT" or not self._known(client[0]):
                raise RecordError(f"unknown client {client_code!r}")
            site_id, client_id, unit_code = None, client[0], client_code
        else:
            return None
        if not self.may_ingest.covers(client_id, site_id):
            raise RecordError(f"{self.actor.username!r} lacks {access.INGEST} for {unit_code!r}")
        return client_id, site_id, unit_code

    def _known(self, client_id: int, site_id: int | None = None) -> bool:
        """Whether the sender may be told that this client or site exists (DESIGN §3a): they
        see it, or may ingest for it (a client: for it or one of its sites). Otherwise a
        record naming it gets the reason of a code that does not exist."""
        if site_id is not None:
            return self.may_ingest.covers(client_id, site_id) or self.may_see.covers(client_id, site_id)
        return self.may_ingest.covers_client(client_id) or self.may_see.covers_client(client_id)

    def _drop_replayed(self, sql: RawSQL, events: list[Event], now: datetime) -> list[Event]:
        """Record the batch's event keys; events whose key was already there are replays.
        ON CONFLICT DO NOTHING makes concurrent ingests of one input apply each event once."""
        keys = {e.event_key for e in events if e.event_key is not None}
        if not keys:
            return events
        tid, seen = self.actor.tenant_id, sql.ts(now)
        # Sorted: concurrent ingests then take row locks in one order and cannot deadlock.
        inserted = sql.insert(EVENT_HEAD, EVENT_TYPES, [(tid, key, seen) for key in sorted(keys)],
                              "ON CONFLICT DO NOTHING RETURNING event_key", fetch=True)
        fresh = {bytes(row[0]) for row in inserted}
        kept = []
        for event in events:
            if event.event_key is None:
                kept.append(event)
            elif event.event_key in fresh:
                fresh.discard(event.event_key)  # a second copy in this batch is a replay too
                kept.append(event)
            else:
                self.summary.replayed += 1
        return kept

    def _rounds(self, events: list[Event]) -> list[tuple[dict[str, Trigger], list[Event]]]:
        """The batch's events in rounds, each its triggers (merged by key) and then its
        acknowledge/resolve events: a trigger that follows an acknowledge or resolve of its key
        goes to the key's next round, so each key's events apply in their order. Keys are
        independent: most batches need two rounds, however many keys re-open in them."""
        rounds: list[tuple[dict[str, Trigger], list[Event]]] = []
        generation: dict[str, int] = {}
        after_close: set[str] = set()  # keys whose latest event so far is an acknowledge/resolve
        for event in events:
            key = event.dedup_key
            number = generation.get(key, 0)
            if event.record.action == "trigger" and key in after_close:
                after_close.discard(key)
                number = generation[key] = number + 1
            if number == len(rounds):
                rounds.append(({}, []))
            triggers, closes = rounds[number]
            if event.record.action == "trigger":
                self._add_trigger(triggers, event)
            else:
                closes.append(event)
                after_close.add(key)
        return rounds

    def _add_trigger(self, triggers: dict[str, Trigger], event: Event) -> None:
        window = None
        if self.rules:
            # A trigger is placed on a client and names its type (`_event`, formats). The
            # windows' matchers read its entity and labels (only for windows already in scope).
            record = event.record
            assert event.client_id is not None and record.alert_type is not None
            window = self.rules.covering(event.client_id, event.site_id, record.alert_type, event.occurred_at,
                                         record.entity_type, record.entity_id, record.metadata)
        found = triggers.get(event.dedup_key)
        if found is None:
            triggers[event.dedup_key] = Trigger(event, event, 1, event.occurred_at,
                                                 window.id if window else None, window is not None)
            return
        found.count += 1
        if event.occurred_at < found.first_seen:
            found.first_seen = event.occurred_at
        if event.occurred_at >= found.latest.occurred_at:
            found.latest = event
        found.all_suppressed = found.all_suppressed and window is not None

    # ------------------------------------------------------------ writing

    def _apply_round(self, session: Session, sql: RawSQL, triggers: dict[str, Trigger], closes: list[Event],
                     now: datetime, audit_entries: list[audit.Entry]) -> None:
        if triggers:
            self._upsert(session, sql, triggers, now, audit_entries)
        if closes:
            self._close(session, sql, closes, audit_entries)

    def _upsert(self, session: Session, sql: RawSQL, triggers: dict[str, Trigger], now: datetime,
                audit_entries: list[audit.Entry]) -> None:
        """One INSERT … ON CONFLICT DO UPDATE per chunk against the partial unique index of
        active alerts. Only unindexed columns are updated, so a duplicate costs one row write;
        the rare moves of first_seen_at (out-of-order input) and SUPPRESSED → NEW follow.
        New alerts carry their correlation group from the start (planned before the insert)."""
        tid, created_at, ts, as_json = self.actor.tenant_id, sql.ts(now), sql.ts, sql.json
        plan = correlation.plan(session, sql, tid, triggers, self.options.correlation_window)
        rows = []
        first_seen: dict[str, object] = {}
        for key, t in sorted(triggers.items()):  # one lock order for concurrent ingests
            first, latest = t.first.record, t.latest.record
            # Keys with an active alert get no plan: the update leaves the group as it is.
            correlation_id, parent, _ = plan.get(key) or (None, None, None)
            first_seen[key] = stamp = ts(t.first_seen)
            rows.append((
                tid, t.first.client_id, t.first.site_id, first.alert_type, latest.severity,
                SUPPRESSED if t.all_suppressed or latest.suppressed else NEW, latest.message, first.entity_type,
                first.entity_id, key,
                first.source, as_json(latest.metadata), stamp, ts(t.latest.occurred_at), created_at,
                t.count - 1, t.window_id if t.all_suppressed else None, correlation_id, parent, stamp,
            ))
        newer = "excluded.last_seen_at >= alert.last_seen_at"
        returned = sql.insert(
            UPSERT_HEAD, UPSERT_TYPES, rows,
            f"ON CONFLICT (tenant_id, dedup_key) WHERE {ALERT_ACTIVE_SQL} DO UPDATE SET"
            " duplicate_count = alert.duplicate_count + excluded.duplicate_count + 1,"
            f" last_seen_at = CASE WHEN {newer} THEN excluded.last_seen_at ELSE alert.last_seen_at END,"
            f" message = CASE WHEN {newer} THEN excluded.message ELSE alert.message END,"
            f" metadata = CASE WHEN {newer} THEN excluded.metadata ELSE alert.metadata END"
            # Severity is indexed (carried by the report indexes, read by the escalation
            # index's rows): assigning it here would rewrite those index entries for every
            # duplicate. It returns as stored, and the few that change are updated below.
            " RETURNING id, dedup_key, status, first_seen_at, duplicate_count, snoozed_until, severity, last_seen_at",
            fetch=True,
        )
        created: dict[str, int] = {}
        quiet: set[str] = set()  # created SUPPRESSED: no incident opens for them
        earlier, surfaced, held, woken, regraded = [], [], [], [], []
        still_snoozed = ts(now)  # the driver's form, as first_seen below
        for alert_id, key, status, stored_first_seen, duplicates, snoozed_until, severity, last_seen in returned:
            t = triggers[key]
            muted = t.latest.record.suppressed  # the sender's word, as of its latest trigger
            # An insert returns the batch's own count; an update adds to an existing one.
            if duplicates == t.count - 1:
                created[key] = alert_id
                if status == SUPPRESSED:
                    quiet.add(key)
                    self.summary.suppressed += 1
                    details = {"maintenance_window_id": t.window_id if t.all_suppressed else None, "dedup_key": key}
                    audit_entries.append(audit.Entry(ALERT_HOLD.audit_action, "alert", alert_id,
                                                     details | (_muted_by(t.latest.record) if muted else {}),
                                                     t.first.client_id, t.first.site_id))
                else:
                    self.summary.created += 1
                self.summary.deduplicated += t.count - 1
                continue
            self.summary.deduplicated += t.count
            latest_severity = t.latest.record.severity
            if severity != latest_severity and last_seen == ts(t.latest.occurred_at):
                # Ours is the latest occurrence (the update kept the later of the two times):
                # its severity holds, and the escalation pass looks again at once.
                regraded.append((latest_severity, alert_id))
            ours = first_seen[key]  # the driver's form compares like the instants (SQLite: fixed-width text)
            if ours < stored_first_seen:
                earlier.append((ours, ours, alert_id, ours))
            if (snoozed_until is not None and snoozed_until > still_snoozed
                    and t.latest.record.severity == ALERT_WAKE_SEVERITY):
                # A CRITICAL occurrence of a snoozed alert: worse than when it was put aside.
                woken.append((alert_id,))
                audit_entries.append(audit.Entry(ALERT_UNSNOOZE.audit_action, "alert", alert_id,
                                                 {"by": "ingest", "reason": f"a {ALERT_WAKE_SEVERITY} occurrence",
                                                  "dedup_key": key}, t.first.client_id, t.first.site_id))
            if status in ALERT_SURFACE.allowed and not t.all_suppressed and not muted:
                surfaced.append((alert_id,))  # still firing after its window (or its silence)
            elif muted and status in ALERT_HOLD.allowed:
                # The upsert holds the row's lock to the end of the transaction: the move is made.
                held.append((alert_id,))
                audit_entries.append(audit.Entry(ALERT_HOLD.audit_action, "alert", alert_id,
                                                 {"from": status, "to": ALERT_HOLD.to, "dedup_key": key,
                                                  **_muted_by(t.latest.record)},
                                                 t.first.client_id, t.first.site_id))
        sql.many("UPDATE alert SET severity = ?, next_escalation_at = first_seen_at WHERE id = ?", regraded)
        sql.many("UPDATE alert SET first_seen_at = ?, next_escalation_at = ? WHERE id = ? AND first_seen_at > ?",
                 earlier)
        sql.many(_SURFACE, surfaced)
        sql.many(_HOLD, held)
        sql.many("UPDATE alert SET snoozed_until = NULL WHERE id = ?", woken)
        # Groups started in this round: their first alert's id is known only now.
        sql.update(ALERTS, ("parent_alert_id",), [(created[root], created[key]) for key, (_, _, root) in plan.items()
                                                   if root is not None and key in created and root in created])
        # A key another ingest resolved meanwhile was inserted without a plan: a group of its own.
        unplanned = {key: str(uuid.uuid4()) for key in created if key not in plan}
        sql.many("UPDATE alert SET correlation_id = ? WHERE id = ?",
                 [(group, created[key]) for key, group in unplanned.items()])
        if created and self.options.incidents is not None:
            audit_entries.extend(incidents.auto_open(session, self.actor, [
                (alert_id, plan[key][0] if key in plan else unplanned[key], triggers[key].latest.record.severity,
                 triggers[key].first.client_id, triggers[key].first.site_id,
                 f"{triggers[key].first.record.alert_type}: {triggers[key].latest.record.message}")
                for key, alert_id in created.items() if key not in quiet], self.options.incidents, now))

    def _close(self, session: Session, sql: RawSQL, closes: list[Event], audit_entries: list[audit.Entry]) -> None:
        """Apply acknowledge and resolve events, in order, to the active alerts of their keys
        within the sender's scope (`closing`)."""
        done = closing.close(session, sql, self.actor, self.may_ingest, closes)
        self.summary.resolved += done.resolved
        self.summary.acknowledged += done.acknowledged
        self.summary.unmatched += done.unmatched
        audit_entries.extend(done.audit_entries)
