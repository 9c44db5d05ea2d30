"""Report numbers (DESIGN §7) against values this test computes itself from the events it
generated — never from report code: means and continuous percentiles, counts by severity,
type and local day (a non-UTC zone and a DST change), SLA met/breached/pending edge cases,
noisy sites with suppressed alerts, an empty window, and visibility. Both databases."""
from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest_helpers import ORG, ndjson
from nocctl.services import reports

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
SINCE, UNTIL = T0, T0 + timedelta(days=7)
SITES = {"ACME-BLR-WF": "ACME", "ACME-MYS": "ACME", "GLOBEX-PNQ": "GLOBEX", "INITECH-HYD": "INITECH"}
SEVS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
TYPES = ("DEVICE_OFFLINE", "SYNC_DEGRADED", "GEOFENCE_BREACH")


def percentile_cont(values: list[float], p: float) -> float:
    """The reference: rank r = p·(n − 1) in the sorted values, linear between neighbours."""
    ordered = sorted(values)
    r = p * (len(ordered) - 1)
    lo = math.floor(r)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (r - lo) * (ordered[hi] - ordered[lo])


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(UNTIL + timedelta(days=1)))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def ingest(noc, records) -> None:
    result = noc("ingest", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr


def report(new_session, caller, kinds, since=SINCE, until=UNTIL, tz=None, client=None, top=10) -> dict:
    return reports.build(new_session(), caller, kinds, since, until, tz, client, top)["sections"]


def record(i: int, at: datetime, site: str, severity: str, alert_type: str, **extra) -> dict:
    return {"alert_type": alert_type, "severity": severity, "message": f"{alert_type} dev-{i}", "site": site,
            "entity_type": "device", "entity_id": f"dev-{i}", "occurred_at": iso(at), **extra}


@pytest.fixture
def traffic(noc):
    """60 alerts with known first_seen, resolve and acknowledge times (some outside the
    window), returned as the facts the expectations are computed from."""
    rng = random.Random(11)
    facts = []
    triggers, closes = [], []
    for i in range(60):
        site = rng.choice(list(SITES))
        severity, alert_type = rng.choice(SEVS), rng.choice(TYPES)
        first = SINCE + timedelta(hours=rng.uniform(-12, 7 * 24 - 1))
        ack = first + timedelta(seconds=rng.randint(30, 4 * 3600)) if rng.random() < 0.8 else None
        resolve = (ack or first) + timedelta(seconds=rng.randint(60, 30 * 3600)) if rng.random() < 0.75 else None
        triggers.append(record(i, first, site, severity, alert_type))
        if ack:
            closes.append(record(i, ack, site, severity, alert_type, action="acknowledge"))
        if resolve:
            closes.append(record(i, resolve, site, severity, alert_type, action="resolve"))
        facts.append({"i": i, "site": site, "client": SITES[site], "severity": severity, "type": alert_type,
                      "first": first, "ack": ack, "resolve": resolve})
    ingest(noc, triggers)
    ingest(noc, closes)
    return facts


def expected_stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    return {"count": len(values), "mean_seconds": statistics.fmean(values),
            "p50_seconds": percentile_cont(values, 0.5), "p90_seconds": percentile_cont(values, 0.9)}


def assert_stats(got: dict, want: dict) -> None:
    assert got["count"] == want["count"]
    for key in ("mean_seconds", "p50_seconds", "p90_seconds"):
        if want[key] is None:
            assert got[key] is None
        else:
            assert got[key] == pytest.approx(want[key], abs=0.01), key


@pytest.mark.parametrize("kind, stamp", [("mttr", "resolve"), ("mtta", "ack")])
def test_mean_and_percentiles_overall_by_severity_and_by_client(new_session, caller, traffic, kind, stamp):
    def seconds(f):
        # An ingested acknowledge/resolve happens at its occurred_at (DESIGN §3).
        return (f[stamp] - f["first"]).total_seconds()

    counted = [f for f in traffic if f[stamp] is not None and SINCE <= f[stamp] < UNTIL]
    assert 20 < len(counted) < len(traffic)  # the window really cuts some out
    data = report(new_session, caller, [kind])[kind]
    assert data["window"] == {"since": iso(SINCE), "until": iso(UNTIL)}
    assert_stats(data["overall"], expected_stats([seconds(f) for f in counted]))
    for sev in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"):
        assert_stats(data["by_severity"][sev], expected_stats([seconds(f) for f in counted if f["severity"] == sev]))
    assert set(data["by_client"]) == {f["client"] for f in counted}
    for code, got in data["by_client"].items():
        assert_stats(got, expected_stats([seconds(f) for f in counted if f["client"] == code]))


def test_percentiles_interpolate_like_percentile_cont(noc, new_session, caller):
    """Four resolves of 100, 200, 300, 1000 s: p50 = 250, p90 = 300 + 0.7·700 = 790."""
    records, closes = [], []
    for i, duration in enumerate((100, 200, 300, 1000)):
        first = T0 + timedelta(hours=1 + i)
        records.append(record(i, first, "ACME-MYS", "HIGH", "DEVICE_OFFLINE"))
        closes.append(record(i, first + timedelta(seconds=duration), "ACME-MYS", "HIGH", "DEVICE_OFFLINE",
                             action="resolve"))
    ingest(noc, records + closes)
    overall = report(new_session, caller, ["mttr"])["mttr"]["overall"]
    assert overall == {"count": 4, "mean_seconds": 400.0, "p50_seconds": 250.0, "p90_seconds": 790.0}


def test_frequency_counts_types_severities_events_and_suppressed_alerts(noc, new_session, caller, traffic):
    assert noc("maintenance", "add", "--site", "ACME-CHN", "--start", iso(T0), "--duration", "1d",
               "--suppress-all", "--reason", "works").exit_code == 0
    held = [record(100 + i, T0 + timedelta(hours=2 + i), "ACME-CHN", "HIGH", "DEVICE_OFFLINE") for i in range(3)]
    repeats = [record(500, T0 + timedelta(hours=100 + k), "ACME-BLR-WF", "LOW", "SYNC_DEGRADED") for k in range(4)]
    ingest(noc, held + repeats)
    # (type, severity, events) of each alert first seen in the window, from the events sent.
    alerts = [(f["type"], f["severity"], 1) for f in traffic if SINCE <= f["first"] < UNTIL]
    alerts += [("DEVICE_OFFLINE", "HIGH", 1)] * 3 + [("SYNC_DEGRADED", "LOW", 4)]
    data = report(new_session, caller, ["frequency"])["frequency"]
    assert data["by_type"] == {t: {"alerts": sum(1 for a in alerts if a[0] == t),
                                   "events": sum(a[2] for a in alerts if a[0] == t)} for t in {a[0] for a in alerts}}
    for sev in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"):
        assert data["by_severity"][sev] == {"alerts": sum(1 for a in alerts if a[1] == sev),
                                            "events": sum(a[2] for a in alerts if a[1] == sev)}
    assert sum(d["alerts"] for d in data["by_day"]) == len(alerts)  # suppressed alerts count too
    day_of = {}
    for f in traffic:
        if SINCE <= f["first"] < UNTIL:
            day_of.setdefault(f["first"].date().isoformat(), []).append(1)
    for k in range(3):
        day_of.setdefault((T0 + timedelta(hours=2 + k)).date().isoformat(), []).append(1)
    day_of.setdefault((T0 + timedelta(hours=100)).date().isoformat(), []).append(4)
    assert [(d["day"], d["alerts"], d["events"]) for d in data["by_day"]] == [
        ((SINCE + timedelta(days=n)).date().isoformat(),
         len(day_of.get((SINCE + timedelta(days=n)).date().isoformat(), [])),
         sum(day_of.get((SINCE + timedelta(days=n)).date().isoformat(), []))) for n in range(7)]


def test_days_follow_the_report_time_zone(noc, new_session, caller):
    """23:59 and 00:01 in Kolkata (+05:30) fall on two local days though the same UTC day."""
    kolkata = ZoneInfo("Asia/Kolkata")
    late = datetime(2026, 3, 3, 23, 59, tzinfo=kolkata)
    early = datetime(2026, 3, 4, 0, 1, tzinfo=kolkata)
    assert late.astimezone(UTC).date() == early.astimezone(UTC).date()
    ingest(noc, [record(1, late, "ACME-MYS", "HIGH", "DEVICE_OFFLINE"),
                 record(2, early, "ACME-MYS", "HIGH", "DEVICE_OFFLINE"),
                 record(3, early + timedelta(minutes=1), "ACME-MYS", "HIGH", "DEVICE_OFFLINE")])
    local = report(new_session, caller, ["frequency"], tz="Asia/Kolkata")["frequency"]
    by_day = {d["day"]: d["alerts"] for d in local["by_day"]}
    assert by_day["2026-03-03"] == 1 and by_day["2026-03-04"] == 2
    assert local["by_day"][0]["day"] == "2026-03-02"  # since = 05:30 local on the 2nd
    assert sum(by_day.values()) == 3
    utc = {d["day"]: d["alerts"] for d in report(new_session, caller, ["frequency"])["frequency"]["by_day"]}
    assert utc["2026-03-03"] == 3 and len(utc) == 7


def test_days_stay_right_across_a_daylight_saving_change(noc, new_session, caller):
    """New York moves to EDT on 2026-03-08: 00:30 local on the 9th is 04:30Z, which a fixed
    EST offset would put on the 8th."""
    ny = ZoneInfo("America/New_York")
    at = datetime(2026, 3, 9, 0, 30, tzinfo=ny)
    assert at.astimezone(UTC) == datetime(2026, 3, 9, 4, 30, tzinfo=UTC)
    ingest(noc, [record(1, at, "ACME-MYS", "HIGH", "DEVICE_OFFLINE")])
    data = report(new_session, caller, ["frequency"], since=datetime(2026, 3, 7, 5, tzinfo=UTC),
                  until=datetime(2026, 3, 10, 4, tzinfo=UTC), tz="America/New_York")["frequency"]
    assert [(d["day"], d["alerts"]) for d in data["by_day"]] == [
        ("2026-03-07", 0), ("2026-03-08", 0), ("2026-03-09", 1)]


def _incident(noc, monkeypatch, created: datetime, severity="CRITICAL") -> int:
    monkeypatch.setenv("NOC_NOW", iso(created))
    result = noc("incident", "create", "--title", f"{severity} at {iso(created)}", "--severity", severity,
                 "--client", "ACME")
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def _resolve(noc, monkeypatch, incident_id: int, at: datetime) -> None:
    monkeypatch.setenv("NOC_NOW", iso(at))
    result = noc("incident", "resolve", str(incident_id))
    assert result.exit_code == 0, result.stderr


def test_sla_met_breached_pending_at_the_edges(noc, new_session, caller, monkeypatch):
    """CRITICAL has a 4h target. Report made at UNTIL − 1h."""
    four = timedelta(hours=4)
    on_time = _incident(noc, monkeypatch, T0 + timedelta(hours=1))
    _resolve(noc, monkeypatch, on_time, T0 + timedelta(hours=1) + four)  # exactly at the target: met
    late = _incident(noc, monkeypatch, T0 + timedelta(hours=2))
    _resolve(noc, monkeypatch, late, T0 + timedelta(hours=2) + four + timedelta(seconds=1))  # 1 s late: breached
    _incident(noc, monkeypatch, T0 + timedelta(days=3))  # open, long past its target: breached
    _incident(noc, monkeypatch, UNTIL - timedelta(hours=2))  # open, due in 2h at report time: pending
    _incident(noc, monkeypatch, T0 + timedelta(days=1), severity="INFO")  # no target: not judged
    _incident(noc, monkeypatch, T0 - timedelta(hours=1))  # before the window
    monkeypatch.setenv("NOC_NOW", iso(UNTIL - timedelta(hours=1)))
    data = report(new_session, caller, ["sla"])["sla"]
    assert (data["met"], data["breached"], data["pending"]) == (1, 2, 1)
    assert data["compliance"] == pytest.approx(1 / 3, abs=1e-4)


def test_noisy_sites_rank_by_alerts_with_events_suppressed_and_share(noc, new_session, caller):
    assert noc("maintenance", "add", "--site", "GLOBEX-PNQ", "--start", iso(T0), "--duration", "2h",
               "--suppress-all", "--reason", "upgrade").exit_code == 0
    plan = {"GLOBEX-PNQ": 5, "ACME-MYS": 3, "INITECH-HYD": 1}
    records, n = [], 0
    for site, count in plan.items():
        for k in range(count):
            records.append(record(n, T0 + timedelta(minutes=30 * k), site, "HIGH", "DEVICE_OFFLINE"))
            n += 1
    records.append(record(0, T0 + timedelta(minutes=1), "GLOBEX-PNQ", "HIGH", "DEVICE_OFFLINE"))  # a duplicate
    client_level = record(99, T0 + timedelta(hours=5), "ACME-MYS", "HIGH", "DEVICE_OFFLINE", client="ACME")
    client_level.pop("site")
    ingest(noc, records + [client_level])
    data = report(new_session, caller, ["noisy"], top=2)["noisy"]
    total = 9 + 1
    assert data["total_alerts"] == total
    # GLOBEX-PNQ: alerts at 0, 30, 60, 90 min are inside the 2h window, 120 min is not.
    assert data["sites"] == [
        {"site": "GLOBEX-PNQ", "client": "GLOBEX", "alerts": 5, "events": 6, "suppressed": 4,
         "share": round(5 / total, 4)},
        {"site": "ACME-MYS", "client": "ACME", "alerts": 3, "events": 3, "suppressed": 0,
         "share": round(3 / total, 4)},
    ]


def test_noisy_sites_of_a_window_with_only_client_level_alerts_still_count_them(noc, new_session, caller):
    client_level = record(1, T0 + timedelta(hours=5), "ACME-MYS", "HIGH", "DEVICE_OFFLINE", client="ACME")
    client_level.pop("site")
    ingest(noc, [client_level])
    data = report(new_session, caller, ["noisy"])["noisy"]
    assert data["total_alerts"] == 1 and data["sites"] == []


def test_an_empty_window_reports_zeros_and_nothing_to_divide(noc, new_session, caller):
    data = report(new_session, caller, list(reports.KINDS))
    assert data["mttr"]["overall"] == {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    assert data["mtta"]["by_client"] == {}
    assert data["frequency"]["by_type"] == {} and len(data["frequency"]["by_day"]) == 7
    assert all(d["alerts"] == 0 for d in data["frequency"]["by_day"])
    assert data["sla"] == {"window": data["sla"]["window"], "met": 0, "breached": 0, "pending": 0,
                           "compliance": None, "by_client": {},
                           "breaches": {"total": 0, "limit": reports.BREACHES_LISTED, "incidents": []}}
    assert data["noisy"]["sites"] == [] and data["noisy"]["total_alerts"] == 0


def test_reports_cover_only_what_the_caller_can_see(noc, new_session, traffic):
    from conftest import as_person

    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    data = report(new_session, as_person("sana.khan"), ["mttr", "frequency", "noisy"])
    globex = [f for f in traffic if f["client"] == "GLOBEX"]
    assert set(data["mttr"]["by_client"]) <= {"GLOBEX"}
    assert data["mttr"]["overall"]["count"] == sum(
        1 for f in globex if f["resolve"] is not None and SINCE <= f["resolve"] < UNTIL)
    assert sum(v["alerts"] for v in data["frequency"]["by_type"].values()) == \
        sum(1 for f in globex if SINCE <= f["first"] < UNTIL)
    assert {s["client"] for s in data["noisy"]["sites"]} <= {"GLOBEX"}
    with pytest.raises(Exception) as refused:  # noqa: PT011 -- what is pinned is the exit code, asserted below
        report(new_session, as_person("sana.khan"), ["mttr"], client="ACME")
    assert getattr(refused.value, "exit_code", None) == 3


def test_percentile_reference_matches_the_statistics_module():
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    assert percentile_cont(values, 0.5) == statistics.median(values)
    assert percentile_cont(values, 0.9) == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8])
    assert percentile_cont([4.0], 0.9) == 4.0
    assert math.isclose(percentile_cont([0.0, 10.0], 0.9), 9.0)


