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

A condition that holds goes through the normal ingest path as a native trigger record —
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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.lifecycle import ALERT_ACTIVE_SQL, SUPPRESSED
from nocctl.models.base import UTCDateTime
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
    query,
)
from nocctl.services.ingest.events import default_dedup_key
from nocctl.services.ingest.options import Options, Reject, Summary
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.ingest.reader import Document
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
    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # records ingest refused (a bug if ever)


def _clean(value: str | None, limit: int = 200) -> str:
    return " ".join((value or "").split())[:limit]


def _iso(value: datetime | None) -> str | None:
    return clock.isoformat(value)


def conditions(session: Session, tenant_id: int, units: dict[int, Unit], metrics: dict[int, dict[str, Any]],
               start: datetime, end: datetime, config: Config) -> list[dict[str, Any]]:
    """The native trigger records of every condition that holds at `end`, in a stable order."""
    dialect = session.get_bind().dialect.name
    bind = params(tenant_id, start, end, config)
    at = _iso(end)
    records: list[dict[str, Any]] = []

    def add(alert_type: str, severity: str, message: str, client_id: int, site_id: int | None, entity_type: str,
            entity_id: str, metadata: dict[str, Any]) -> None:
        if site_id is not None:
            site = units.get(site_id)
            if site is None or site.kind != "SITE":
                return
            where = {"site": site.code}
        else:
            client = units.get(client_id)
            if client is None or client.kind != "CLIENT":
                return
            where = {"client": client.code}
        records.append({"alert_type": alert_type, "severity": severity, "message": _clean(message, 1000), **where,
                        "entity_type": entity_type, "entity_id": entity_id, "occurred_at": at, "source": SOURCE,
                        "metadata": {"window_end": at, **metadata}})

    where = "FROM feed_record WHERE tenant_id = :tid AND "
    for r in session.execute(query(
            f"SELECT external_id, client_id, site_id, upper(priority) AS priority, title, due_at,"
            f" CASE WHEN due_at < :end THEN 1 ELSE 0 END AS overdue, CASE WHEN escalated THEN 1 ELSE 0 END AS esc"
            f" {where}{OPEN_TICKET} AND (due_at < :end OR escalated) ORDER BY id", due_at=UTCDateTime()), bind):
        severity = PRIORITY_SEVERITY.get(r.priority or "", "MEDIUM")
        title = f" — {_clean(r.title)}" if r.title and _clean(r.title) else ""
        label = f"Ticket {r.external_id}" + (f" ({r.priority})" if r.priority else "")
        meta = {"feed": "ticket", "external_id": r.external_id, "priority": r.priority, "due_at": _iso(r.due_at)}
        if r.overdue:
            add("SLA_BREACH", severity, f"{label} overdue since {_iso(r.due_at)}{title}", r.client_id, r.site_id,
                "ticket", r.external_id, meta)
        if r.esc:
            add("TICKET_ESCALATED", severity, f"{label} escalated{title}", r.client_id, r.site_id, "ticket",
                r.external_id, meta)
    for r in session.execute(query(
            f"SELECT external_id, client_id, site_id, upper(status) AS status, title, due_at"
            f" {where}{PENDING_WORK_ORDER} AND due_at < :end ORDER BY id", due_at=UTCDateTime()), bind):
        title = f" — {_clean(r.title)}" if r.title and _clean(r.title) else ""
        add("WORK_ORDER_OVERDUE", SEVERITY["WORK_ORDER_OVERDUE"],
            f"Work order {r.external_id} overdue since {_iso(r.due_at)}{title}", r.client_id, r.site_id,
            "work_order", r.external_id,
            {"feed": "work_order", "external_id": r.external_id, "status": r.status, "due_at": _iso(r.due_at)})
    offline = device_offline(dialect)
    for r in session.execute(query(
            f"SELECT external_id, client_id, site_id, upper(status) AS status, last_seen_at, sync_health,"
            f" CASE WHEN {offline} THEN 1 ELSE 0 END AS offline"
            f" {where}kind = 'device' AND ({offline} OR sync_health < :sync_min) ORDER BY id",
            last_seen_at=UTCDateTime()), bind):
        meta = {"feed": "device", "external_id": r.external_id, "status": r.status,
                "last_seen_at": _iso(r.last_seen_at), "sync_health": r.sync_health}
        if r.offline:
            why = "status OFFLINE" if r.status == "OFFLINE" or r.last_seen_at is None else \
                f"unseen since {_iso(r.last_seen_at)}"
            add("DEVICE_OFFLINE", SEVERITY["DEVICE_OFFLINE"], f"Device {r.external_id} offline: {why}",
                r.client_id, r.site_id, "device", r.external_id, meta)
        if r.sync_health is not None and r.sync_health < config.sync_health_min:
            add("SYNC_DEGRADED", SEVERITY["SYNC_DEGRADED"],
                f"Device {r.external_id} sync health {r.sync_health:g} under {config.sync_health_min:g}",
                r.client_id, r.site_id, "device", r.external_id, meta)
    for r in session.execute(query(
            f"SELECT external_id, client_id, site_id, person, people_group, shift_start, shift_end"
            f" {where}{EXPECTED_SHIFT} AND {MISSING} ORDER BY id",
            shift_start=UTCDateTime(), shift_end=UTCDateTime()), bind):
        who = _clean(r.person) or f"attendance record {r.external_id}"
        group = f" ({_clean(r.people_group)})" if r.people_group else ""
        add("ATTENDANCE_MISSING", SEVERITY["ATTENDANCE_MISSING"],
            f"{who}{group} not checked in for the shift from {_iso(r.shift_start)}", r.client_id, r.site_id,
            "attendance", r.external_id,
            {"feed": "attendance", "external_id": r.external_id, "person": r.person, "people_group": r.people_group,
             "shift_start": _iso(r.shift_start), "shift_end": _iso(r.shift_end)})
    for unit in units.values():
        m = metrics.get(unit.id)
        if unit.kind != "SITE" or m is None:
            continue
        present, lates = m["attendance_present"], m["attendance_late"]
        if present >= config.late_min_shifts and lates > config.late_rate * present:
            add("ATTENDANCE_ANOMALY", SEVERITY["ATTENDANCE_ANOMALY"],
                f"{lates} of {present} check-ins late at {unit.code} ({lates / present:.0%}; threshold"
                f" {config.late_rate:.0%})", unit.client_id, unit.id, "site", unit.code,
                {"late": lates, "present": present, "expected": m["attendance_expected"],
                 "late_rate": round(lates / present, 4)})
    return records


