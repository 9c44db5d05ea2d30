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


def test_an_empty_window_reports_zeros_and_nothing_to_divide(noc, new_session, caller):
    data = report(new_session, caller, list(reports.KINDS))
    assert data["mttr"]["overall"] == {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    assert data["mtta"]["by_client"] == {}
    assert data["frequency"]["by_type"] == {} and len(data["frequency"]["by_day"]) == 7
    assert all(d["alerts"] == 0 for d in data["frequency"]["by_day"])
    assert data["sla"] == {"window": data["sla"]["window"], "met": 0, "breached": 0, "pending": 0,
                           "compliance": None}
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
