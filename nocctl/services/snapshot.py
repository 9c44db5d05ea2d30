"""The metric snapshot pass (`nocctl snapshot run`, DESIGN §3 Metric snapshot, §6) and the
snapshots it keeps (`nocctl snapshot list/show`).

The window ends at `--now` aligned down to the window size on the epoch (5m: 12:07:30 →
end 12:05, window [12:00, 12:05)); `now` exactly on a boundary ends the window there. For
every tenant the pass writes one snapshot per client and one per site for that window,
computed with set-based SQL: one GROUP BY (client, site) query per feed kind and one over
the alerts, each giving one row per unit (the sub-counts by priority, status, people group
and severity as columns or a JSON object), read as plain rows on the DBAPI cursor; a site's
row is its group, a client's row adds up its sites' groups and its client-level records
(those without a site). Feed rows never travel to Python, only the per-unit groups. Units
without any record get a row of zeros, so "nothing open" is visible.

Metrics (a JSON object, snake_case keys, always all present). `end`/`start` are the
window's end and start; the feeds are counted as they stand when the pass runs:

- `tickets_open`: tickets whose status is not RESOLVED or CLOSED, opened before `end` (or
  with no opened_at). `tickets_overdue`: open, `due_at < end`. `tickets_escalated`: open and
  flagged escalated. `tickets_by_priority` {P1, P2, P3, P4, other}: open tickets by priority.
- `work_orders_pending`: work orders whose status is not COMPLETED or CANCELLED.
  `work_orders_overdue`: pending, `due_at < end`. `work_orders_by_status` {STATUS: count}:
  the pending ones by status (the mix of the open workload).
- Attendance, over the shifts *expected* in the window — started before `end` and not
  ended by `start` (`shift_start < end` and `shift_end > start` or no shift_end):
  `attendance_expected`; `attendance_present`: checked in before `end`; `attendance_late`:
  present, checked in more than the grace (`snapshot.attendance_grace`, 15m) after
  shift_start; `attendance_missing`: not checked in before `end` although the grace has
  passed (`shift_start + grace <= end`). `attendance_by_group` {people group: {expected,
  present, late, missing}} (records without a group under "unassigned").
- `devices_total`: device records. `devices_offline`: status OFFLINE, or last seen more than
  its `offline_after` (else `snapshot.device_offline_after`, 15m) before `end`
  (`last_seen_at + threshold < end`; never seen and not OFFLINE: not offline).
  `sync_health_score`: the mean sync_health of the unit's devices that report one, rounded
  to 2 places; null when none does. `sync_health_devices`: how many report one (the
  score's weight when scores are combined).
- `geofence_events`, `security_anomalies`: geofence / security events with
  `start <= occurred_at < end`.
- `alerts_open`, `alerts_open_by_severity` {CRITICAL, HIGH, MEDIUM, LOW, INFO}: alerts first
  seen before `end` that are active (not RESOLVED) or were resolved at or after `end` —
  except SUPPRESSED ones (held by a maintenance window, not the NOC's workload), counted in
  `alerts_suppressed`.

Dimensions on the row: client, site, city, state, officer in charge (a site's
site-in-charge, a client's owner: their username as it was), and `in_maintenance`: a
maintenance window (suppress-all or any alert type) of the unit — a site's own, its
client's or the tenant's; a client's own or the tenant's — covers the window end.

A snapshot is written once: `INSERT … ON CONFLICT (tenant, unit, window end) DO NOTHING`,
so re-running a window changes nothing, even if the feeds changed meanwhile (a snapshot is
what the pass saw then). A window whose units all have their snapshot is not computed again
(a re-run costs the derived alerts only); one that gained a unit since is computed and the
new unit's snapshot written. The derived alerts of a re-run follow the feeds as they are
then, except the late check-ins of ATTENDANCE_ANOMALY, which are the sites' snapshots'.
After the snapshots the pass raises and resolves the derived alerts (`services/derived.py`),
in the same transaction per tenant; a dry run rolls it all back.
Everything the pass writes is stamped with its `--now`, the derived alerts' ingest included
(`Options.now`)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import NotFound
from nocctl.lifecycle import ALERT_ACTIVE, RESOLVED, SUPPRESSED, sql_in
from nocctl.models import BusinessUnit, Snapshot
from nocctl.rawsql import RawSQL
from nocctl.services import access, derived, maintenance, passes
from nocctl.services.access import Scope
from nocctl.services.feed_conditions import (
    EXPECTED_SHIFT,
    MISSING,
    OPEN_TICKET,
    PENDING_WORK_ORDER,
    PRESENT,
    Config,
    Unit,
    device_offline,
    late,
    params,
)
from nocctl.services.ingest.options import Reject
from nocctl.services.passes import TenantRef
from nocctl.services.rbac import Caller
from nocctl.tunables import DEFAULT_CORRELATION_WINDOW, AutoIncidents
from nocctl.vocabulary import SEVERITIES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRIORITIES = ("P1", "P2", "P3", "P4")
NO_GROUP = "unassigned"
SNAPSHOT_CHUNK = 2000  # snapshots per INSERT (`write`)

LIST_COLUMNS = ("id", "scope", "client", "site", "window_start", "window_end", "city", "state", "officer_in_charge",
                "in_maintenance", "metrics", "created_at")
HEADLINE = ("tickets_open", "tickets_overdue", "work_orders_overdue", "attendance_missing", "devices_offline",
            "sync_health_score", "alerts_open")
TABLE_COLUMNS = ("id", "window_end", "scope", "client", "site", "state", "city", "officer_in_charge",
                 "in_maintenance", *HEADLINE)


# ---------------------------------------------------------------- window

def align(now: datetime, window: int) -> tuple[datetime, datetime]:
    """[start, end) of the window ending at `now` aligned down to `window` seconds on the epoch."""
    size = timedelta(seconds=window)
    end = EPOCH + ((now - EPOCH) // size) * size
    return end - size, end


# ---------------------------------------------------------------- units

def load_units(session: Session, tenant_id: int) -> dict[int, Unit]:
    """The tenant's clients and sites by id, with the officer in charge of each (a site's
    site-in-charge, a client's owner), read as plain rows."""
    rows = RawSQL(session).fetch("SELECT u.id, u.kind, u.code, u.client_id, u.city, u.state,"
                          " CASE WHEN u.kind = 'SITE' THEN c.username ELSE o.username END"
                          " FROM business_unit u LEFT JOIN person c ON c.id = u.site_in_charge_id"
                          " LEFT JOIN person o ON o.id = u.owner_id WHERE u.tenant_id = :tid ORDER BY u.id",
                 {"tid": tenant_id})
    return {unit_id: Unit(unit_id, kind, code, unit_id if kind == "CLIENT" else client_id, city, state, officer)
            for unit_id, kind, code, client_id, city, state, officer in rows}


