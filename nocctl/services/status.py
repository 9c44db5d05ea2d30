"""The live status view (`nocctl status`): the current picture from the latest metric
snapshots, one row per client, site, state or city, worst first.

"Latest" is per unit: the snapshot with the greatest `window_end` of each client and site,
chosen in one query — for each business unit in view, an index probe of
(tenant, unit, window_end) for its maximum — so the cost follows the number of units, not
the snapshots kept. The view is then aggregated in Python over those latest rows (one per
unit in view: a few thousand at most): metrics are JSON, and summing a handful of keys
over one row per site is simpler and as fast as JSON functions that differ between SQLite
and PostgreSQL.

Rows:
- `site`: each site's own latest snapshot.
- `client` (the default): the client's own latest snapshot (its totals, including records
  not tied to a site) when the caller sees the client as a whole and no --state/--city
  filter narrows it; otherwise the sum of the client's site snapshots in view.
- `state`, `city`: the sum of the site snapshots in the state (city: state and city, since
  a city name can repeat across states).

Open alerts by severity (`alerts_critical` … `alerts_info`, `alerts_open`) come from the
alerts themselves, not the snapshot: one grouped count of the alerts in front of the NOC
(`alerts.in_front`: active, not SUPPRESSED, not snoozed — the default `alert list`) per
client, site and severity, scoped as everything else. So a CRITICAL opened a minute ago
counts at once, and a unit with open alerts but no snapshot yet still has a row (its metrics
0, `window_end` and `snapshot_age_seconds` null). A state or city row counts the alerts of
its sites (by the sites' current state and city); a client row every alert of the client in
view (only those of its sites there under --state/--city).

Worst first: by `score` (see SCORE_WEIGHTS), then open CRITICAL alerts, then open HIGH
alerts, then the row's name. Missing metric keys count as 0 (a null sync health stays null),
so snapshots written before a metric existed still add up.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.models import Alert, BusinessUnit, Person, Snapshot
from nocctl.services import access, alerts
from nocctl.services.access import Scope
from nocctl.services.rbac import Caller
from nocctl.vocabulary import SEVERITIES

GROUPINGS = ("client", "site", "state", "city")

# Counters summed as they are.
COUNTS = ("tickets_open", "tickets_overdue", "work_orders_pending", "work_orders_overdue", "attendance_expected",
          "attendance_present", "attendance_late", "attendance_missing", "devices_total", "devices_offline",
          "geofence_events", "security_anomalies")
ALERT_FIELDS = tuple(f"alerts_{severity.lower()}" for severity in SEVERITIES)  # alerts_critical, …

# How bad a row is: each open CRITICAL alert weighs 100, each open HIGH alert 25, each
# overdue ticket 10, each overdue work order, offline device and missing guard 5. A plain
# weighted sum, so a state's score is the sum of its sites' scores.
SCORE_WEIGHTS = {"alerts_critical": 100, "alerts_high": 25, "tickets_overdue": 10, "work_orders_overdue": 5,
                 "devices_offline": 5, "attendance_missing": 5}

# Every field of a row, in order: the machine formats (json, ndjson, csv) always carry all of
# them, whatever the grouping (a field that does not apply is null), so the shape is stable.
COLUMNS = ("client", "client_name", "site", "site_name", "state", "city", "officer_in_charge", "score",
           *ALERT_FIELDS, "alerts_open", *COUNTS, "sync_health_score", "in_maintenance", "sites",
           "sites_in_maintenance", "window_end", "snapshot_age_seconds")

NO_SNAPSHOTS = "no snapshots yet: run `nocctl snapshot run`"


@dataclass
class StatusView:
    by: str
    now: datetime
    rows: list[dict[str, Any]]
    no_snapshots: bool = False  # nothing in view at all (not merely filtered out)
    filters: dict[str, str] = field(default_factory=dict)


def _number(value: Any) -> int | float:
    """A metric as a number: missing, null or not a number counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return value


