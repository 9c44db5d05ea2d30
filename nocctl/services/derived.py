"""Derived alerts: what the snapshot pass raises from the operational feeds (DESIGN §3
Metric snapshot; issue "operational feeds"), after writing the window's snapshots.

Conditions, at the window end `end` (definitions shared with the metrics, in
`services/feed_conditions.py`), each with its alert type, entity and severity:

- SLA_BREACH — an open ticket with `due_at < end`; entity `ticket` (external id); severity
  from the priority: P1 CRITICAL, P2 HIGH, P3 MEDIUM, P4 LOW (other or none: MEDIUM).
- TICKET_ESCALATED — an open ticket flagged escalated; entity `ticket`; severity as above.
- WORK_ORDER_OVERDUE — a pending work order with `due_at < end`; entity `work_order`; MEDIUM.
- DEVICE_OFFLINE — a device with status OFFLINE, or unseen for longer than its
  `offline_after` (else `snapshot.device_offline_after`); entity `device`; HIGH.
- SYNC_DEGRADED — a device whose sync_health is under `snapshot.sync_health_min`; entity
  `device`; MEDIUM.
- ATTENDANCE_MISSING — an expected shift (one in progress during the window) with no
  check-in although `shift_start + attendance_grace <= end`; entity `attendance` (the
  record's external id); MEDIUM. It clears with a check-in or when the shift is over.
- ATTENDANCE_ANOMALY — a site whose late check-ins in the window exceed `snapshot.late_rate`
  of its check-ins (attendance_late / attendance_present) with at least
  `snapshot.late_min_shifts` check-ins; entity `site` (its code); LOW.

A condition that holds goes through the normal ingest path as a native trigger record
(handed over ready-made, as the native format would parse it; the writer computes its keys) —
source `nocctl-snapshot`, `occurred_at` = the window end, no event_id, the default dedup key
(md5 of type|site-or-client code|entity type|entity id) — so de-duplication, maintenance
suppression (stored SUPPRESSED; surfacing as NEW when it still holds after the window),
correlation and automatic incidents all apply. It is sent when it has no active alert, when
its active alert is SUPPRESSED, or when the alert's severity or message would change (a
ticket's priority moved): an active derived alert means "the condition held at the last
pass", so conditions that merely go on holding cost nothing (`last_seen_at` is the last
window that changed the alert, `duplicate_count` how many times it changed). An active
alert of source `nocctl-snapshot` whose condition no longer holds (and that no later window
touched) gets a resolve event at the window end. The event keys (dedup key + action +
occurred_at) make a re-sent record of a re-run window a replay that changes nothing. The
pass ingests as the system (`Options.system`): no person, tenant-wide, at the pass's instant
(`Options.now`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.lifecycle import ALERT_ACTIVE_SQL, SUPPRESSED
from nocctl.rawsql import RawSQL
from nocctl.services.feed_conditions import (
    EXPECTED_SHIFT,
    MISSING,
    OPEN_TICKET,
    PENDING_WORK_ORDER,
    Config,
    Unit,
    device_offline,
    params,
)
from nocctl.services.ingest.events import default_dedup_key
from nocctl.services.ingest.formats import Record
from nocctl.services.ingest.options import Options, Reject, Summary
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.rbac import Caller
from nocctl.tunables import DEFAULT_CORRELATION_WINDOW, AutoIncidents

SOURCE = "nocctl-snapshot"
PRIORITY_SEVERITY = {"P1": "CRITICAL", "P2": "HIGH", "P3": "MEDIUM", "P4": "LOW"}
SEVERITY = {"WORK_ORDER_OVERDUE": "MEDIUM", "DEVICE_OFFLINE": "HIGH", "SYNC_DEGRADED": "MEDIUM",
            "ATTENDANCE_MISSING": "MEDIUM", "ATTENDANCE_ANOMALY": "LOW"}
TYPES = ("SLA_BREACH", "TICKET_ESCALATED", "WORK_ORDER_OVERDUE", "DEVICE_OFFLINE", "SYNC_DEGRADED",
         "ATTENDANCE_MISSING", "ATTENDANCE_ANOMALY")


@dataclass
class Outcome:
    conditions: int = 0  # conditions that hold
    unchanged: int = 0  # … whose active alert already says so: not sent again
    resolving: int = 0  # active derived alerts whose condition cleared
    ingest: Summary = field(default_factory=Summary)
    records: list[Condition] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # records ingest refused (a bug if ever)


class Condition(NamedTuple):
    """One condition that holds at the window end: the alert it raises, on its unit. Its
    metadata is built (`metadata`) only for the conditions that are sent to ingest."""

    alert_type: str
    severity: str
    message: str
    unit: Unit  # a site, or a client (client-level feed records)
    entity_type: str
    entity_id: str
    facts: tuple  # (feed, values…): what `metadata` reads

    @property
    def dedup_key(self) -> str:
        """The key ingest gives the record (no dedup_key of its own: the default one)."""
        return default_dedup_key(self.alert_type, self.unit.code, self.entity_type, self.entity_id)


def _clean(value: str | None, limit: int = 200) -> str:
    """One line of single spaces, at most `limit` characters, without a space at the end (the
    native format strips one: a ready-made record says what a parsed one would)."""
    return " ".join((value or "").split())[:limit].rstrip()


def _iso(value: datetime | None) -> str | None:
    return clock.isoformat(value)


# The feed columns the condition scan reads, by position in its rows.
_SCAN = ("kind", "id", "external_id", "client_id", "site_id", "priority", "status", "title", "due_at", "overdue",
         "esc", "last_seen_at", "sync_health", "offline", "person", "people_group", "shift_start", "shift_end")
_KIND_ORDER = {"ticket": 0, "work_order": 1, "device": 2, "attendance": 3}


def _scan(dialect: str) -> str:
    """One scan of the feed for every condition of a record: the four kinds' conditions OR-ed
    (each reads the whole table, so one pass over it instead of four). The flags say which
    of a ticket's or a device's conditions hold."""
    offline = device_offline(dialect)
    return (f"SELECT kind, id, external_id, client_id, site_id, upper(priority), upper(status), title, due_at,"
            f" CASE WHEN due_at < :end THEN 1 ELSE 0 END, CASE WHEN escalated THEN 1 ELSE 0 END,"
            f" last_seen_at, sync_health, CASE WHEN kind = 'device' AND {offline} THEN 1 ELSE 0 END,"
            f" person, people_group, shift_start, shift_end"
            f" FROM feed_record WHERE tenant_id = :tid AND kind IN ('ticket', 'work_order', 'device', 'attendance')"
            f" AND (({OPEN_TICKET} AND (due_at < :end OR escalated))"
            f" OR ({PENDING_WORK_ORDER} AND due_at < :end)"
            f" OR (kind = 'device' AND ({offline} OR sync_health < :sync_min))"
            f" OR ({EXPECTED_SHIFT} AND {MISSING}))")


def conditions(session: Session, tenant_id: int, units: dict[int, Unit], metrics: dict[int, dict[str, Any]],
               start: datetime, end: datetime, config: Config) -> list[Condition]:
    """Every condition that holds at `end`, in a stable order: the feed's by kind (tickets,
    work orders, devices, attendance), each in record order, then the sites' late check-ins."""
    dialect = session.get_bind().dialect.name
    bind = params(tenant_id, start, end, config)
    found: list[Condition] = []
    add = found.append

    def where(client_id: int, site_id: int | None) -> Unit | None:
        unit = units.get(client_id if site_id is None else site_id)
        return unit if unit is not None and unit.kind == ("CLIENT" if site_id is None else "SITE") else None

    instants = [_SCAN.index(c) for c in ("due_at", "last_seen_at", "shift_start", "shift_end")]
    rows = RawSQL(session).fetch(_scan(dialect), bind, instants)
    rows.sort(key=lambda r: (_KIND_ORDER[r[0]], r[1]))
    sync_min = config.sync_health_min
    for (kind, _, external_id, client_id, site_id, priority, status, title, due_at, overdue, esc, last_seen_at,
         sync_health, offline, person, people_group, shift_start, shift_end) in rows:
        unit = where(client_id, site_id)
        if unit is None:
            continue
        if kind == "ticket":
            severity = PRIORITY_SEVERITY.get(priority or "", "MEDIUM")
            cleaned = _clean(title) if title else ""
            title_part = f" — {cleaned}" if cleaned else ""
            label = f"Ticket {external_id}" + (f" ({priority})" if priority else "")
            facts: tuple = ("ticket", external_id, priority, due_at)
            if overdue:
                add(Condition("SLA_BREACH", severity,
                              _clean(f"{label} overdue since {_iso(due_at)}{title_part}", 1000), unit, "ticket",
                              external_id, facts))
            if esc:
                add(Condition("TICKET_ESCALATED", severity, _clean(f"{label} escalated{title_part}", 1000), unit,
                              "ticket", external_id, facts))
        elif kind == "work_order":
            cleaned = _clean(title) if title else ""
            title_part = f" — {cleaned}" if cleaned else ""
            add(Condition("WORK_ORDER_OVERDUE", SEVERITY["WORK_ORDER_OVERDUE"],
                          _clean(f"Work order {external_id} overdue since {_iso(due_at)}{title_part}", 1000), unit,
                          "work_order", external_id, ("work_order", external_id, status, due_at)))
        elif kind == "device":
            facts = ("device", external_id, status, last_seen_at, sync_health)
            if offline:
                why = "status OFFLINE" if status == "OFFLINE" or last_seen_at is None else \
                    f"unseen since {_iso(last_seen_at)}"
                add(Condition("DEVICE_OFFLINE", SEVERITY["DEVICE_OFFLINE"],
                              _clean(f"Device {external_id} offline: {why}", 1000), unit, "device", external_id,
                              facts))
            if sync_health is not None and sync_health < sync_min:
                add(Condition("SYNC_DEGRADED", SEVERITY["SYNC_DEGRADED"],
                              _clean(f"Device {external_id} sync health {sync_health:g} under {sync_min:g}", 1000),
                              unit, "device", external_id, facts))
        else:
            who = _clean(person) or f"attendance record {external_id}"
            group = f" ({_clean(people_group)})" if people_group else ""
            add(Condition("ATTENDANCE_MISSING", SEVERITY["ATTENDANCE_MISSING"],
                          _clean(f"{who}{group} not checked in for the shift from {_iso(shift_start)}", 1000), unit,
                          "attendance", external_id,
                          ("attendance", external_id, person, people_group, shift_start, shift_end)))
    for unit in units.values():
        m = metrics.get(unit.id)
        if unit.kind != "SITE" or m is None:
            continue
        present, lates = m["attendance_present"], m["attendance_late"]
        if present >= config.late_min_shifts and lates > config.late_rate * present:
            add(Condition("ATTENDANCE_ANOMALY", SEVERITY["ATTENDANCE_ANOMALY"],
                          _clean(f"{lates} of {present} check-ins late at {unit.code} ({lates / present:.0%};"
                                 f" threshold {config.late_rate:.0%})", 1000), unit, "site", unit.code,
                          ("site", lates, present, m["attendance_expected"], round(lates / present, 4))))
    return found