# ---------------------------------------------------------------- metrics

def blank() -> dict[str, Any]:
    return {
        "tickets_open": 0, "tickets_overdue": 0, "tickets_escalated": 0,
        "tickets_by_priority": {p: 0 for p in (*PRIORITIES, "other")},
        "work_orders_pending": 0, "work_orders_overdue": 0, "work_orders_by_status": {},
        "attendance_expected": 0, "attendance_present": 0, "attendance_late": 0, "attendance_missing": 0,
        "attendance_by_group": {},
        "devices_total": 0, "devices_offline": 0, "sync_health_score": None, "sync_health_devices": 0,
        "geofence_events": 0, "security_anomalies": 0,
        "alerts_open": 0, "alerts_open_by_severity": {s: 0 for s in SEVERITIES}, "alerts_suppressed": 0,
    }


# The scalar metrics a unit's groups add up, in the order of the flat row `compute` tallies
# (a client's is its own plus its sites'); the maps and the health score are apart.
_COUNTS = ("tickets_open", "tickets_overdue", "tickets_escalated", *(f"P:{p}" for p in (*PRIORITIES, "other")),
           "work_orders_pending", "work_orders_overdue",
           "attendance_expected", "attendance_present", "attendance_late", "attendance_missing",
           "devices_total", "devices_offline", "health_sum", "sync_health_devices",
           "geofence_events", "security_anomalies",
           "alerts_open", *(f"S:{s}" for s in SEVERITIES), "alerts_suppressed")