# ---------------------------------------------------------------- key figures against the previous period

def test_kpis_compare_with_the_previous_period_of_the_same_length(noc, new_session, caller, traffic, monkeypatch):
    """alerts, events, mean MTTA/MTTR and SLA compliance of the window and of the 7 days
    before it, against the same numbers computed here from the generated events."""
    before = SINCE - (UNTIL - SINCE)
    ingest(noc, [record(900, SINCE - timedelta(days=3, minutes=k), "ACME-MYS", "LOW", "SYNC_DEGRADED")
                 for k in (2, 1, 0)])  # 1 alert, 3 events
    # incidents: in the window 1 met + 1 breached; before it 1 met
    four = timedelta(hours=4)
    met = _incident(noc, monkeypatch, T0 + timedelta(hours=1))
    _resolve(noc, monkeypatch, met, T0 + timedelta(hours=2))
    _incident(noc, monkeypatch, T0 + timedelta(days=2))  # open past its target: breached
    earlier = _incident(noc, monkeypatch, before + timedelta(days=1))
    _resolve(noc, monkeypatch, earlier, before + timedelta(days=1) + four)
    monkeypatch.setenv("NOC_NOW", iso(UNTIL + timedelta(days=1)))
    document = reports.build(new_session(), caller, ["frequency"], SINCE, UNTIL, compare=True)
    kpis = document["kpis"]
    assert kpis["window"] == {"since": iso(SINCE), "until": iso(UNTIL)}
    assert kpis["previous_window"] == {"since": iso(before), "until": iso(SINCE)}

    def inside(at, start, end):
        return at is not None and start <= at < end

    def change(now, then):
        return {"value": now, "previous": then,
                "delta": None if now is None or then is None else pytest.approx(now - then, abs=0.01)}

    alerts_now = sum(1 for f in traffic if inside(f["first"], SINCE, UNTIL))
    alerts_then = sum(1 for f in traffic if inside(f["first"], before, SINCE)) + 1
    assert alerts_then > 1  # the window really has a previous period with alerts
    assert kpis["alerts"] == {"value": alerts_now, "previous": alerts_then, "delta": alerts_now - alerts_then}
    assert kpis["events"] == {"value": alerts_now, "previous": alerts_then + 2, "delta": alerts_now - alerts_then - 2}
    for key, stamp in (("mtta_mean_seconds", "ack"), ("mttr_mean_seconds", "resolve")):
        def mean(start, end, stamp=stamp):
            values = [(f[stamp] - f["first"]).total_seconds() for f in traffic if inside(f[stamp], start, end)]
            return statistics.fmean(values) if values else None

        now, then = mean(SINCE, UNTIL), mean(before, SINCE)
        got = kpis[key]
        assert got["value"] == pytest.approx(now, abs=0.01), key
        assert (got["previous"] is None) if then is None else got["previous"] == pytest.approx(then, abs=0.01), key
        assert got == change(got["value"], got["previous"]), key
    mttr = report(new_session, caller, ["mttr"])["mttr"]
    assert kpis["mttr_mean_seconds"]["value"] == mttr["overall"]["mean_seconds"]
    assert kpis["sla_compliance"] == {"value": 0.5, "previous": 1.0, "delta": -0.5}
    assert "kpis" not in reports.build(new_session(), caller, ["sla"], SINCE, UNTIL)  # only when asked