def dedup_key(record: dict[str, Any]) -> str:
    """The key ingest gives the record (no dedup_key of its own: the default one)."""
    return default_dedup_key(record["alert_type"], record.get("site") or record["client"], record["entity_type"],
                             record["entity_id"])


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
    rows = session.execute(query(
        "SELECT dedup_key, status, severity, message, last_seen_at FROM alert WHERE tenant_id = :tid"
        f" AND {ALERT_ACTIVE_SQL} AND source = :source", last_seen_at=UTCDateTime()),
        {"tid": tenant_id, "source": SOURCE})
    return {key: tuple(rest) for key, *rest in rows}


def cleared(derived: dict[str, tuple], holding: set[str], end: datetime) -> list[dict[str, Any]]:
    """Resolve records for the active derived alerts whose condition no longer holds. An
    alert a later window touched (last_seen_at after `end`: a back-filled run) is left alone."""
    at = _iso(end)
    return [{"action": "resolve", "dedup_key": key, "occurred_at": at, "source": SOURCE}
            for key in sorted(derived) if key not in holding and derived[key][3] <= end]


def _documents(records: Iterable[dict[str, Any]]):
    for number, record in enumerate(records, start=1):
        yield Document(SOURCE, number, None, record)


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

    `now` is the instant ingest stamps what it writes with (the pass's; None: the clock's)."""
    holding = conditions(session, tenant_id, units, metrics, start, end, config)
    keys = [dedup_key(r) for r in holding]
    derived = _derived(session, tenant_id)
    active = dict(derived)  # a key may also be active through another source's alert
    active.update(_active(session, tenant_id, [key for key in keys if key not in derived]))
    outcome = Outcome(len(holding), records=holding)
    first: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    started: set[str] = set()
    for record, key in zip(holding, keys, strict=True):
        current = active.get(key)
        if current is None:
            where = record.get("site") or record["client"]
            (rest if where in started else first).append(record)
            started.add(where)
        elif current[0] == SUPPRESSED or current[1:3] != (record["severity"], record["message"]):
            rest.append(record)
        else:
            outcome.unchanged += 1
    resolves = cleared(derived, set(keys), end)
    outcome.resolving = len(resolves)
    rest += resolves
    for records in (first, rest):
        if not records:
            continue
        # One batch (larger than the input): nothing to parse, so no reader process either.
        options = Options("native", batch_size=len(records) + 1, correlation_window=correlation_window,
                          keep_rejects=False, incidents=incidents, system=True, now=now)
        _add(outcome.ingest, Ingest(lambda: session, caller, options, on_reject=outcome.rejects.append).run(
            _documents(records), session))
    return outcome