_AT = {name: i for i, name in enumerate(_COUNTS)}
_ATTENDANCE = ("expected", "present", "late", "missing")


def _object_agg(dialect: str, key: str, value: str) -> str:
    """SQL: the JSON text of the object {key: value} over a group's rows."""
    if dialect == "postgresql":
        return f"json_object_agg({key}, {value})::text"
    return f"json_group_object({key}, {value})"


def _array(dialect: str, *values: str) -> str:
    return f"{'json_build_array' if dialect == 'postgresql' else 'json_array'}({', '.join(values)})"


def statements(dialect: str) -> list[tuple[str, str]]:
    """(what, SQL) of the metrics: one row per (client, site) each, the few sub-counts (by
    priority, by work-order status, by people group, by severity) as columns or a JSON
    object, so the rows to tally are as many as the units, not units × sub-keys."""
    where = "FROM feed_record WHERE tenant_id = :tid AND "
    prio = "upper(priority)"
    by_priority = ", ".join(f"sum(CASE WHEN {prio} = '{p}' THEN 1 ELSE 0 END)" for p in PRIORITIES)
    by_severity = ", ".join(f"sum(CASE WHEN status <> '{SUPPRESSED}' AND severity = '{s}' THEN 1 ELSE 0 END)"
                            for s in SEVERITIES)
    return [
        ("tickets", (f"SELECT client_id, site_id, count(*), sum(CASE WHEN due_at < :end THEN 1 ELSE 0 END),"
                    f" sum(CASE WHEN escalated THEN 1 ELSE 0 END), {by_priority}"
                    f" {where}{OPEN_TICKET} GROUP BY client_id, site_id")),
        ("work_orders", (f"SELECT client_id, site_id, CAST(sum(n) AS BIGINT), CAST(sum(overdue) AS BIGINT),"
                         f" {_object_agg(dialect, 'st', 'n')} FROM ("
                        f"SELECT client_id, site_id, upper(coalesce(status, 'UNKNOWN')) AS st, count(*) AS n,"
                        f" sum(CASE WHEN due_at < :end THEN 1 ELSE 0 END) AS overdue"
                        f" {where}{PENDING_WORK_ORDER} GROUP BY client_id, site_id, st) AS g"
                        " GROUP BY client_id, site_id")),
        ("attendance", (f"SELECT client_id, site_id,"
                       f" {_object_agg(dialect, 'grp', _array(dialect, 'n', 'present', 'late', 'missing'))} FROM ("
                       f"SELECT client_id, site_id, coalesce(people_group, '{NO_GROUP}') AS grp, count(*) AS n,"
                       f" sum(CASE WHEN {PRESENT} THEN 1 ELSE 0 END) AS present,"
                       f" sum(CASE WHEN {late(dialect)} THEN 1 ELSE 0 END) AS late,"
                       f" sum(CASE WHEN {MISSING} THEN 1 ELSE 0 END) AS missing"
                       f" {where}{EXPECTED_SHIFT} GROUP BY client_id, site_id, grp) AS g GROUP BY client_id, site_id")),
        ("devices", (f"SELECT client_id, site_id, count(*),"
                    f" sum(CASE WHEN {device_offline(dialect)} THEN 1 ELSE 0 END),"
                    f" sum(sync_health), count(sync_health)"
                    f" {where}kind = 'device' GROUP BY client_id, site_id")),
        ("events", (f"SELECT client_id, site_id, sum(CASE WHEN kind = 'geofence' THEN 1 ELSE 0 END),"
                   f" sum(CASE WHEN kind = 'security' THEN 1 ELSE 0 END)"
                   f" {where}kind IN ('geofence', 'security')"
                   f" AND occurred_at >= :start AND occurred_at < :end GROUP BY client_id, site_id")),
        # Open at the end: active now, or resolved at or after it (two index range scans); the
        # SUPPRESSED ones are counted apart.
        ("alerts", (f"SELECT client_id, site_id, sum(CASE WHEN status <> '{SUPPRESSED}' THEN 1 ELSE 0 END),"
                   f" {by_severity}, sum(CASE WHEN status = '{SUPPRESSED}' THEN 1 ELSE 0 END) FROM ("
                   f" SELECT client_id, site_id, severity, status FROM alert WHERE tenant_id = :tid"
                   f" AND status IN {sql_in(ALERT_ACTIVE)} AND first_seen_at < :end"
                   " UNION ALL SELECT client_id, site_id, severity, status FROM alert WHERE tenant_id = :tid"
                   f" AND status = '{RESOLVED}' AND resolved_at >= :end AND first_seen_at < :end"
                   ") AS open_alerts GROUP BY client_id, site_id")),
    ]