def test_kpis_of_the_weekly_report_reuse_its_sections_with_the_same_numbers(noc, new_session, caller, traffic,
                                                                          monkeypatch):
    """With all sections made, the window's key figures come from them, not from SQL again:
    they must be exactly the figures computed from SQL alone."""
    late = _incident(noc, monkeypatch, T0 + timedelta(hours=1))
    _resolve(noc, monkeypatch, late, T0 + timedelta(hours=9))
    _incident(noc, monkeypatch, T0 + timedelta(days=2))
    monkeypatch.setenv("NOC_NOW", iso(UNTIL + timedelta(days=1)))
    reused = reports.build(new_session(), caller, list(reports.KINDS), SINCE, UNTIL, compare=True)["kpis"]
    computed = reports.build(new_session(), caller, [], SINCE, UNTIL, compare=True)["kpis"]
    assert reused == computed
    assert reused["alerts"]["value"] > 0 and reused["mttr_mean_seconds"]["value"] is not None


def test_kpis_of_an_empty_previous_period_have_no_delta(noc, new_session, caller):
    ingest(noc, [record(1, T0 + timedelta(hours=3), "ACME-MYS", "HIGH", "DEVICE_OFFLINE")])
    kpis = reports.build(new_session(), caller, [], SINCE, UNTIL, compare=True)["kpis"]
    assert kpis["alerts"] == {"value": 1, "previous": 0, "delta": 1}
    assert kpis["mtta_mean_seconds"] == {"value": None, "previous": None, "delta": None}
    assert kpis["sla_compliance"] == {"value": None, "previous": None, "delta": None}


