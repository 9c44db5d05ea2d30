"""The numbers of the reports (DESIGN §7), aggregated in SQL on both databases — counts and
sums, the means divided from them — with one exception: the MTTR/MTTA percentiles. Their
durations come out of one aggregate per measure (PostgreSQL `array_agg`, SQLite
`group_concat`, per severity and client, read from the covering index alone) and are
sorted here, with PostgreSQL's `percentile_cont` arithmetic (linear interpolation), so that
the database sorts nothing: its ordered-set aggregates and window functions sorted the same
values once per grouping. No other report loads alert rows into Python.

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

import bisect
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ARRAY, Float, Integer, and_, bindparam, case, cast, func, literal, or_, select, text
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


def _kth(runs: Sequence[Sequence[int]], k: int) -> int:
    """The k-th smallest (from 0) of the values of the ascending `runs` taken together,
    without merging them: the least integer v with more than k values ≤ v, by bisection
    over the integers (≈ 25 steps of one `bisect` per run)."""
    if len(runs) == 1:
        return runs[0][k]
    low, high = min(run[0] for run in runs if run), max(run[-1] for run in runs if run)
    while low < high:
        middle = (low + high) // 2
        if sum(bisect.bisect_right(run, middle) for run in runs) > k:
            high = middle
        else:
            low = middle + 1
    return low


def percentile(runs: Sequence[Sequence[int]], p: float) -> float:
    """PostgreSQL's `percentile_cont(p)` of the values of the ascending `runs` (not all
    empty), the same float operations in the same order: r = p·(n − 1), lo = ⌊r⌋,
    x[lo] + (r − lo)·(x[lo+1] − x[lo]), x the values in ascending order."""
    r = p * (sum(len(run) for run in runs) - 1)
    lo = math.floor(r)
    value = _kth(runs, lo)
    if lo == math.ceil(r):
        return float(value)
    # x[lo+1]: x[lo] again if more than lo + 1 values are ≤ it, else the least value above it.
    ends = [bisect.bisect_right(run, value) for run in runs]
    following = value if sum(ends) > lo + 1 else min(run[end] for run, end in zip(runs, ends, strict=True)
                                                      if end < len(run))
    low = float(value)
    return low + (r - lo) * (float(following) - low)


@dataclass
class _Durations:
    """The durations of one group: their count, their exact integer sum, and the values as
    the ascending runs of its cells (never merged: see `_kth`)."""

    count: int = 0
    total: int = 0
    runs: list[list[int]] = field(default_factory=list)

    def add(self, other: _Durations) -> None:
        self.count += other.count
        self.total += other.total
        self.runs += other.runs

    def stats(self) -> dict[str, Any]:
        if not self.count:
            return EMPTY
        return _stats(self.count, self.total / self.count, percentile(self.runs, 0.5), percentile(self.runs, 0.9))


def _cells(session: Session, value, where) -> dict[tuple[str, int], _Durations]:
    """The durations per (severity, client) in one statement that reads only the covering
    index: count, sum and the values themselves (PostgreSQL: an array; SQLite: a
    comma-separated text), at most 5 × clients cells. Each cell's values are sorted here,
    not by the database (its ordered-set aggregates and window functions sorted them again
    for each grouping); the groups' percentiles are then found among the sorted cells."""
    postgres = session.get_bind().dialect.name == "postgresql"
    values = func.array_agg(value) if postgres else func.group_concat(value, ",")
    cells = {}
    for severity, client_id, count, total, listed in session.execute(
            select(Alert.severity, Alert.client_id, func.count(), func.sum(value), values)
            .where(*where).group_by(Alert.severity, Alert.client_id)):
        parsed = listed if postgres else json.loads(f"[{listed}]")
        parsed.sort()
        cells[severity, client_id] = _Durations(int(count), int(total), [parsed])
    return cells