def compute(session: Session, tenant_id: int, units: dict[int, Unit], start: datetime, end: datetime,
            config: Config) -> dict[int, dict[str, Any]]:
    """The metrics of every client and site of the tenant for the window, by unit id.

    Each statement gives one row per (client, site) group: a site's row is its group; a
    client's adds up its own group (the records without a site) and its sites' rows. A row
    of a site that is not one of the tenant's sites, or of an unknown client, counts nowhere."""
    dialect = session.get_bind().dialect.name
    bind = params(tenant_id, start, end, config)
    read = RawSQL(session).fetch  # plain rows: a pass tallies tens of thousands
    width = len(_COUNTS)
    flat: dict[int, list] = {}  # unit id -> its own groups' counts (`_COUNTS` order)
    by_status: dict[int, dict[str, int]] = {}
    by_group: dict[int, dict[str, list[int]]] = {}

    def own(client_id: int, site_id: int | None) -> list | None:
        """The flat row of the unit a (client, site) group belongs to (None: no such unit)."""
        unit_id = client_id if site_id is None else site_id
        row = flat.get(unit_id)
        if row is None:
            unit = units.get(unit_id)
            if unit is None or unit.kind != ("CLIENT" if site_id is None else "SITE"):
                return None
            row = flat[unit_id] = [0] * width
        return row

    sql = dict(statements(dialect))
    base = _AT["tickets_open"]
    for client_id, site_id, *tickets in read(sql["tickets"], bind):
        row = own(client_id, site_id)
        if row is not None:
            n, overdue, escalated, *prios = tickets
            row[base:base + 8] = [n, overdue, escalated, *prios, n - sum(prios)]
    base = _AT["work_orders_pending"]
    for client_id, site_id, n, overdue, mix in read(sql["work_orders"], bind):
        row = own(client_id, site_id)
        if row is not None:
            row[base], row[base + 1] = n, overdue
            by_status[client_id if site_id is None else site_id] = json.loads(mix)
    base = _AT["attendance_expected"]
    for client_id, site_id, people in read(sql["attendance"], bind):
        row = own(client_id, site_id)
        if row is not None:
            parsed = by_group[client_id if site_id is None else site_id] = json.loads(people)
            for i, total in enumerate(map(sum, zip(*parsed.values(), strict=True))):
                row[base + i] = total
    base = _AT["devices_total"]
    for client_id, site_id, n, offline, health, reporting in read(sql["devices"], bind):
        row = own(client_id, site_id)
        if row is not None:
            row[base:base + 4] = [n, offline, float(health or 0), reporting]
    base = _AT["geofence_events"]
    for client_id, site_id, geofence, security in read(sql["events"], bind):
        row = own(client_id, site_id)
        if row is not None:
            row[base], row[base + 1] = geofence, security
    base = _AT["alerts_open"]
    for client_id, site_id, *severities in read(sql["alerts"], bind):
        row = own(client_id, site_id)
        if row is not None:
            row[base:base + 7] = severities

    # A client's rows: its own groups plus its sites'.
    totals: dict[int, list] = {}
    statuses: dict[int, dict[str, int]] = {}
    groups: dict[int, dict[str, list[int]]] = {}
    for unit in units.values():
        if unit.kind != "CLIENT":
            continue
        mine = flat.get(unit.id)
        totals[unit.id] = list(mine) if mine is not None else [0] * width
        statuses[unit.id] = dict(by_status.get(unit.id, {}))
        groups[unit.id] = {name: list(shifts) for name, shifts in by_group.get(unit.id, {}).items()}
    for unit in units.values():
        if unit.kind != "SITE" or unit.id not in flat:
            continue
        rolled = totals.get(unit.client_id)
        if rolled is None:
            continue
        rolled[:] = [a + b for a, b in zip(rolled, flat[unit.id], strict=True)]
        merged = statuses[unit.client_id]
        for name, n in by_status.get(unit.id, {}).items():
            merged[name] = merged.get(name, 0) + n
        into = groups[unit.client_id]
        for name, shifts in by_group.get(unit.id, {}).items():
            into[name] = [a + b for a, b in zip(into[name], shifts, strict=True)] if name in into else list(shifts)

    out = {}
    zero = [0] * width
    for unit_id, unit in units.items():
        if unit.kind == "CLIENT":
            r, st, gr = totals[unit_id], statuses[unit_id], groups[unit_id]
        else:
            r, st, gr = flat.get(unit_id, zero), by_status.get(unit_id, {}), by_group.get(unit_id, {})
        out[unit_id] = _metrics(r, st, gr)
    return out