def metadata(condition: Condition, at: str | None) -> dict[str, Any]:
    """The alert metadata of a condition: the window end and the feed record's facts."""
    feed, *values = condition.facts
    if feed == "ticket":
        external_id, priority, due_at = values
        return {"window_end": at, "feed": "ticket", "external_id": external_id, "priority": priority,
                "due_at": _iso(due_at)}
    if feed == "work_order":
        external_id, status, due_at = values
        return {"window_end": at, "feed": "work_order", "external_id": external_id, "status": status,
                "due_at": _iso(due_at)}
    if feed == "device":
        external_id, status, last_seen_at, sync_health = values
        return {"window_end": at, "feed": "device", "external_id": external_id, "status": status,
                "last_seen_at": _iso(last_seen_at), "sync_health": sync_health}
    if feed == "attendance":
        external_id, person, people_group, shift_start, shift_end = values
        return {"window_end": at, "feed": "attendance", "external_id": external_id, "person": person,
                "people_group": people_group, "shift_start": _iso(shift_start), "shift_end": _iso(shift_end)}
    lates, present, expected, rate = values
    return {"window_end": at, "late": lates, "present": present, "expected": expected, "late_rate": rate}


def trigger(condition: Condition, end: datetime) -> Record:
    """The ingest record of a condition, ready-made (what the native format would parse its
    JSON into): placed on its site or client by code, at the window end; no keys, so the
    writer computes them (`Ingest._event`), as for any record that comes without."""
    unit = condition.unit
    site = unit.code if unit.kind == "SITE" else None
    return Record("trigger", condition.alert_type, condition.severity, condition.message,
                  None if site else unit.code, site, condition.entity_type, condition.entity_id,
                  metadata(condition, _iso(end)), end, None, SOURCE, None)