def normalise(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metrics a row shows, from a snapshot's JSON (robust to missing or extra keys)."""
    metrics = metrics if isinstance(metrics, Mapping) else {}
    out: dict[str, Any] = {name: _number(metrics.get(name)) for name in COUNTS}
    by_severity = metrics.get("alerts_open_by_severity")
    by_severity = by_severity if isinstance(by_severity, Mapping) else {}
    for severity, name in zip(SEVERITIES, ALERT_FIELDS, strict=True):
        out[name] = _number(by_severity.get(severity))
    health = metrics.get("sync_health_score")
    out["sync_health_score"] = None if isinstance(health, bool) or not isinstance(health, (int, float)) else health
    # The devices the score averages (the snapshot says; older ones: every device).
    reporting = metrics.get("sync_health_devices")
    out["_health_weight"] = _number(reporting) if reporting is not None else out["devices_total"]
    return out


def _sum(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of a group of sites: counters summed; the sync health score averaged over the
    sites that have one, weighted by the devices reporting a sync health (plain mean when
    none counts devices), which makes it the exact mean over those devices."""
    out: dict[str, Any] = {name: sum(p[name] for p in parts) for name in (*COUNTS, *ALERT_FIELDS)}
    scored = [p for p in parts if p["sync_health_score"] is not None]
    weight = sum(p["_health_weight"] for p in scored)
    if not scored:
        out["sync_health_score"] = None
    elif weight > 0:
        out["sync_health_score"] = round(sum(p["sync_health_score"] * p["_health_weight"] for p in scored) / weight, 2)
    else:
        out["sync_health_score"] = round(sum(p["sync_health_score"] for p in scored) / len(scored), 2)
    return out


def score(metrics: Mapping[str, Any]) -> int | float:
    return sum(weight * metrics[name] for name, weight in SCORE_WEIGHTS.items())


def _finish(row: dict[str, Any], metrics: dict[str, Any], window_end: datetime | None, now: datetime,
            open_alerts: Mapping[str, int] | None) -> dict[str, Any]:
    """The row with its metrics, the open alert counts (`open_alerts`: from the alerts,
    none = 0) in place of the snapshot's, the score and the snapshot's age."""
    metrics = {**metrics, **dict.fromkeys(ALERT_FIELDS, 0), **(open_alerts or {})}
    row.update((k, v) for k, v in metrics.items() if not k.startswith("_"))
    row["alerts_open"] = sum(metrics[name] for name in ALERT_FIELDS)
    row["score"] = score(metrics)
    row["window_end"] = window_end
    row["snapshot_age_seconds"] = None if window_end is None else int((now - window_end).total_seconds())
    return row


def _open_alerts(session: Session, seen: Scope, now: datetime, client_id: int | None, state: str | None,
                 city: str | None, sites_only: bool) -> list[Any]:
    """Open alerts (`alerts.in_front`) in view, counted per client, site and severity in one
    grouped query, with the units' codes, names, place and site-in-charge."""
    tenant_id = seen.actor.tenant_id
    counts = (select(Alert.client_id, Alert.site_id, Alert.severity, func.count().label("n"))
              .where(Alert.tenant_id == tenant_id, seen.visible(Alert.client_id, Alert.site_id),
                     alerts.in_front(now))
              .group_by(Alert.client_id, Alert.site_id, Alert.severity))
    if client_id is not None:
        counts = counts.where(Alert.client_id == client_id)
    if sites_only:
        counts = counts.where(Alert.site_id.is_not(None))
    grouped = counts.subquery("open_alerts")
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    in_charge = aliased(Person)
    query = (select(grouped.c.client_id, grouped.c.site_id, grouped.c.severity, grouped.c.n,
                    client.code.label("client_code"), client.name.label("client_name"),
                    site.code.label("site_code"), site.name.label("site_name"), site.state, site.city,
                    in_charge.username.label("officer_in_charge"))
             .select_from(grouped)
             .join(client, client.id == grouped.c.client_id)
             .outerjoin(site, site.id == grouped.c.site_id)
             .outerjoin(in_charge, in_charge.id == site.site_in_charge_id))
    if state is not None:
        query = query.where(func.lower(site.state) == state.lower())
    if city is not None:
        query = query.where(func.lower(site.city) == city.lower())
    return list(session.execute(query).all())


def _alert_key(by: str, client_id: Any, site_id: Any, state: Any, city: Any) -> Any:
    """The row an open alert, or a snapshot, belongs to."""
    return {"site": site_id, "client": client_id, "state": state, "city": (state, city)}[by]


def _blank() -> dict[str, Any]:
    return dict.fromkeys(COLUMNS)


def _latest(session: Session, seen: Scope, client_id: int | None, state: str | None, city: str | None,
            sites_only: bool) -> list[Any]:
    """The latest snapshot of every unit in view (filters applied), in one query: units of
    the tenant, each joined to its snapshot whose window_end is the unit's greatest."""
    tenant_id = seen.actor.tenant_id
    unit = aliased(BusinessUnit)
    client = aliased(BusinessUnit)
    newer = aliased(Snapshot)
    # First each unit's latest window end (an index probe of (tenant, unit, window_end) per
    # unit), then that snapshot. MATERIALIZED (SQLite ≥ 3.35, PostgreSQL ≥ 12) keeps the
    # planner from folding it in and starting from the snapshots themselves — SQLite,
    # without statistics, would otherwise scan every snapshot kept.
    units = select(unit.id.label("unit_id"), unit.code.label("unit_code"), unit.name.label("unit_name"),
                   select(func.max(newer.window_end))
                   .where(newer.tenant_id == tenant_id, newer.unit_id == unit.id)
                   .correlate(unit).scalar_subquery().label("latest")).where(unit.tenant_id == tenant_id)
    if client_id is not None:
        units = units.where(unit.client_id == client_id)
    if sites_only:
        units = units.where(unit.kind == "SITE")
    latest = units.cte("latest").prefix_with("MATERIALIZED")
    query = (select(Snapshot.scope, Snapshot.client_id, Snapshot.site_id, Snapshot.window_end, Snapshot.city,
                    Snapshot.state, Snapshot.officer_in_charge, Snapshot.in_maintenance, Snapshot.metrics,
                    latest.c.unit_code, latest.c.unit_name,
                    client.code.label("client_code"), client.name.label("client_name"))
             .select_from(latest)
             .join(Snapshot, (Snapshot.tenant_id == tenant_id) & (Snapshot.unit_id == latest.c.unit_id)
                   & (Snapshot.window_end == latest.c.latest))
             .join(client, client.id == Snapshot.client_id)
             .where(seen.visible(Snapshot.client_id, Snapshot.site_id)))
    if state is not None:
        query = query.where(func.lower(Snapshot.state) == state.lower())
    if city is not None:
        query = query.where(func.lower(Snapshot.city) == city.lower())
    return list(session.execute(query).all())


def _sort_key(row: dict[str, Any], by: str) -> tuple:
    name = {"client": (row["client"],), "site": (row["site"],),
            "state": (row["state"] is None, row["state"] or ""),
            "city": (row["state"] is None, row["state"] or "", row["city"] is None, row["city"] or "")}[by]
    return (-row["score"], -row["alerts_critical"], -row["alerts_high"], *name)


def _group(by: str, snapshots: Iterable[Any], open_alerts: Iterable[Any], now: datetime,
           geo_filtered: bool) -> list[dict[str, Any]]:
    counted: dict[Any, dict[str, int]] = {}  # row key -> open alerts by field
    places: dict[Any, Any] = {}  # row key -> a count row, for the rows of units without a snapshot
    for a in open_alerts:
        key = _alert_key(by, a.client_id, a.site_id, a.state, a.city)
        field = f"alerts_{a.severity.lower()}"
        tally = counted.setdefault(key, {})
        tally[field] = tally.get(field, 0) + a.n
        places.setdefault(key, a)
    rows = _snapshot_rows(by, snapshots, counted, now, geo_filtered)
    for key, a in places.items():  # open alerts, no snapshot yet
        if key not in counted:
            continue
        row = _blank()
        row.update(client=a.client_code, client_name=a.client_name, in_maintenance=False, sites=0,
                   sites_in_maintenance=0)
        if by == "site":
            row.update(site=a.site_code, site_name=a.site_name, state=a.state, city=a.city,
                       officer_in_charge=a.officer_in_charge, sites=1)
        elif by != "client":
            row.update(client=None, client_name=None, state=a.state, city=a.city if by == "city" else None)
        rows.append(_finish(row, normalise(None), None, now, counted.pop(key)))
    return rows


def _snapshot_rows(by: str, snapshots: Iterable[Any], counted: dict[Any, dict[str, int]], now: datetime,
                   geo_filtered: bool) -> list[dict[str, Any]]:
    """The rows of the units with snapshots; each takes (pops) its open alert counts."""
    sites = [s for s in snapshots if s.scope == "SITE"]
    clients = {s.client_id: s for s in snapshots if s.scope == "CLIENT"}
    rows: list[dict[str, Any]] = []
    if by == "site":
        for s in sites:
            row = _blank()
            row.update(client=s.client_code, client_name=s.client_name, site=s.unit_code, site_name=s.unit_name,
                       state=s.state, city=s.city, officer_in_charge=s.officer_in_charge,
                       in_maintenance=bool(s.in_maintenance), sites=1, sites_in_maintenance=int(bool(s.in_maintenance)))
            rows.append(_finish(row, normalise(s.metrics), s.window_end, now, counted.pop(s.site_id, None)))
        return rows
    groups: dict[Any, list[Any]] = {}
    for s in sites:
        key = {"client": s.client_id, "state": s.state, "city": (s.state, s.city)}[by]
        groups.setdefault(key, []).append(s)
    if by == "client" and not geo_filtered:
        for client_id in clients:
            groups.setdefault(client_id, [])
    for key, members in groups.items():
        row = _blank()
        in_maintenance = sum(bool(s.in_maintenance) for s in members)
        row.update(sites=len(members), sites_in_maintenance=in_maintenance, in_maintenance=in_maintenance > 0)
        own = clients.get(key) if by == "client" and not geo_filtered else None
        if by == "client":
            first = own or members[0]
            row.update(client=first.client_code, client_name=first.client_name)
        elif by == "state":
            row.update(state=key)
        else:
            row.update(state=key[0], city=key[1])
        live = counted.pop(key, None)
        if own is not None:  # the client's own totals
            row.update(in_maintenance=bool(own.in_maintenance), officer_in_charge=own.officer_in_charge)
            rows.append(_finish(row, normalise(own.metrics), own.window_end, now, live))
        else:  # the oldest member's window: the row is only as fresh as it
            rows.append(_finish(row, _sum([normalise(s.metrics) for s in members]),
                                min(s.window_end for s in members), now, live))
    return rows


def status(session: Session, caller: Caller, by: str = "client", client: str | None = None,
           state: str | None = None, city: str | None = None) -> StatusView:
    """The status view of what the caller may see (no view grant: 77)."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    now = clock.now()
    with session.begin():
        seen = access.for_caller(session, caller)
        seen.require_view()
        client_id = seen.client(session, client).id if client is not None else None
        geo_filtered = state is not None or city is not None
        sites_only = by != "client" or geo_filtered
        snapshots = _latest(session, seen, client_id, state, city, sites_only)
        open_alerts = _open_alerts(session, seen, now, client_id, state, city, sites_only)
        rows = _group(by, snapshots, open_alerts, now, geo_filtered)
        rows.sort(key=lambda row: _sort_key(row, by))
        none_at_all = not snapshots and not session.scalar(select(exists().where(
            Snapshot.tenant_id == seen.actor.tenant_id, seen.visible(Snapshot.client_id, Snapshot.site_id))))
    filters = {k: v for k, v in (("client", client), ("state", state), ("city", city)) if v is not None}
    return StatusView(by, now, rows, none_at_all, filters)