def _metrics(r: list, statuses: dict[str, int], groups: dict[str, list[int]]) -> dict[str, Any]:
    """The metrics object of one unit from its tallied counts, keys in `blank`'s order."""
    t, w, a, d, e, al = (_AT[k] for k in ("tickets_open", "work_orders_pending", "attendance_expected",
                                          "devices_total", "geofence_events", "alerts_open"))
    reporting = r[d + 3]
    return {
        "tickets_open": r[t], "tickets_overdue": r[t + 1], "tickets_escalated": r[t + 2],
        "tickets_by_priority": dict(zip((*PRIORITIES, "other"), r[t + 3:t + 8], strict=True)),
        "work_orders_pending": r[w], "work_orders_overdue": r[w + 1],
        "work_orders_by_status": dict(sorted(statuses.items())),
        "attendance_expected": r[a], "attendance_present": r[a + 1], "attendance_late": r[a + 2],
        "attendance_missing": r[a + 3],
        "attendance_by_group": {name: dict(zip(_ATTENDANCE, groups[name], strict=True)) for name in sorted(groups)},
        "devices_total": r[d], "devices_offline": r[d + 1],
        "sync_health_score": round(r[d + 2] / reporting, 2) if reporting else None,
        "sync_health_devices": reporting,
        "geofence_events": r[e], "security_anomalies": r[e + 1],
        "alerts_open": r[al], "alerts_open_by_severity": dict(zip(SEVERITIES, r[al + 1:al + 6], strict=True)),
        "alerts_suppressed": r[al + 6],
    }


def in_maintenance(rules: maintenance.Rulebook, units: dict[int, Unit], at: datetime) -> set[int]:
    """The units a maintenance window (of any alert type) covers at `at`: a site through its
    own, its client's or the tenant's windows; a client through its own or the tenant's."""
    if not rules:
        return set()
    if any(rule.occurrence_at(at) for rule in rules.tenant):
        return set(units)
    clients = {cid for cid, found in rules.by_client.items() if any(r.occurrence_at(at) for r in found)}
    sites = {sid for sid, found in rules.by_site.items() if any(r.occurrence_at(at) for r in found)}
    return {u.id for u in units.values() if u.client_id in clients or (u.kind == "SITE" and u.id in sites)}


def written(session: Session, tenant_id: int, end: datetime) -> set[int]:
    """The units that have their snapshot of the window ending at `end`."""
    return set(session.scalars(select(Snapshot.unit_id).where(Snapshot.tenant_id == tenant_id,
                                                               Snapshot.window_end == end)))


def stored_attendance(session: Session, tenant_id: int, end: datetime) -> dict[int, dict[str, Any]]:
    """The attendance figures the derived alerts read (`derived.conditions`: the late check-ins
    of a site), from the sites' snapshots of the window ending at `end`, as they were written."""
    names = ("attendance_expected", "attendance_present", "attendance_late")
    if session.get_bind().dialect.name == "postgresql":
        picked = ", ".join(f"(metrics->>'{name}')::bigint" for name in names)
    else:
        picked = ", ".join(f"json_extract(metrics, '$.{name}')" for name in names)
    rows = RawSQL(session).fetch(f"SELECT unit_id, {picked} FROM snapshot WHERE tenant_id = :tid AND window_end = :end"
                          " AND scope = 'SITE'", {"tid": tenant_id, "end": end})
    return {unit_id: dict(zip(names, values, strict=True)) for unit_id, *values in rows}