# ---------------------------------------------------------------- breached incidents and SLA by client

def _incident_for(noc, monkeypatch, created: datetime, client: str, severity="CRITICAL", title=None) -> int:
    monkeypatch.setenv("NOC_NOW", iso(created))
    result = noc("incident", "create", "--title", title or f"{client} {severity} at {iso(created)}",
                 "--severity", severity, "--client", client)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def test_breached_incidents_are_listed_latest_first_with_how_late(noc, new_session, caller, monkeypatch):
    """CRITICAL: 4h target; LOW: 72h. Report made at UNTIL."""
    four = timedelta(hours=4)
    made = UNTIL
    a = _incident_for(noc, monkeypatch, T0 + timedelta(hours=1), "ACME")  # resolved 30 min late
    _resolve(noc, monkeypatch, a, T0 + timedelta(hours=1) + four + timedelta(minutes=30))
    b = _incident_for(noc, monkeypatch, T0 + timedelta(days=5), "GLOBEX")  # open: made − target late
    c = _incident_for(noc, monkeypatch, T0 + timedelta(days=1), "GLOBEX")  # resolved on time: met
    _resolve(noc, monkeypatch, c, T0 + timedelta(days=1, hours=1))
    d = _incident_for(noc, monkeypatch, T0 + timedelta(hours=3), "INITECH")  # resolved 1 s late
    _resolve(noc, monkeypatch, d, T0 + timedelta(hours=3) + four + timedelta(seconds=1))
    _incident_for(noc, monkeypatch, UNTIL - timedelta(hours=1), "INITECH", "LOW")  # pending
    monkeypatch.setenv("NOC_NOW", iso(made))
    data = reports.build(new_session(), caller, ["sla"], SINCE, UNTIL)["sections"]["sla"]
    assert (data["met"], data["breached"], data["pending"]) == (1, 3, 1)
    breaches = data["breaches"]
    assert breaches["total"] == 3 and breaches["limit"] == reports.BREACHES_LISTED
    listed = breaches["incidents"]
    open_late = int((made - (T0 + timedelta(days=5) + four)).total_seconds())
    assert [(i["id"], i["client"], i["open"], i["late_seconds"]) for i in listed] == [
        (b, "GLOBEX", True, open_late), (a, "ACME", False, 1800), (d, "INITECH", False, 1)]
    first = listed[0]
    assert first["severity"] == "CRITICAL" and first["title"].startswith("GLOBEX CRITICAL")
    assert first["sla_target"] == iso(T0 + timedelta(days=5) + four) and first["resolved_at"] is None
    assert first["created_at"] == iso(T0 + timedelta(days=5)) and first["status"]
    assert listed[1]["resolved_at"] == iso(T0 + timedelta(hours=1) + four + timedelta(minutes=30))
    assert data["by_client"] == {
        "ACME": {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0},
        "GLOBEX": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5},
        "INITECH": {"met": 0, "breached": 1, "pending": 1, "compliance": 0.0},
    }
    session = new_session()
    with session.begin():
        limited = reports.sla(session, reports.open_scope(session, caller, SINCE, UNTIL), limit=2)
    assert limited["breaches"]["total"] == 3 and [i["id"] for i in limited["breaches"]["incidents"]] == [b, a]
    scoped = reports.build(new_session(), caller, ["sla"], SINCE, UNTIL, client_code="GLOBEX")["sections"]["sla"]
    assert list(scoped["by_client"]) == ["GLOBEX"] and [i["id"] for i in scoped["breaches"]["incidents"]] == [b]