def _active(session: Session, tenant_id: int, keys: list[str]) -> dict[str, tuple]:
    """dedup key -> (status, severity, message, last_seen_at) of the active alert of each key,
    whatever raised it (one lookup of the partial unique index per key)."""
    sql = RawSQL(session)
    found = sql.select_in(f"SELECT dedup_key, status, severity, message, last_seen_at FROM alert"
                          f" WHERE tenant_id = {sql.mark} AND {ALERT_ACTIVE_SQL} AND dedup_key {{in}}",
                          [tenant_id], keys)
    # Tuples, as `_derived` gives: `apply` compares a slice with a tuple (a list never equals one).
    return {key: tuple(rest) for key, *rest in found}


def _derived(session: Session, tenant_id: int) -> dict[str, tuple]:
    """The active alerts the pass raised: dedup key -> (status, severity, message, last_seen_at)."""
    rows = RawSQL(session).fetch(
        f"SELECT dedup_key, status, severity, message, last_seen_at FROM alert WHERE tenant_id = :tid"
        f" AND {ALERT_ACTIVE_SQL} AND source = :source", {"tid": tenant_id, "source": SOURCE}, (4,))
    return {key: tuple(rest) for key, *rest in rows}


def cleared(derived: dict[str, tuple], holding: set[str], end: datetime) -> list[Record]:
    """Resolve records for the active derived alerts whose condition no longer holds. An
    alert a later window touched (last_seen_at after `end`: a back-filled run) is left alone."""
    return [Record("resolve", None, None, None, None, None, None, None, None, end, key, SOURCE, None)
            for key in sorted(derived) if key not in holding and derived[key][3] <= end]


