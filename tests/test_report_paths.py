"""The report numbers as the database paths compute them (DESIGN §7) — MTTR/MTTA percentiles
sorted in Python from one aggregate per measure, the local day of frequency (PostgreSQL's
`width_bucket`; SQLite's whole days, or a CASE over the days when a DST change makes one of
them shorter or longer), the weekly report's previous period read in the frequency scan —
against a plain computation over the rows this test wrote itself, exact to the digit shown.

The rows are written directly (not through ingest), so that they can sit exactly on the
boundaries: the window's and the previous period's ends, local midnights, a microsecond either
side. Groups are empty, of one value, or full of ties; alerts are never acknowledged or
resolved, or resolved without a duration; incidents open, pending, closed late, without a
target. Another tenant's rows fall in the same window and must count nowhere. Each case is run
for the tenant admin, for the admin narrowed to one client, and for a person who sees one
client only. Both databases."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from conftest import as_person
from nocctl import clock
from nocctl.models import Alert, BusinessUnit, Incident, Tenant
from nocctl.services import org, people, reports

SINCE = datetime(2026, 3, 24, 9, 15, 0, 250000, tzinfo=UTC)  # mid-day: the first local day is partial
UNTIL = datetime(2026, 3, 31, 17, 40, tzinfo=UTC)  # Europe/Berlin goes to summer time on the 29th
NOW = UNTIL + timedelta(hours=2)
PREVIOUS = SINCE - (UNTIL - SINCE)
US = timedelta(microseconds=1)
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
TYPES = ("ALPHA", "BRAVO", "CHARLIE", "DELTA")  # ordered alike by every collation
ZONES = ("UTC", "Asia/Kolkata", "Europe/Berlin")


@dataclass
class Row:
    """One alert as this test wrote it."""

    tenant: str
    client: str
    site: str | None
    alert_type: str
    severity: str
    first: datetime
    duplicates: int
    acknowledged: datetime | None
    tta: int | None
    resolved: datetime | None
    ttr: int | None


@dataclass
class Case:
    """One incident as this test wrote it."""

    tenant: str
    client: str | None
    created: datetime
    target: datetime | None
    resolved: datetime | None
    closed: datetime | None


def boundary_instants(zone: ZoneInfo) -> list[datetime]:
    """The window's and the previous period's ends, and every local midnight of the window in
    `zone`, each exactly and a microsecond either side."""
    marks = [PREVIOUS, SINCE, UNTIL]
    day = SINCE.astimezone(zone).date()
    while (midnight := datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)) < UNTIL:
        marks.append(midnight)
        day += timedelta(days=1)
    return [m + d for m in marks for d in (-US, timedelta(0), US)]


def generate(rng: random.Random) -> tuple[list[Row], list[Case]]:
    rows: list[Row] = []
    span = (UNTIL - PREVIOUS).total_seconds()
    sites = {"A": ["a1", "a2", None], "B": ["b1", None]}

    def instant() -> datetime:
        return PREVIOUS - timedelta(days=1) + timedelta(seconds=rng.uniform(0, span + 2 * 86400))

    def duration(severity: str) -> int:
        if severity == "MEDIUM":  # ties: a handful of values only
            return rng.choice([60, 60, 120, 300, 300, 300, 3600])
        return rng.randint(30, 50_000)

    for i in range(420):
        client = rng.choice("AB")
        severity = rng.choice(("CRITICAL", "HIGH", "MEDIUM"))  # LOW and INFO come below
        first = instant()
        acknowledged = resolved = None
        tta = ttr = None
        if rng.random() < 0.7:
            tta = duration(severity)
            acknowledged = first + timedelta(seconds=tta)
        if rng.random() < 0.75:
            ttr = duration(severity)
            resolved = (acknowledged or first) + timedelta(seconds=ttr)
            if i % 37 == 0:
                ttr = None  # resolved with no duration recorded: not a duration to count
        rows.append(Row("default", client, rng.choice(sites[client]), rng.choice(TYPES), severity, first,
                        rng.choice([0, 0, 1, 4, 250]), acknowledged, tta, resolved, ttr))
    # One LOW resolution and one LOW acknowledgement in the window: groups of one value. No INFO.
    rows.append(Row("default", "A", "a1", "DELTA", "LOW", SINCE + timedelta(hours=1), 0,
                    SINCE + timedelta(hours=2), 3600, SINCE + timedelta(hours=3), 7207))
    # Exactly on the boundaries, for the first-seen, acknowledged and resolved instants.
    for n, at in enumerate(sorted({m for zone in ZONES for m in boundary_instants(ZoneInfo(zone))})):
        client, severity = "AB"[n % 2], ("CRITICAL", "HIGH", "MEDIUM")[n % 3]
        rows.append(Row("default", client, None, TYPES[n % 4], severity, at, n % 3, at, 100 + n, at, 1000 + n))
    # Another tenant's alerts, in the window and on its boundaries: never counted.
    for n in range(40):
        at = SINCE + timedelta(hours=4 * n) if n % 5 else SINCE
        rows.append(Row("other", "X", "x1", TYPES[n % 4], SEVERITIES[n % 5], at, 7, at + timedelta(seconds=9),
                        9, at + timedelta(seconds=99), 99))

    cases = []
    for n in range(120):
        created = PREVIOUS + timedelta(seconds=rng.uniform(-86400, span))
        target = created + timedelta(hours=rng.choice([4, 8, 24])) if n % 11 else None
        done = created + timedelta(hours=rng.uniform(1, 30))
        kind = n % 4
        resolved = done if kind == 0 or (kind == 1 and done < NOW) else None
        closed = done if kind == 2 and done < NOW else None  # closed without a resolution
        cases.append(Case("default", rng.choice(["A", "B", None]), created, target, resolved, closed))  # 3: open
    cases += [Case("default", "A", SINCE, SINCE + timedelta(hours=1), None, None),  # open, past target
              Case("default", "B", UNTIL - US, NOW + timedelta(hours=1), None, None),  # open, not yet due
              Case("default", "A", UNTIL, UNTIL, None, None),  # just after the window
              Case("default", "B", SINCE, SINCE + timedelta(hours=1), SINCE + timedelta(hours=1), None),  # on time
              Case("other", "X", SINCE, SINCE, None, None)]
    return rows, cases


@pytest.fixture
def world(new_session, initialised):
    """The generated rows in the database: tenant `default` with clients A (sites a1, a2), B
    (b1) and C (nothing), a person `viewer` who sees client A only; tenant `other` with
    client X (site x1). Returns the rows and incidents written."""
    admin = initialised
    for code in "ABC":
        org.add_client(new_session(), admin, code, f"Client {code}")
    for site, client in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        org.add_site(new_session(), admin, site, client, f"Site {site}")
    people.add(new_session(), admin, "viewer")
    people.grant(new_session(), admin, "viewer", "noc:view_client", client="A")
    rows, cases = generate(random.Random(7))
    with new_session() as session, session.begin():
        other = Tenant(slug="other", name="Other", created_at=PREVIOUS)
        session.add(other)
        session.flush()
        x = BusinessUnit(tenant_id=other.id, kind="CLIENT", code="X", name="X", created_at=PREVIOUS,
                         updated_at=PREVIOUS)
        session.add(x)
        session.flush()
        x1 = BusinessUnit(tenant_id=other.id, kind="SITE", code="x1", name="x1", parent_id=x.id, client_id=x.id,
                          created_at=PREVIOUS, updated_at=PREVIOUS)
        session.add(x1)
        session.flush()
        units = {(t, code): i for i, t, code in session.execute(
            select(BusinessUnit.id, BusinessUnit.tenant_id, BusinessUnit.code))}
        tenants: dict[str, int] = {slug: i for slug, i in session.execute(select(Tenant.slug, Tenant.id))}

        def unit(tenant: str, code: str | None) -> int | None:
            return None if code is None else units[tenants[tenant], code]

        session.execute(insert(Alert), [
            {"tenant_id": tenants[r.tenant], "client_id": unit(r.tenant, r.client), "site_id": unit(r.tenant, r.site),
             "alert_type": r.alert_type, "severity": r.severity, "message": "m", "dedup_key": f"k{i}",
             "status": "RESOLVED" if r.resolved else "ACKNOWLEDGED" if r.acknowledged else "NEW",
             "first_seen_at": r.first, "last_seen_at": r.first, "created_at": r.first,
             "duplicate_count": r.duplicates, "acknowledged_at": r.acknowledged, "time_to_ack": r.tta,
             "resolved_at": r.resolved, "time_to_resolve": r.ttr} for i, r in enumerate(rows)])
        session.execute(insert(Incident), [
            {"tenant_id": tenants[c.tenant], "title": f"incident {i}", "severity": "HIGH",
             "status": "RESOLVED" if c.resolved else "CLOSED" if c.closed else "NEW",
             "client_id": unit(c.tenant, c.client), "created_at": c.created, "sla_target": c.target,
             "resolved_at": c.resolved, "closed_at": c.closed} for i, c in enumerate(cases)])
    return rows, cases


# ---------------------------------------------------------------- the plain computation

def rounded(value: Fraction | None) -> float | None:
    return None if value is None else float(round(value, 3))


def percentile(values: list[int], p: Fraction) -> Fraction:
    """Linear interpolation between the neighbours of rank p·(n − 1) in the sorted values,
    in exact arithmetic."""
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    lo = rank.numerator // rank.denominator
    if lo == len(ordered) - 1:
        return Fraction(ordered[lo])
    return ordered[lo] + (rank - lo) * (ordered[lo + 1] - ordered[lo])


def stats(values: list[int]) -> dict:
    if not values:
        return {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    return {"count": len(values), "mean_seconds": rounded(Fraction(sum(values), len(values))),
            "p50_seconds": rounded(percentile(values, Fraction(1, 2))),
            "p90_seconds": rounded(percentile(values, Fraction(9, 10)))}


def durations(rows: list[Row], kind: str, since: datetime, until: datetime) -> dict:
    def pick(r: Row) -> tuple[datetime | None, int | None]:
        return (r.resolved, r.ttr) if kind == "mttr" else (r.acknowledged, r.tta)

    counted = [r for r in rows if pick(r)[0] is not None and since <= pick(r)[0] < until and pick(r)[1] is not None]
    values = [pick(r)[1] for r in counted]
    return {"overall": stats(values),
            "by_severity": {s: stats([pick(r)[1] for r in counted if r.severity == s]) for s in SEVERITIES},
            "by_client": {c: stats([pick(r)[1] for r in counted if r.client == c])
                          for c in sorted({r.client for r in counted})}}


def frequency(rows: list[Row], zone: ZoneInfo) -> dict:
    inside = [r for r in rows if SINCE <= r.first < UNTIL]
    by_type: dict[str, list[int]] = {}
    for r in inside:
        pair = by_type.setdefault(r.alert_type, [0, 0])
        pair[0], pair[1] = pair[0] + 1, pair[1] + 1 + r.duplicates
    days = []
    day, last = SINCE.astimezone(zone).date(), (UNTIL - US).astimezone(zone).date()
    while day <= last:
        on = [r for r in inside if r.first.astimezone(zone).date() == day]
        days.append({"day": day.isoformat(), "alerts": len(on), "events": sum(1 + r.duplicates for r in on)})
        day += timedelta(days=1)
    return {"by_type": [(t, {"alerts": a, "events": e})
                        for t, (a, e) in sorted(by_type.items(), key=lambda kv: (-kv[1][0], kv[0]))],
            "by_severity": {s: {"alerts": sum(1 for r in inside if r.severity == s),
                                "events": sum(1 + r.duplicates for r in inside if r.severity == s)}
                            for s in SEVERITIES},
            "by_day": days}


def outcomes(cases: list[Case], since: datetime, until: datetime) -> tuple[int, int, int]:
    met = breached = pending = 0
    for c in cases:
        if c.target is None or not since <= c.created < until:
            continue
        done = c.resolved or c.closed
        if done is not None:
            met, breached = (met + 1, breached) if done <= c.target else (met, breached + 1)
        elif c.target <= NOW:
            breached += 1
        else:
            pending += 1
    return met, breached, pending


def compliance(met: int, breached: int) -> float | None:
    return None if met + breached == 0 else float(round(Fraction(met, met + breached), 4))


def change(value, previous) -> dict:
    delta = None if value is None or previous is None else value - previous
    return {"value": value, "previous": previous, "delta": round(delta, 4) if isinstance(delta, float) else delta}


def mean(rows: list[Row], kind: str, since: datetime, until: datetime) -> float | None:
    return durations(rows, kind, since, until)["overall"]["mean_seconds"]


# ---------------------------------------------------------------- the cases

WHO = {  # who asks → (caller, --client, what the answer must cover)
    "admin": (None, None, lambda client: True),
    "admin --client B": (None, "B", lambda client: client == "B"),
    "viewer of A": ("viewer", None, lambda client: client == "A"),
}


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("who", list(WHO))
def test_the_weekly_report_is_the_plain_computation_over_the_rows(world, new_session, initialised, monkeypatch,
                                                                  zone_name, who):
    monkeypatch.setenv("NOC_NOW", NOW.isoformat())
    username, client, covers = WHO[who]
    caller = initialised if username is None else as_person(username)
    zone = ZoneInfo(zone_name)
    all_rows, all_cases = world
    rows = [r for r in all_rows if r.tenant == "default" and covers(r.client)]
    cases = [c for c in all_cases if (c.tenant == "default" and c.client is not None and covers(c.client))
             or (c.tenant == "default" and c.client is None and who == "admin")]

    document = reports.build(new_session(), caller, reports.KINDS, SINCE, UNTIL, zone_name, client, compare=True)
    sections = document["sections"]

    for kind in ("mttr", "mtta"):
        want = durations(rows, kind, SINCE, UNTIL)
        got = sections[kind]
        assert got["overall"] == want["overall"], kind
        assert got["by_severity"] == want["by_severity"], kind
        assert got["by_client"] == want["by_client"], kind
        assert list(got["by_client"]) == list(want["by_client"])

    want_frequency = frequency(rows, zone)
    got = sections["frequency"]
    assert list(got["by_type"].items()) == want_frequency["by_type"]
    assert got["by_severity"] == want_frequency["by_severity"]
    assert [{k: d[k] for k in ("day", "alerts", "events")} for d in got["by_day"]] == want_frequency["by_day"]

    met, breached, pending = outcomes(cases, SINCE, UNTIL)
    assert (sections["sla"]["met"], sections["sla"]["breached"], sections["sla"]["pending"]) == (met, breached, pending)

    before = [r for r in rows if PREVIOUS <= r.first < SINCE]
    then_met, then_breached, _ = outcomes(cases, PREVIOUS, SINCE)
    alerts_now = sum(1 for r in rows if SINCE <= r.first < UNTIL)
    events_now = sum(1 + r.duplicates for r in rows if SINCE <= r.first < UNTIL)
    assert document["kpis"] == {
        "window": document["window"],
        "previous_window": {"since": clock.isoformat(PREVIOUS), "until": clock.isoformat(SINCE)},
        "alerts": change(alerts_now, len(before)),
        "events": change(events_now, sum(1 + r.duplicates for r in before)),
        "mtta_mean_seconds": change(mean(rows, "mtta", SINCE, UNTIL), mean(rows, "mtta", PREVIOUS, SINCE)),
        "mttr_mean_seconds": change(mean(rows, "mttr", SINCE, UNTIL), mean(rows, "mttr", PREVIOUS, SINCE)),
        "sla_compliance": change(compliance(met, breached), compliance(then_met, then_breached)),
    }


def test_the_generated_rows_hold_the_edge_cases_they_are_meant_to(world):
    """So that the comparison above cannot pass for want of a case."""
    rows, cases = world
    ours = [r for r in rows if r.tenant == "default"]
    resolved = [r.ttr for r in ours if r.resolved and SINCE <= r.resolved < UNTIL and r.ttr is not None]
    assert len(resolved) > 100 and len(resolved) != len(set(resolved))  # ties
    low = [r for r in ours if r.severity == "LOW" and r.resolved and SINCE <= r.resolved < UNTIL]
    assert len(low) == 1  # a group of one
    assert not any(r.severity == "INFO" for r in ours)  # an empty group
    assert any(r.resolved and SINCE <= r.resolved < UNTIL and r.ttr is None for r in ours)
    assert any(r.acknowledged is None and r.resolved is None for r in ours)
    for edge in (SINCE, UNTIL, PREVIOUS, SINCE - US, UNTIL - US):
        assert any(r.first == edge for r in ours) and any(r.resolved == edge for r in ours)
    assert any(r.tenant == "other" and SINCE <= r.first < UNTIL for r in rows)
    assert any(c.resolved is None and c.closed is None and c.target and c.target > NOW and SINCE <= c.created < UNTIL
               for c in cases)  # pending
    assert any(c.target is None for c in cases) and any(c.client is None for c in cases)


def test_a_report_of_a_window_with_nothing_in_it_has_empty_groups(world, new_session, initialised, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW.isoformat())
    since = PREVIOUS - timedelta(days=30)
    document = reports.build(new_session(), initialised, reports.KINDS, since, since + timedelta(days=2),
                             "Europe/Berlin", compare=True)
    sections = document["sections"]
    empty = {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    for kind in ("mttr", "mtta"):
        assert sections[kind]["overall"] == empty and sections[kind]["by_client"] == {}
        assert all(v == empty for v in sections[kind]["by_severity"].values())
    assert sections["frequency"]["by_type"] == {} and len(sections["frequency"]["by_day"]) == 3  # cut at both ends
    assert document["kpis"]["alerts"] == {"value": 0, "previous": 0, "delta": 0}


def test_the_exact_reference_agrees_with_the_definition_on_small_cases():
    assert percentile([100, 200, 300, 1000], Fraction(1, 2)) == 250
    assert percentile([100, 200, 300, 1000], Fraction(9, 10)) == 790
    assert percentile([7], Fraction(9, 10)) == 7
    assert percentile([5, 5, 5, 9], Fraction(9, 10)) == Fraction(78, 10)


def test_the_percentile_is_postgresql_s_on_the_same_floats(engine):
    """reports.percentile of one sorted run against percentile_cont itself where there is a
    PostgreSQL, and of the same values cut into several runs (as a group's cells come,
    one of them empty) against the exact reference: every n up to 60, with ties."""
    rng = random.Random(3)
    samples = [sorted(rng.choice([1, 2, 2, 3, 10, 10_000]) for _ in range(n)) for n in range(1, 61)]
    if engine.dialect.name == "postgresql":
        with Session(engine) as session:
            for values in samples:
                sql = ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.9) WITHIN GROUP"
                       " (ORDER BY v) FROM unnest(CAST(:values AS integer[])) AS v")
                p50, p90 = session.execute(text(sql), {"values": values}).one()
                assert (reports.percentile([values], 0.5), reports.percentile([values], 0.9)) == (p50, p90), values
    for values in samples:
        runs = [sorted(values[0::3]), sorted(values[1::3]), [], sorted(values[2::3])]  # a group of cells
        assert round(reports.percentile(runs, 0.5), 3) == rounded(percentile(values, Fraction(1, 2)))
        assert round(reports.percentile(runs, 0.9), 3) == rounded(percentile(values, Fraction(9, 10)))