def _durations(session: Session, scope: Scope, kind: str) -> dict[str, Any]:
    value, at = (Alert.time_to_resolve, Alert.resolved_at) if kind == "mttr" else \
        (Alert.time_to_ack, Alert.acknowledged_at)
    cells = _cells(session, value, scope.alerts(at >= scope.since, at < scope.until, value.is_not(None)))
    by_severity: dict[str, _Durations] = {sev: _Durations() for sev in SEVERITIES}
    by_client_id: dict[int, _Durations] = {}
    for (severity, client_id), cell in cells.items():
        by_severity.setdefault(severity, _Durations()).add(cell)
        by_client_id.setdefault(client_id, _Durations()).add(cell)
    overall = _Durations()
    for group in by_severity.values():
        overall.add(group)
    codes = _codes(session, by_client_id)
    return {
        "window": scope.window(),
        "overall": overall.stats(),
        "by_severity": {sev: by_severity[sev].stats() for sev in SEVERITIES},
        "by_client": {codes[cid]: group.stats()
                      for cid, group in sorted(by_client_id.items(), key=lambda kv: codes[kv[0]])},
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


def _day_number(session: Session, scope: Scope, local_days: Sequence[tuple[str, datetime, datetime, bool]]):
    """The SQL of each alert's local day as 1 + its index in `local_days`, 0 before the
    window (the previous period, when the statement reads it). PostgreSQL: `width_bucket`
    over the days' starts, a binary search. SQLite: whole days since the first local
    midnight, when every day of the window is 24 h long; a CASE over the days' ends when a
    daylight-saving change makes one shorter or longer. Correct across DST either way."""
    if not local_days:
        return literal(1)
    starts = [start for _, start, _, _ in local_days]  # the first is `since`: before it, 0
    if session.get_bind().dialect.name == "postgresql":
        return func.width_bucket(Alert.first_seen_at, bindparam("day_starts", starts, ARRAY(UTCDateTime())),
                                 type_=Integer)
    first_day = scope.since.astimezone(scope.zone).date()
    midnights = [datetime.combine(first_day + timedelta(days=i), time(), scope.zone).astimezone(UTC)
                 for i in range(len(local_days) + 1)]
    if all(b - a == timedelta(days=1) for a, b in itertools.pairwise(midnights)):
        # Whole seconds since the first local midnight (midnights fall on whole seconds), of
        # the stored text cut to the second ("YYYY-MM-DD HH:MM:SS.ffffff"): SQLite's own
        # parse rounds to the millisecond, which moves 23:59:59.9995 to the next day.
        first = int(midnights[0].timestamp())
        seconds = func.unixepoch(func.substr(Alert.first_seen_at, 1, 19), type_=Integer)
        return case((Alert.first_seen_at < scope.since, 0), else_=(seconds - first) // 86400 + 1)
    return case((Alert.first_seen_at < scope.since, 0),
                *((Alert.first_seen_at < end, number) for number, (_, _, end, _) in enumerate(local_days, 1)),
                else_=len(local_days))


def _frequency(session: Session, scope: Scope, previous: bool = False) -> tuple[dict[str, Any], tuple[int, int]]:
    """One statement, reading the window once (and with `previous`, the previous period
    too, in the same scan): the counts per (type, severity, local day) — at most
    8 × 5 × 32 rows — summed into by_type, by_severity and by_day here, and the previous
    period's (alerts, events) when asked ((0, 0) otherwise). The types come ordered by the
    database (their total in the window descending, then the type's collation order).

    The day is computed in a subquery kept apart (`OFFSET 0`): grouped by the expression
    itself, PostgreSQL expects a group per row and sorts; grouped by the subquery's column,
    it expects few groups and hashes."""
    start = scope.previous()[0] if previous else scope.since
    local_days = day_spans(scope)
    rows = (select(Alert.alert_type, Alert.severity, _day_number(session, scope, local_days).label("day"),
                   (1 + Alert.duplicate_count).label("events"))
            .where(*scope.alerts(Alert.first_seen_at >= start, Alert.first_seen_at < scope.until))
            .offset(0).subquery())
    alerts = func.count()
    type_total = func.sum(case((rows.c.day > 0, alerts), else_=0)).over(partition_by=rows.c.alert_type)
    by_type: dict[Any, list[int]] = {}
    by_severity: dict[Any, list[int]] = {}
    by_day: dict[Any, list[int]] = {}
    before = [0, 0]
    for alert_type, severity, day, n, e in session.execute(
            select(rows.c.alert_type, rows.c.severity, rows.c.day, alerts, func.sum(rows.c.events))
            .group_by(rows.c.alert_type, rows.c.severity, rows.c.day)
            .order_by(type_total.desc(), rows.c.alert_type)):
        summed = [before] if not day else [table.setdefault(key, [0, 0]) for table, key in (
            (by_type, alert_type), (by_severity, severity), (by_day, int(day)))]
        for pair in summed:
            pair[0] += int(n)
            pair[1] += int(e)

    def counts(pair) -> dict[str, int]:
        return {"alerts": pair[0], "events": pair[1]}

    return {
        "window": scope.window(),
        "time_zone": scope.zone.key,
        "by_type": {t: counts(pair) for t, pair in by_type.items()},
        "by_severity": {sev: counts(by_severity.get(sev, (0, 0))) for sev in SEVERITIES},
        "by_day": [{"day": label, **counts(by_day.get(number, (0, 0))),
                    "partial": partial, "since": clock.isoformat(start), "until": clock.isoformat(end)}
                   for number, (label, start, end, partial) in enumerate(local_days, 1)],
    }, (before[0], before[1])


def frequency(session: Session, scope: Scope) -> dict[str, Any]:
    return _frequency(session, scope)[0]


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


def _figures(session: Session, scope: Scope, periods: Sequence[tuple[datetime, datetime]],
             counted: Sequence[tuple[int, int]] | None = None) -> list[_Figures]:
    """The key figures of each of `periods` ([since, until) each): one SQL aggregate per
    measure over all of them (each row counted in the period its timestamp falls in).
    `counted`: the periods' (alerts, events) when already known (read in the frequency
    statement's scan), so not read again."""
    start, end = min(p[0] for p in periods), max(p[1] for p in periods)

    def within(at):
        return [and_(at >= since, at < until) for since, until in periods]

    if counted is None:
        events = 1 + Alert.duplicate_count
        row = session.execute(select(
            *(_count(inside) for inside in within(Alert.first_seen_at)),
            *(func.coalesce(func.sum(case((inside, events), else_=0)), 0) for inside in within(Alert.first_seen_at)),
        ).where(*scope.alerts(Alert.first_seen_at >= start, Alert.first_seen_at < end))).one()
        counted = list(zip((int(v) for v in row[:len(periods)]), (int(v) for v in row[len(periods):]), strict=True))
    alerts, events_counted = [a for a, _ in counted], [e for _, e in counted]

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
    return [_Figures(*values) for values in zip(alerts, events_counted, mtta, mttr, met, breached, strict=True)]


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


def kpis(session: Session, scope: Scope, sections: dict[str, Any] | None = None,
         previous_counted: tuple[int, int] | None = None) -> dict[str, Any]:
    """Alerts, events, mean MTTA and MTTR and SLA compliance of the window and of the
    previous period of the same length. The window's come from `sections` (this window's
    report sections) when they hold them, the previous period's alerts and events from
    `previous_counted` when given; the rest is one SQL aggregate per measure."""
    before, since = scope.previous()
    now = _from_sections(sections or {})
    if now is None:
        now, then = _figures(session, scope, [(since, scope.until), (before, since)])
    else:
        [then] = _figures(session, scope, [(before, since)], None if previous_counted is None else [previous_counted])
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
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            # Compiling these aggregates costs more than it saves at a million rows.
            session.execute(text("SET LOCAL jit = off"))
        scope = open_scope(session, caller, since, until, tz, client_code)
        if export:
            scope.access.require(EXPORT, scope.client_id, what=f"client {client_code}" if client_code else None)
        makers = {"mttr": mttr, "mtta": mtta, "sla": sla, "noisy": lambda s, sc: noisy(s, sc, top)}
        sections, previous_counted = {}, None
        for kind in kinds:
            if kind == "frequency":
                # PostgreSQL reads the whole table for it (no index leads with the first-seen
                # time): the weekly report's previous period is counted in the same scan.
                # SQLite reads the window's rows only, the previous period's apart.
                sections[kind], counted = _frequency(session, scope, previous=compare and postgres)
                previous_counted = counted if compare and postgres else None
            else:
                sections[kind] = makers[kind](session, scope)
        document = {"window": scope.window(), "time_zone": scope.zone.key, "client": client_code,
                    "generated_at": clock.isoformat(scope.now), "sections": sections}
        if compare:
            document["kpis"] = kpis(session, scope, sections, previous_counted)
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