def _add(total: Summary, part: Summary) -> None:
    for name, value in part.__dict__.items():
        setattr(total, name, getattr(total, name) + value)


def apply(session: Session, caller: Caller, tenant_id: int, units: dict[int, Unit],
          metrics: dict[int, dict[str, Any]], start: datetime, end: datetime, config: Config,
          correlation_window: int = DEFAULT_CORRELATION_WINDOW, incidents: AutoIncidents | None = None,
          now: datetime | None = None) -> Outcome:
    """Raise the derived alerts that hold at `end` and resolve those that cleared, through
    ingest, inside the session's transaction (the caller commits or rolls back).

    A condition whose active alert already says what it would say (same severity and
    message, not SUPPRESSED) is not sent again: a pass costs what changed, not what holds.
    A SUPPRESSED one is sent each time (ingest keeps it held while a window covers it, and
    surfaces it as NEW after). New alerts go in two steps — the first of each client or site,
    then the rest — so the rest join their correlation group at insert, as ingest plans it,
    instead of being re-pointed at a group's first alert one row at a time afterwards.

    The records reach ingest ready-made (`trigger`: nothing to serialise and parse back),
    with the units the pass loaded, so ingest looks none up.

    `now` is the instant ingest stamps what it writes with (the pass's; None: the clock's)."""
    holding = conditions(session, tenant_id, units, metrics, start, end, config)
    keys = [c.dedup_key for c in holding]
    derived = _derived(session, tenant_id)
    active = dict(derived)  # a key may also be active through another source's alert
    active.update(_active(session, tenant_id, [key for key in keys if key not in derived]))
    outcome = Outcome(len(holding), records=holding)
    first: list[Record] = []
    rest: list[Record] = []
    started: set[int] = set()
    for condition, key in zip(holding, keys, strict=True):
        current = active.get(key)
        if current is None:
            where = condition.unit.id
            (rest if where in started else first).append(trigger(condition, end))
            started.add(where)
        elif current[0] == SUPPRESSED or current[1:3] != (condition.severity, condition.message):
            rest.append(trigger(condition, end))
        else:
            outcome.unchanged += 1
    resolves = cleared(derived, set(keys), end)
    outcome.resolving = len(resolves)
    rest += resolves
    known = {u.code: (u.id, u.kind, u.client_id if u.kind == "SITE" else None) for u in units.values()}
    for records in (first, rest):
        if not records:
            continue
        options = Options("native", batch_size=len(records) + 1, correlation_window=correlation_window,
                          keep_rejects=False, incidents=incidents, system=True, now=now)
        ingest = Ingest(lambda: session, caller, options, on_reject=outcome.rejects.append)
        ingest.units.update(known)  # the pass's own units: nothing to look up
        # One batch, already parsed: no reader process, no JSON.
        batch = [(record, SOURCE, number, record) for number, record in enumerate(records, start=1)]
        _add(outcome.ingest, ingest.run(session=session, batches=[batch]))
    return outcome