def write(session: Session, tenant_id: int, units: dict[int, Unit], metrics: dict[int, dict[str, Any]],
          covered: set[int], start: datetime, end: datetime, now: datetime, there: set[int] | None = None) -> int:
    """Insert the window's snapshots, keeping any already there; returns how many were new.
    Units that have theirs already (`there`, else read here) are left out (a re-run writes
    nothing); ON CONFLICT DO NOTHING keeps a concurrent writer's rows. The metrics go as
    JSON text, each cast to jsonb as its row is read (`RawSQL.insert`)."""
    sql = RawSQL(session)
    if there is None:
        there = written(session, tenant_id, end)
    window_start, window_end, created, as_json = sql.ts(start), sql.ts(end), sql.ts(now), sql.json
    rows = [(tenant_id, u.kind, u.id, u.client_id, u.id if u.kind == "SITE" else None, window_start, window_end,
             u.city, u.state, u.officer, u.id in covered, as_json(metrics[u.id]), created)
            for u in units.values() if u.id not in there]
    made = 0
    # In chunks whose documents (≈ 850 bytes each) stay well under PostgreSQL's default
    # work_mem (4 MB): one statement for 11,000 spills unnest's rows to a temporary file.
    for i in range(0, len(rows), SNAPSHOT_CHUNK):
        made += len(sql.insert(
            "INSERT INTO snapshot (tenant_id, scope, unit_id, client_id, site_id, window_start, window_end, city,"
            " state, officer_in_charge, in_maintenance, metrics, created_at)",
            ["bigint", "text", "bigint", "bigint", "bigint", "timestamptz", "timestamptz", "text", "text", "text",
             "boolean", "jsonb", "timestamptz"],
            rows[i:i + SNAPSHOT_CHUNK], "ON CONFLICT (tenant_id, unit_id, window_end) DO NOTHING RETURNING id",
            fetch=True))
    return made


# ---------------------------------------------------------------- the pass

@dataclass
class Summary:
    window_start: str | None = None
    window_end: str | None = None
    tenants: int = 0
    clients: int = 0
    sites: int = 0
    snapshots_created: int = 0
    snapshots_unchanged: int = 0  # already there for this window: kept as they were
    in_maintenance: int = 0
    conditions: int = 0  # derived-alert conditions that hold
    alerts_unchanged: int = 0  # … whose active alert already says so (not sent again)
    alerts_created: int = 0
    alerts_deduplicated: int = 0  # sent to an active alert: new severity or message, or still SUPPRESSED
    alerts_suppressed: int = 0
    alerts_resolved: int = 0  # conditions that cleared
    events_replayed: int = 0  # a re-run at the same window: already applied
    rejected: int = 0
    dry_run: bool = False
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run(engine: Engine, config: Config, caller: Caller, now: datetime, dry_run: bool = False,
        correlation_window: int = DEFAULT_CORRELATION_WINDOW, incidents: AutoIncidents | None = None,
        on_reject: Callable[[str, Reject], None] = lambda tenant, reject: None) -> Summary:
    """The snapshot pass over every tenant, under the `snapshot` pass lock (a second runner:
    exit 75; a dry run takes it too); one transaction per tenant, rolled back on a dry run.
    Runs as the system, at `now`. `on_reject(tenant slug, ingest Reject)` hears of a derived
    record ingest refused."""
    start, end = align(now, config.window)
    summary = Summary(clock.isoformat(start), clock.isoformat(end), dry_run=dry_run)

    def tenant_pass(session: Session, tenant: TenantRef) -> None:
        units = load_units(session, tenant.id)
        covered = in_maintenance(maintenance.Rulebook(maintenance.load_rules(session, tenant.id, since=end)), units,
                                 end)
        there = written(session, tenant.id, end)
        if there.issuperset(units):
            # The window is complete (a re-run): nothing to compute or write. The derived
            # alerts still follow the feeds; the late check-ins they read are the snapshots'.
            metrics = stored_attendance(session, tenant.id, end)
            made = 0
        else:
            metrics = compute(session, tenant.id, units, start, end, config)
            made = write(session, tenant.id, units, metrics, covered, start, end, now, there)
        summary.clients += sum(u.kind == "CLIENT" for u in units.values())
        summary.sites += sum(u.kind == "SITE" for u in units.values())
        summary.snapshots_created += made
        summary.snapshots_unchanged += len(units) - made
        summary.in_maintenance += len(covered)
        outcome = derived.apply(session, Caller(tenant.slug, None, caller.os_user, caller.host), tenant.id,
                                units, metrics, start, end, config, correlation_window, incidents, now)
        summary.conditions += outcome.conditions
        summary.alerts_unchanged += outcome.unchanged
        summary.alerts_created += outcome.ingest.created
        summary.alerts_deduplicated += outcome.ingest.deduplicated
        summary.alerts_suppressed += outcome.ingest.suppressed
        summary.alerts_resolved += outcome.ingest.resolved
        summary.events_replayed += outcome.ingest.replayed
        summary.rejected += outcome.ingest.rejected
        for reject in outcome.rejects:
            on_reject(tenant.slug, reject)

    with passes.running(engine, "snapshot", now, dry_run) as job:
        summary.tenants = len(job.tenants)
        job.each_tenant(tenant_pass)
    summary.duration_ms = job.duration_ms
    return summary