# ---------------------------------------------------------------- partial days

def test_a_day_the_window_or_the_clock_cuts_short_is_partial(noc, new_session, caller, monkeypatch):
    kolkata = ZoneInfo("Asia/Kolkata")
    since = datetime(2026, 3, 2, 0, 0, tzinfo=kolkata)
    until = datetime(2026, 3, 5, 14, 0, tzinfo=kolkata)  # the 5th is cut at 14:00
    monkeypatch.setenv("NOC_NOW", iso(until + timedelta(days=2)))
    days = report(new_session, caller, ["frequency"], since=since, until=until, tz="Asia/Kolkata")["frequency"]
    assert [(d["day"], d["partial"]) for d in days["by_day"]] == [
        ("2026-03-02", False), ("2026-03-03", False), ("2026-03-04", False), ("2026-03-05", True)]
    assert days["by_day"][-1]["since"] == iso(datetime(2026, 3, 5, tzinfo=kolkata))
    assert days["by_day"][-1]["until"] == iso(until)
    # the same whole days, the report made during the last one: it is not over, so partial
    monkeypatch.setenv("NOC_NOW", iso(datetime(2026, 3, 4, 9, 0, tzinfo=kolkata)))
    running = report(new_session, caller, ["frequency"], since=since, until=datetime(2026, 3, 5, tzinfo=kolkata),
                     tz="Asia/Kolkata")["frequency"]
    assert [d["partial"] for d in running["by_day"]] == [False, False, True]
    # a window starting mid-day (the default "last 7 days"): the first day is partial too
    monkeypatch.setenv("NOC_NOW", iso(UNTIL + timedelta(days=1)))
    utc = report(new_session, caller, ["frequency"], since=SINCE + timedelta(hours=6),
                 until=UNTIL + timedelta(hours=6))["frequency"]["by_day"]
    assert [d["partial"] for d in utc] == [True] + [False] * 6 + [True]
