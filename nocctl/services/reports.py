"""The numbers of the reports (DESIGN §7), aggregated in SQL on both databases: counts,
means and continuous percentiles (PostgreSQL's `percentile_cont`; on SQLite the same linear
interpolation over window-function ranks), never by loading alerts into Python.

Every report covers the alerts and incidents the caller can see, in [since, until), for one
client or all. Each function returns plain data (the JSON shapes of DESIGN §7, plus the
window); rendering lives in `nocctl.reporting`.

Keys added to the DESIGN §7 shapes (only added; the documented ones are unchanged):

===============================  ===============================================================
key                              meaning
===============================  ===============================================================
``kpis`` (weekly document only)  the key figures against the previous period of the same
                                 length, ending where this window starts: ``window``,
                                 ``previous_window`` ({since, until}), and for each of
                                 ``alerts``, ``events``, ``mtta_mean_seconds``,
                                 ``mttr_mean_seconds``, ``sla_compliance``: ``{"value",
                                 "previous", "delta"}`` (delta = value − previous; null when
                                 either is null; compliance as a fraction)
``frequency.by_day[].partial``   true when the window does not cover the whole local day (it
                                 starts after the day's start or ends before its end) or the
                                 day has not ended when the report is made
``frequency.by_day[].since`` /   the instants the day's row really covers (the day clipped to
``frequency.by_day[].until``     the window)
``sla.by_client``                ``{CODE: {"met", "breached", "pending", "compliance"}}``, the
                                 same counts per client (``(no client)`` for incidents without)
``sla.breaches``                 ``{"total", "limit", "incidents": [{"id", "title", "client",
                                 "severity", "status", "created_at", "sla_target",
                                 "resolved_at", "open", "late_seconds"}]}``: the breached
                                 incidents, latest past target first, at most ``limit`` of
                                 ``total``; late_seconds = (resolved or closed, or the report
                                 time while open) − sla_target
===============================  ===============================================================
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import BadInput
from nocctl.models import Alert, BusinessUnit, Incident
from nocctl.models.base import UTCDateTime
from nocctl.services import access, audit
from nocctl.services.access import Scope as Access
from nocctl.services.rbac import Actor, Caller
from nocctl.vocabulary import SEVERITIES

KINDS = ("mttr", "mtta", "frequency", "sla", "noisy")
EXPORT = "noc:export"
BREACHES_LISTED = 15  # breached incidents listed by name; the rest are counted
NO_CLIENT = "(no client)"


# ---------------------------------------------------------------- scope

@dataclass(frozen=True)
class Scope:
    """What a report covers: whose view, which window, which zone, which client."""

    access: Access  # whose view: the caller's grants
    since: datetime
    until: datetime
    zone: ZoneInfo
    client_id: int | None
    client_code: str | None
    now: datetime

    @property
    def actor(self) -> Actor:
        return self.access.actor

    def window(self) -> dict[str, Any]:
        return {"since": clock.isoformat(self.since), "until": clock.isoformat(self.until)}

    def previous(self) -> tuple[datetime, datetime]:
        """The previous period: as long as this window, ending where it starts."""
        return self.since - (self.until - self.since), self.since

    def alerts(self, *conditions) -> list:
        """The WHERE of the alerts in scope (plus `conditions`)."""
        where = [Alert.tenant_id == self.actor.tenant_id, self.access.visible(Alert.client_id, Alert.site_id),
                 *conditions]
        if self.client_id is not None:
            where.append(Alert.client_id == self.client_id)
        return where


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {name!r}", "use an IANA name such as Asia/Kolkata or UTC") from None


def open_scope(session: Session, caller: Caller, since: datetime, until: datetime, tz: str | None = None,
               client_code: str | None = None) -> Scope:
    """Inside the caller's transaction: who is asking and what the report covers. A client
    the caller cannot see is "not found", like everywhere else."""
    seen = access.for_caller(session, caller)
    seen.require_view()
    client_id = seen.client(session, client_code).id if client_code is not None else None
    return Scope(seen, since, until, zone(tz), client_id, client_code, clock.now())


# ---------------------------------------------------------------- durations

def _stats(count, mean, p50, p90) -> dict[str, Any]:
    def number(value):
        return None if value is None else round(float(value), 3)

    return {"count": int(count or 0), "mean_seconds": number(mean), "p50_seconds": number(p50),
            "p90_seconds": number(p90)}


EMPTY = _stats(0, None, None, None)


def _percentiles_pg(value, group, where):
    return (select(group.label("g"), func.count(), func.avg(value),
                   func.percentile_cont(0.5).within_group(value), func.percentile_cont(0.9).within_group(value))
            .where(*where).group_by(group))


def _percentiles_sqlite(value, group, where):
    """percentile_cont(p) = x[lo] + (r − lo)·(x[lo+1] − x[lo]) with r = p·(n − 1), lo = ⌊r⌋,
    the x ranked from 0 within each group: window functions rank, one GROUP BY interpolates."""
    ranked = select(group.label("g"), value.label("x"),
                    (func.row_number().over(partition_by=group, order_by=value) - 1).label("i"),
                    func.count().over(partition_by=group).label("n")).where(*where).subquery()

    def percentile(p: float):
        r = (ranked.c.n - 1) * p
        lo = cast(r, Integer)  # SQLite truncates: ⌊r⌋ for r ≥ 0
        frac = r - lo
        return (func.sum(case((ranked.c.i == lo, ranked.c.x * (1 - frac)), else_=0))
                + func.sum(case((and_(ranked.c.i == lo + 1, frac > 0), ranked.c.x * frac), else_=0)))

    return (select(ranked.c.g, func.count(), func.avg(ranked.c.x), percentile(0.5), percentile(0.9))
            .group_by(ranked.c.g))


def _durations(session: Session, scope: Scope, kind: str) -> dict[str, Any]:
    value, at = (Alert.time_to_resolve, Alert.resolved_at) if kind == "mttr" else \
        (Alert.time_to_ack, Alert.acknowledged_at)
    where = scope.alerts(at >= scope.since, at < scope.until, value.is_not(None))
    build = _percentiles_pg if session.get_bind().dialect.name == "postgresql" else _percentiles_sqlite
    overall = session.execute(build(value, literal(0), where)).first()
    by_severity = {row[0]: _stats(*row[1:]) for row in session.execute(build(value, Alert.severity, where))}
    by_client_id = {row[0]: _stats(*row[1:]) for row in session.execute(build(value, Alert.client_id, where))}
    codes = _codes(session, by_client_id)
    return {
        "window": scope.window(),
        "overall": _stats(*overall[1:]) if overall else EMPTY,
        "by_severity": {sev: by_severity.get(sev, EMPTY) for sev in SEVERITIES},
        "by_client": {codes[cid]: stats for cid, stats in sorted(by_client_id.items(), key=lambda kv: codes[kv[0]])},
    }


def _codes(session: Session, ids) -> dict[int, str]:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(session.execute(select(BusinessUnit.id, BusinessUnit.code).where(BusinessUnit.id.in_(ids))).all())


def mttr(session: Session, scope: Scope) -> dict[str, Any]:
    return _durations(session, scope, "mttr")


def mtta(session: Session, scope: Scope) -> dict[str, Any]:
    return _durations(session, scope, "mtta")


# ---------------------------------------------------------------- frequency

def day_spans(scope: Scope) -> list[tuple[str, datetime, datetime, bool]]:
    """The report's local days as (date, start, end, partial): start and end instants
    clipped to [since, until); partial when the clip cut the day, or it has not ended when
    the report is made (its counts are still growing)."""
    out = []
    day = scope.since.astimezone(scope.zone).date()
    while True:
        start = datetime.combine(day, time(), scope.zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(), scope.zone).astimezone(UTC)
        if start >= scope.until:
            break
        partial = start < scope.since or end > scope.until or end > scope.now
        out.append((day.isoformat(), max(start, scope.since), min(end, scope.until), partial))
        day += timedelta(days=1)
    return out


def frequency(session: Session, scope: Scope) -> dict[str, Any]:
    """One statement, reading the window once: the counts per (type, severity, local day) —
    at most 8 × 5 × 31 rows — summed into by_type, by_severity and by_day here. The types
    come ordered by the database (their total descending, then the type's collation order)."""
    where = scope.alerts(Alert.first_seen_at >= scope.since, Alert.first_seen_at < scope.until)
    local_days = day_spans(scope)
    # The local day of each alert as a CASE over the day boundaries: correct across DST on
    # both databases, and grouped in SQL.
    bucket = case(*((Alert.first_seen_at < end, index) for index, (_, _, end, _) in enumerate(local_days)),
                  else_=len(local_days)) if local_days else literal(0)
    alerts = func.count()
    type_total = func.sum(alerts).over(partition_by=Alert.alert_type)
    by_type: dict[Any, list[int]] = {}
    by_severity: dict[Any, list[int]] = {}
    by_day: dict[Any, list[int]] = {}
    for alert_type, severity, day, n, e in session.execute(
            select(Alert.alert_type, Alert.severity, bucket.label("day"), alerts, func.sum(1 + Alert.duplicate_count))
            .where(*where).group_by(Alert.alert_type, Alert.severity, bucket)
            .order_by(type_total.desc(), Alert.alert_type)):
        for table, key in ((by_type, alert_type), (by_severity, severity), (by_day, int(day))):
            summed = table.setdefault(key, [0, 0])
            summed[0] += int(n)
            summed[1] += int(e)

    def counts(pair) -> dict[str, int]:
        return {"alerts": pair[0], "events": pair[1]}

    return {
        "window": scope.window(),
        "time_zone": scope.zone.key,
        "by_type": {t: counts(pair) for t, pair in by_type.items()},
        "by_severity": {sev: counts(by_severity.get(sev, (0, 0))) for sev in SEVERITIES},
        "by_day": [{"day": label, **counts(by_day.get(i, (0, 0))),
                    "partial": partial, "since": clock.isoformat(start), "until": clock.isoformat(end)}
                   for i, (label, start, end, partial) in enumerate(local_days)],
    }


# ---------------------------------------------------------------- SLA

def _seconds(session: Session, later, earlier):
    """later − earlier in seconds, in SQL on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _compliance(met: int, breached: int) -> float | None:
    judged = met + breached
    return round(met / judged, 4) if judged else None


def _sla_where(scope: Scope, since: datetime, until: datetime) -> list:
    where = [Incident.tenant_id == scope.actor.tenant_id, scope.access.visible(Incident.client_id, Incident.site_id),
             Incident.created_at >= since, Incident.created_at < until, Incident.sla_target.is_not(None)]
    if scope.client_id is not None:
        where.append(Incident.client_id == scope.client_id)
    return where


_DONE = func.coalesce(Incident.resolved_at, Incident.closed_at)


def _outcomes(scope: Scope):
    """The SQL conditions of met, breached and pending (judged at the report time)."""
    now = literal(scope.now, UTCDateTime())
    return (and_(_DONE.is_not(None), Incident.sla_target >= _DONE),
            or_(and_(_DONE.is_not(None), Incident.sla_target < _DONE),
                and_(_DONE.is_(None), Incident.sla_target <= now)),
            and_(_DONE.is_(None), Incident.sla_target > now))


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def sla(session: Session, scope: Scope, limit: int = BREACHES_LISTED) -> dict[str, Any]:
    where = _sla_where(scope, scope.since, scope.until)
    is_met, is_breached, is_pending = _outcomes(scope)
    counts = (_count(is_met), _count(is_breached), _count(is_pending))
    per_client = session.execute(select(Incident.client_id, *counts).where(*where).group_by(Incident.client_id)).all()
    met, breached, pending = (sum(int(row[i]) for row in per_client) for i in (1, 2, 3))  # the whole: the clients'
    codes = _codes(session, [row[0] for row in per_client])
    by_client = {codes.get(cid, NO_CLIENT): {"met": int(m), "breached": int(b), "pending": int(p),
                                             "compliance": _compliance(int(m), int(b))}
                 for cid, m, b, p in per_client}
    late = _seconds(session, func.coalesce(_DONE, literal(scope.now, UTCDateTime())), Incident.sla_target)
    listed = session.execute(
        select(Incident.id, Incident.title, Incident.client_id, Incident.severity, Incident.status,
               Incident.created_at, Incident.sla_target, _DONE.label("done"), cast(late, Float).label("late"))
        .where(*where, is_breached).order_by(late.desc(), Incident.id).limit(limit)).all()
    codes.update(_codes(session, {row.client_id for row in listed} - set(codes)))
    return {"window": scope.window(), "met": int(met), "breached": int(breached), "pending": int(pending),
            "compliance": _compliance(int(met), int(breached)),
            "by_client": dict(sorted(by_client.items())),
            "breaches": {"total": int(breached), "limit": limit, "incidents": [
                {"id": row.id, "title": row.title, "client": codes.get(row.client_id) if row.client_id else None,
                 "severity": row.severity, "status": row.status, "created_at": clock.isoformat(row.created_at),
                 "sla_target": clock.isoformat(row.sla_target), "resolved_at": clock.isoformat(row.done),
                 "open": row.done is None, "late_seconds": round(float(row.late))} for row in listed]}}


# ---------------------------------------------------------------- key figures against the previous period

def _change(value, previous) -> dict[str, Any]:
    delta = None if value is None or previous is None else value - previous
    if isinstance(delta, float):
        delta = round(delta, 4)
    return {"value": value, "previous": previous, "delta": delta}


@dataclass(frozen=True)
class _Figures:
    """The key figures of one period."""

    alerts: int
    events: int
    mtta: float | None
    mttr: float | None
    met: int
    breached: int


def _figures(session: Session, scope: Scope, periods: Sequence[tuple[datetime, datetime]]) -> list[_Figures]:
    """The key figures of each of `periods` ([since, until) each): one SQL aggregate per
    measure over all of them (each row counted in the period its timestamp falls in)."""
    start, end = min(p[0] for p in periods), max(p[1] for p in periods)

    def within(at):
        return [and_(at >= since, at < until) for since, until in periods]

    events = 1 + Alert.duplicate_count
    row = session.execute(select(
        *(_count(inside) for inside in within(Alert.first_seen_at)),
        *(func.coalesce(func.sum(case((inside, events), else_=0)), 0) for inside in within(Alert.first_seen_at)),
    ).where(*scope.alerts(Alert.first_seen_at >= start, Alert.first_seen_at < end))).one()
    alerts, counted = [int(v) for v in row[:len(periods)]], [int(v) for v in row[len(periods):]]

    def mean(value, at) -> list[float | None]:
        row = session.execute(select(*(func.avg(case((inside, value))) for inside in within(at)))
                              .where(*scope.alerts(at >= start, at < end, value.is_not(None)))).one()
        return [None if v is None else round(float(v), 3) for v in row]

    mtta = mean(Alert.time_to_ack, Alert.acknowledged_at)
    mttr = mean(Alert.time_to_resolve, Alert.resolved_at)
    is_met, is_breached, _ = _outcomes(scope)
    row = session.execute(select(
        *(_count(and_(inside, is_met)) for inside in within(Incident.created_at)),
        *(_count(and_(inside, is_breached)) for inside in within(Incident.created_at)),
    ).where(*_sla_where(scope, start, end))).one()
    met, breached = [int(v) for v in row[:len(periods)]], [int(v) for v in row[len(periods):]]
    return [_Figures(*values) for values in zip(alerts, counted, mtta, mttr, met, breached, strict=True)]


def _from_sections(sections: dict[str, Any]) -> _Figures | None:
    """The window's key figures from its report sections, when they were all made: the same
    rows and the same aggregates (counts, sums of integers, means rounded alike), so the
    same numbers without reading the window again."""
    if not {"frequency", "mtta", "mttr", "sla"} <= set(sections):
        return None
    by_type = sections["frequency"]["by_type"].values()
    return _Figures(sum(v["alerts"] for v in by_type), sum(v["events"] for v in by_type),
                    sections["mtta"]["overall"]["mean_seconds"], sections["mttr"]["overall"]["mean_seconds"],
                    sections["sla"]["met"], sections["sla"]["breached"])


def kpis(session: Session, scope: Scope, sections: dict[str, Any] | None = None) -> dict[str, Any]:
    """Alerts, events, mean MTTA and MTTR and SLA compliance of the window and of the
    previous period of the same length. The window's come from `sections` (this window's
    report sections) when they hold them; the rest is one SQL aggregate per measure."""
    before, since = scope.previous()
    now = _from_sections(sections or {})
    if now is None:
        now, then = _figures(session, scope, [(since, scope.until), (before, since)])
    else:
        [then] = _figures(session, scope, [(before, since)])
    return {
        "window": scope.window(),
        "previous_window": {"since": clock.isoformat(before), "until": clock.isoformat(since)},
        "alerts": _change(now.alerts, then.alerts),
        "events": _change(now.events, then.events),
        "mtta_mean_seconds": _change(now.mtta, then.mtta),
        "mttr_mean_seconds": _change(now.mttr, then.mttr),
        "sla_compliance": _change(_compliance(now.met, now.breached), _compliance(then.met, then.breached)),
    }


# ---------------------------------------------------------------- noisy sites

def noisy(session: Session, scope: Scope, top: int = 10) -> dict[str, Any]:
    """One statement, reading the window once: the groups per site, the total of the window
    as a window sum over all of them — the site-less group included, left out after."""
    where = scope.alerts(Alert.first_seen_at >= scope.since, Alert.first_seen_at < scope.until)
    groups = (select(Alert.site_id.label("site_id"), func.count().label("alerts"),
                     func.sum(1 + Alert.duplicate_count).label("events"),
                     func.sum(case((Alert.maintenance_window_id.is_not(None), 1), else_=0)).label("suppressed"),
                     func.sum(func.count()).over().label("total"))
              .where(*where).group_by(Alert.site_id).subquery())
    rows = session.execute(select(groups).where(groups.c.site_id.is_not(None))
                           .order_by(groups.c.alerts.desc(), groups.c.site_id).limit(top)).all()
    # No site in the window: the total (of site-less alerts only) needs a statement of its own.
    total = int(rows[0].total) if rows else int(session.scalar(
        select(func.count()).select_from(Alert).where(*where)) or 0)
    units = {u.id: u for u in session.execute(
        select(BusinessUnit.id, BusinessUnit.code, BusinessUnit.client_id)
        .where(BusinessUnit.id.in_([r.site_id for r in rows] or [-1])))}
    clients = _codes(session, {u.client_id for u in units.values()})
    return {
        "window": scope.window(),
        "total_alerts": total,
        "sites": [{"site": units[r.site_id].code, "client": clients.get(units[r.site_id].client_id),
                   "alerts": int(r.alerts), "events": int(r.events), "suppressed": int(r.suppressed),
                   "share": round(r.alerts / total, 4) if total else 0.0} for r in rows],
    }


# ---------------------------------------------------------------- entry point

def build(session: Session, caller: Caller, kinds: Sequence[str], since: datetime, until: datetime,
          tz: str | None = None, client_code: str | None = None, top: int = 10,
          export: bool = False, compare: bool = False) -> dict[str, Any]:
    """The data of the report sections `kinds`, in one read-only transaction. `export`: the
    report will leave the tool as a file, which needs noc:export (over the client, or
    tenant-wide) — checked before any aggregation; `record_export` then audits it.
    `compare` (the weekly report): add `kpis`, the key figures against the previous period."""
    with session.begin():
        scope = open_scope(session, caller, since, until, tz, client_code)
        if export:
            scope.access.require(EXPORT, scope.client_id, what=f"client {client_code}" if client_code else None)
        makers = {"mttr": mttr, "mtta": mtta, "frequency": frequency, "sla": sla,
                  "noisy": lambda s, sc: noisy(s, sc, top)}
        sections = {kind: makers[kind](session, scope) for kind in kinds}
        document = {"window": scope.window(), "time_zone": scope.zone.key, "client": client_code,
                    "generated_at": clock.isoformat(scope.now), "sections": sections}
        if compare:
            document["kpis"] = kpis(session, scope, sections)
        return document


def record_export(session: Session, caller: Caller, document: dict[str, Any], details: dict[str, Any]) -> None:
    """The EXPORT_DATA audit row of a report written to a file (`details`: report, format,
    file), in a short write transaction of its own: the aggregation before it only read,
    so it never held SQLite's write lock against ingests."""
    with session.begin():
        scope = access.for_caller(session, caller)
        client = document["client"]
        if client is None:
            scope.require(EXPORT)
        client_id = scope.client(session, client, EXPORT).id if client is not None else None
        audit.record(session, scope.actor, "EXPORT_DATA", "report", details.get("report"),
                     {**details, **document["window"], "client": document["client"],
                      "time_zone": document["time_zone"]}, client_id)