# ---------------------------------------------------------------- list and show

def _listing(seen: Scope):
    client, site = aliased(BusinessUnit), aliased(BusinessUnit)
    query = (select(Snapshot, client.code.label("client"), site.code.label("site"))
             .join(client, client.id == Snapshot.client_id)
             .outerjoin(site, site.id == Snapshot.site_id)
             .where(Snapshot.tenant_id == seen.actor.tenant_id, seen.visible(Snapshot.client_id, Snapshot.site_id)))
    return query, client, site


def _row(row) -> dict[str, Any]:
    snap: Snapshot = row[0]
    data = {"id": snap.id, "scope": snap.scope, "client": row.client, "site": row.site,
            "window_start": snap.window_start, "window_end": snap.window_end, "city": snap.city,
            "state": snap.state, "officer_in_charge": snap.officer_in_charge,
            "in_maintenance": bool(snap.in_maintenance), "metrics": snap.metrics, "created_at": snap.created_at}
    for key in HEADLINE:  # flat copies for the table
        data[key] = (snap.metrics or {}).get(key)
    return data


def list_snapshots(session: Session, caller: Caller, client: str | None = None, site: str | None = None,
                   since: datetime | None = None, until: datetime | None = None, limit: int = 100
                   ) -> list[dict[str, Any]]:
    """Snapshots the caller can see, newest window first (within a window: by client, the
    client's own row before its sites). `since/until` bound the window end: [since, until)."""
    with session.begin():
        seen = access.for_caller(session, caller)
        seen.require_view()
        query, client_unit, site_unit = _listing(seen)
        if client is not None:
            query = query.where(Snapshot.client_id == seen.client(session, client).id)
        if site is not None:
            query = query.where(Snapshot.site_id == seen.site(session, site).id)
        if since is not None:
            query = query.where(Snapshot.window_end >= since)
        if until is not None:
            query = query.where(Snapshot.window_end < until)
        query = query.order_by(Snapshot.window_end.desc(), client_unit.code, Snapshot.scope, site_unit.code,
                               Snapshot.id).limit(limit)
        return [_row(r) for r in session.execute(query)]


def show_snapshot(session: Session, caller: Caller, snapshot_id: int) -> dict[str, Any]:
    """One snapshot the caller can see, else 3."""
    with session.begin():
        seen = access.for_caller(session, caller)
        seen.require_view()
        query, _, _ = _listing(seen)
        row = session.execute(query.where(Snapshot.id == snapshot_id)).first()
        if row is None:
            raise NotFound(f"no snapshot {snapshot_id}", "see `nocctl snapshot list`")
        data = _row(row)
        for key in HEADLINE:
            data.pop(key)
        return data
