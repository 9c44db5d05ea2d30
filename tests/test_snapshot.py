"""`nocctl snapshot run/list/show` (DESIGN §3 "Metric snapshot", §6): window alignment,
every metric against values this test computes from the feed rows it generated (several
clients and sites, client-level records, times exactly on the window's edges), the
dimensions and maintenance marking, re-runs, dry runs, the lock, set-based queries, and
who sees which snapshot — against the backend under test.

Feed rows are inserted directly (`feed_record`), independent of the feed ingest."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import event, insert

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl.models import FeedRecord
from nocctl.services import snapshot as service

NOW = datetime(2026, 3, 1, 12, 7, 30, tzinfo=UTC)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
GRACE, OFFLINE = 900, 900
US = timedelta(microseconds=1)
SEC = timedelta(seconds=1)
_ids = count(1)
BLANK_FEED = {c.name: None for c in FeedRecord.__table__.columns if c.name != "id"}


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(NOW))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def units(noc, db_url) -> dict[str, tuple[int, str, int]]:
    """code -> (id, kind, client id)."""
    return {code: (uid, kind, cid) for code, uid, kind, cid in
            rows(db_url, "SELECT code, id, kind, client_id FROM business_unit")}


def feed(engine, units, *records: dict) -> list[dict]:
    """Insert feed rows; each names `site` or `client` by code. Returns the rows as stored."""
    stored = []
    for record in records:
        r = dict(record)
        site, client = r.pop("site", None), r.pop("client", None)
        if site is not None:
            site_id, _, client_id = units[site]
        else:
            site_id, client_id = None, units[client][0]
        n = next(_ids)
        stored.append({**BLANK_FEED, "tenant_id": 1, "external_id": f"{r['kind'][:3].upper()}-{n}",
                       "client_id": client_id, "site_id": site_id, "updated_at": NOW, "received_at": NOW, **r})
    with engine.begin() as conn:
        conn.execute(insert(FeedRecord.__table__), stored)
    return stored


def run(noc, *args: str, now: datetime = NOW) -> dict:
    result = noc("snapshot", "run", "--now", iso(now), "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def snapshots(db_url: str, window_end: datetime = END) -> dict[str, dict]:
    """unit code -> the snapshot row (metrics decoded)."""
    out = {}
    for unit_code, scope, city, state, officer, maint, metrics, _start in rows(
            db_url, "SELECT u.code, s.scope, s.city, s.state, s.officer_in_charge, s.in_maintenance, s.metrics,"
                    " s.window_start FROM snapshot s JOIN business_unit u ON u.id = s.unit_id"
                    " WHERE s.window_end = :end", end=window_end if "postgresql" in db_url else
            window_end.strftime("%Y-%m-%d %H:%M:%S.%f")):
        out[unit_code] = {"scope": scope, "city": city, "state": state, "officer": officer,
                          "in_maintenance": bool(maint),
                          "metrics": metrics if isinstance(metrics, dict) else json.loads(metrics)}
    return out


# ---------------------------------------------------------------- the window

@pytest.mark.parametrize("now, window, start, end", [
    ("2026-03-01T12:07:30Z", 300, "2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z"),
    ("2026-03-01T12:05:00Z", 300, "2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z"),  # on the edge: ends there
    ("2026-03-01T12:04:59.999999Z", 300, "2026-03-01T11:55:00Z", "2026-03-01T12:00:00Z"),
    ("2026-03-01T12:07:30+05:45", 900, "2026-03-01T06:00:00Z", "2026-03-01T06:15:00Z"),  # epoch, not local
    ("2026-03-01T12:59:00Z", 3600, "2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"),
])
def test_the_window_ends_at_now_aligned_down_on_the_epoch(now, window, start, end):
    from nocctl import clock

    assert service.align(clock.parse_instant(now), window) == (clock.parse_instant(start), clock.parse_instant(end))


def test_run_reports_the_aligned_window_and_writes_one_row_per_client_and_site(noc, db_url):
    summary = run(noc)
    assert (summary["window_start"], summary["window_end"]) == ("2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z")
    assert (summary["clients"], summary["sites"], summary["snapshots_created"], summary["tenants"]) == (3, 12, 15, 1)
    stored = snapshots(db_url)
    assert len(stored) == 15
    assert {code: s["scope"] for code, s in stored.items() if s["scope"] == "CLIENT"} == \
        {"ACME": "CLIENT", "GLOBEX": "CLIENT", "INITECH": "CLIENT"}
    assert rows(db_url, "SELECT count(*) FROM snapshot WHERE window_start = window_end") == [(0,)]


def test_window_option_and_config(noc, db_url, tmp_path, monkeypatch):
    assert run(noc, "--window", "15m")["window_end"] == "2026-03-01T12:00:00Z"
    config = tmp_path / "noc.toml"
    config.write_text('[snapshot]\nwindow = "1h"\n')
    monkeypatch.setenv("NOC_CONFIG", str(config))
    assert run(noc)["window_start"] == "2026-03-01T11:00:00Z"
    bad = noc("snapshot", "run", "--window", "soon")
    assert bad.exit_code == 65 and "--window" in bad.stderr
    config.write_text('[snapshot]\nlate_rate = 3\n')
    bad = noc("snapshot", "run")
    assert bad.exit_code == 65 and "snapshot.late_rate" in bad.stderr


# ---------------------------------------------------------------- every metric

TIMES = [START - timedelta(hours=3), START - SEC, START - US, START, START + SEC, END - timedelta(seconds=GRACE) - SEC,
         END - timedelta(seconds=GRACE), END - timedelta(seconds=GRACE) + US, END - US, END, END + US,
         END + timedelta(hours=1)]
PLACES = ["ACME-BLR-WF", "ACME-BLR-KOR", "ACME-CHN", "GLOBEX-BOM-WH1", "GLOBEX-PNQ", "INITECH-HYD", "INITECH-NOI",
          None]  # None: a client-level record


def generate(rng: random.Random, n: int = 700) -> list[dict]:
    def when(nullable: bool = True):
        return None if nullable and rng.random() < 0.12 else rng.choice(TIMES)

    out = []
    for _ in range(n):
        place = rng.choice(PLACES)
        where = {"site": place} if place else {"client": rng.choice(["ACME", "GLOBEX", "INITECH"])}
        kind = rng.choice(["ticket", "work_order", "attendance", "device", "geofence", "security"])
        if kind == "ticket":
            r = {"status": rng.choice(["OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED", "open", "closed", None]),
                 "priority": rng.choice(["P1", "P2", "P3", "P4", "p2", "P5", None]), "opened_at": when(),
                 "due_at": when(), "escalated": rng.choice([True, False, None]), "title": "Leaking tap"}
        elif kind == "work_order":
            r = {"status": rng.choice(["OPEN", "ASSIGNED", "IN_PROGRESS", "ON_HOLD", "COMPLETED", "CANCELLED",
                                       "completed"]), "due_at": when()}
        elif kind == "attendance":
            shift_start = rng.choice(TIMES[:-1] + [END - timedelta(hours=8)])
            shift_end = rng.choice([None, shift_start + timedelta(hours=8), START, START + US, START - US, END])
            checked = rng.choice([None, None, shift_start, shift_start + timedelta(seconds=GRACE),
                                  shift_start + timedelta(seconds=GRACE) + US, END - US, END, START])
            r = {"person": f"guard-{rng.randint(1, 40)}", "people_group": rng.choice(["guards", "housekeeping", None]),
                 "shift_start": shift_start, "shift_end": shift_end, "checked_in_at": checked}
        elif kind == "device":
            limit = rng.choice([None, None, 60, 3600])
            threshold = timedelta(seconds=limit or OFFLINE)
            r = {"status": rng.choice(["ONLINE", "OFFLINE", "offline", None]), "offline_after": limit,
                 "last_seen_at": rng.choice([None, END, END - threshold, END - threshold - US, END - threshold + US,
                                             END - timedelta(hours=5), END + timedelta(minutes=1)]),
                 "sync_health": rng.choice([None, 12.5, 79.9, 80.0, 99.0])}
        else:
            r = {"occurred_at": when(), "event_type": "breach", "severity": "HIGH" if kind == "security" else None}
        out.append({"kind": kind, **where, **r})
    return out


def expected(records: list[dict], alerts: list[tuple], units: dict) -> dict[int, dict]:
    """The metrics, computed here from the rows (not from the SQL under test)."""
    def fresh():
        return {"tickets_open": 0, "tickets_overdue": 0, "tickets_escalated": 0,
                "tickets_by_priority": dict.fromkeys(["P1", "P2", "P3", "P4", "other"], 0),
                "work_orders_pending": 0, "work_orders_overdue": 0, "work_orders_by_status": defaultdict(int),
                "attendance_expected": 0, "attendance_present": 0, "attendance_late": 0, "attendance_missing": 0,
                "attendance_by_group": {}, "devices_total": 0, "devices_offline": 0, "health": [],
                "geofence_events": 0, "security_anomalies": 0, "alerts_open": 0,
                "alerts_open_by_severity": dict.fromkeys(["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"], 0),
                "alerts_suppressed": 0}

    out: dict[int, dict] = defaultdict(fresh)
    for uid, _kind, _cid in units.values():
        out[uid]  # every unit has a row

    def into(client_id, site_id):
        return [out[site_id], out[client_id]] if site_id is not None else [out[client_id]]

    grace = timedelta(seconds=GRACE)
    for r in records:
        for m in into(r["client_id"], r["site_id"]):
            status = (r.get("status") or "").upper()
            if r["kind"] == "ticket":
                if status in ("RESOLVED", "CLOSED") or not (r["opened_at"] is None or r["opened_at"] < END):
                    continue
                m["tickets_open"] += 1
                m["tickets_overdue"] += r["due_at"] is not None and r["due_at"] < END
                m["tickets_escalated"] += r["escalated"] is True
                priority = (r["priority"] or "").upper()
                m["tickets_by_priority"][priority if priority in ("P1", "P2", "P3", "P4") else "other"] += 1
            elif r["kind"] == "work_order":
                if status in ("COMPLETED", "CANCELLED"):
                    continue
                m["work_orders_pending"] += 1
                m["work_orders_overdue"] += r["due_at"] is not None and r["due_at"] < END
                m["work_orders_by_status"][status] += 1
            elif r["kind"] == "attendance":
                if not (r["shift_start"] < END and (r["shift_end"] is None or r["shift_end"] > START)):
                    continue
                checked = r["checked_in_at"]
                present = checked is not None and checked < END
                counts = {"expected": 1, "present": int(present),
                          "late": int(present and checked > r["shift_start"] + grace),
                          "missing": int(not present and r["shift_start"] + grace <= END)}
                group = m["attendance_by_group"].setdefault(r["people_group"] or "unassigned",
                                                            dict.fromkeys(counts, 0))
                for key, value in counts.items():
                    m[f"attendance_{key}"] += value
                    group[key] += value
            elif r["kind"] == "device":
                m["devices_total"] += 1
                seen = r["last_seen_at"]
                limit = timedelta(seconds=r["offline_after"] or OFFLINE)
                m["devices_offline"] += status == "OFFLINE" or (seen is not None and seen + limit < END)
                if r["sync_health"] is not None:
                    m["health"].append(r["sync_health"])
            elif r["occurred_at"] is not None and START <= r["occurred_at"] < END:
                m["geofence_events" if r["kind"] == "geofence" else "security_anomalies"] += 1
    for client_id, site_id, severity, status, first_seen, resolved_at in alerts:
        if first_seen >= END or (status == "RESOLVED" and resolved_at < END):
            continue
        for m in into(client_id, site_id):
            if status == "SUPPRESSED":
                m["alerts_suppressed"] += 1
            else:
                m["alerts_open"] += 1
                m["alerts_open_by_severity"][severity] += 1
    for m in out.values():
        health = m.pop("health")
        m["sync_health_score"] = round(sum(health) / len(health), 2) if health else None
        m["sync_health_devices"] = len(health)
        m["work_orders_by_status"] = dict(sorted(m["work_orders_by_status"].items()))
        m["attendance_by_group"] = dict(sorted(m["attendance_by_group"].items()))
    return out


def aware(value) -> datetime | None:
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def test_every_metric_matches_what_the_rows_say(noc, db_url, engine, units):
    records = feed(engine, units, *generate(random.Random(8)))
    # Alerts: open, resolved before / exactly at / after the end, first seen at / after the end, suppressed.
    assert noc("maintenance", "add", "--site", "GLOBEX-PNQ", "--start", iso(START - timedelta(hours=1)), "--end",
               iso(END + timedelta(hours=1)), "--suppress-all", "--reason", "pump swap").exit_code == 0
    traffic = []
    for i, (site, sev, at) in enumerate([
            ("ACME-BLR-WF", "CRITICAL", START - timedelta(hours=2)), ("ACME-BLR-WF", "HIGH", END - US),
            ("ACME-CHN", "LOW", END), ("GLOBEX-PNQ", "HIGH", START), ("INITECH-HYD", "INFO", START - SEC),
            ("INITECH-HYD", "MEDIUM", START - timedelta(days=1)), ("GLOBEX-BOM-WH1", "MEDIUM", START),
            ("ACME-BLR-KOR", "HIGH", START - timedelta(hours=1))]):
        traffic.append(alert(site=site, entity=f"dev-{i}", at=iso(at), severity=sev))
    client_alert = alert(entity="router", at=iso(START), severity="HIGH")
    del client_alert["site"]
    traffic.append(client_alert | {"client": "INITECH"})
    assert noc("ingest", input=ndjson(*traffic)).exit_code == 0
    resolves = [alert(site="INITECH-HYD", entity="dev-4", at=iso(END - SEC), action="resolve"),
                alert(site="INITECH-HYD", entity="dev-5", at=iso(END), action="resolve"),
                alert(site="GLOBEX-BOM-WH1", entity="dev-6", at=iso(END + timedelta(minutes=1)), action="resolve")]
    assert noc("ingest", input=ndjson(*resolves)).exit_code == 0
    stored_alerts = [(c, s, sev, st, aware(f), aware(r)) for c, s, sev, st, f, r in rows(
        db_url, "SELECT client_id, site_id, severity, status, first_seen_at, resolved_at FROM alert")]
    assert {st for *_, st, _, _ in stored_alerts} == {"NEW", "SUPPRESSED", "RESOLVED"}

    run(noc)
    want = expected(records, stored_alerts, units)
    got = snapshots(db_url)
    by_id = {units[code][0]: code for code in units}
    assert len(got) == len(units) == len(want)
    for uid, metrics in want.items():
        assert got[by_id[uid]]["metrics"] == metrics, by_id[uid]
    # The data exercised every metric somewhere.
    totals = defaultdict(int)
    for code in ("ACME", "GLOBEX", "INITECH"):
        for key, value in got[code]["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] += value
    assert all(totals[key] > 0 for key in want[units["ACME"][0]] if key not in
               ("tickets_by_priority", "work_orders_by_status", "attendance_by_group", "alerts_open_by_severity")), \
        dict(totals)
    assert got["INITECH"]["metrics"]["alerts_open_by_severity"]["HIGH"] >= 1  # the client-level alert


def test_events_count_from_the_window_start_up_to_but_not_at_its_end(noc, db_url, engine, units):
    feed(engine, units, *({"kind": kind, "site": "ACME-MYS", "occurred_at": at}
                          for kind in ("geofence", "security")
                          for at in (START - US, START, START + SEC, END - US, END, END + SEC)))
    feed(engine, units, {"kind": "geofence", "client": "ACME", "occurred_at": START})
    run(noc)
    got = snapshots(db_url)
    assert (got["ACME-MYS"]["metrics"]["geofence_events"], got["ACME-MYS"]["metrics"]["security_anomalies"]) == (3, 3)
    assert got["ACME"]["metrics"]["geofence_events"] == 4  # its sites' plus its own
    assert got["GLOBEX"]["metrics"]["geofence_events"] == 0


def test_edges_of_tickets_shifts_and_devices(noc, db_url, engine, units):
    site = "GLOBEX-AMD"
    feed(engine, units,
         {"kind": "ticket", "site": site, "status": "OPEN", "priority": "P1",
          "opened_at": END - US, "due_at": END - US},
         {"kind": "ticket", "site": site, "status": "OPEN", "priority": "P2", "opened_at": END, "due_at": START},
         {"kind": "ticket", "site": site, "status": "OPEN", "priority": "P3", "opened_at": START, "due_at": END},
         # A shift starting at the end is not expected yet; one ending at the start is over.
         {"kind": "attendance", "site": site, "shift_start": END, "shift_end": END + timedelta(hours=8)},
         {"kind": "attendance", "site": site, "shift_start": START - timedelta(hours=8), "shift_end": START},
         # Started exactly grace before the end without a check-in: missing.
         {"kind": "attendance", "site": site, "shift_start": END - timedelta(seconds=GRACE),
          "shift_end": END + timedelta(hours=7)},
         # One microsecond later: not yet.
         {"kind": "attendance", "site": site, "shift_start": END - timedelta(seconds=GRACE) + US,
          "shift_end": END + timedelta(hours=7)},
         # Checked in exactly at the grace: on time; a microsecond after: late.
         {"kind": "attendance", "site": site, "shift_start": START - timedelta(hours=1), "shift_end": None,
          "checked_in_at": START - timedelta(hours=1) + timedelta(seconds=GRACE)},
         {"kind": "attendance", "site": site, "shift_start": START - timedelta(hours=1), "shift_end": None,
          "checked_in_at": START - timedelta(hours=1) + timedelta(seconds=GRACE) + US},
         # Last seen exactly the threshold before the end: still online; a microsecond earlier: offline.
         {"kind": "device", "site": site, "status": "ONLINE", "last_seen_at": END - timedelta(seconds=OFFLINE)},
         {"kind": "device", "site": site, "status": "ONLINE", "last_seen_at": END - timedelta(seconds=OFFLINE) - US},
         {"kind": "device", "site": site, "status": "ONLINE", "offline_after": 60,
          "last_seen_at": END - timedelta(seconds=61)})
    run(noc)
    m = snapshots(db_url)[site]["metrics"]
    assert (m["tickets_open"], m["tickets_overdue"], m["tickets_by_priority"]) == \
        (2, 1, {"P1": 1, "P2": 0, "P3": 1, "P4": 0, "other": 0})
    assert (m["attendance_expected"], m["attendance_missing"], m["attendance_present"], m["attendance_late"]) == \
        (4, 1, 2, 1)
    assert m["attendance_by_group"] == {"unassigned": {"expected": 4, "present": 2, "late": 1, "missing": 1}}
    assert (m["devices_total"], m["devices_offline"]) == (3, 2)


def test_dimensions_and_maintenance_marking(noc, db_url):
    def window(*args: str) -> None:
        assert noc("maintenance", "add", *args, "--reason", "works").exit_code == 0

    window("--site", "GLOBEX-PNQ", "--start", iso(START - timedelta(hours=1)), "--end", iso(END + SEC),
           "--suppress-all")
    window("--client", "INITECH", "--start", iso(END), "--duration", "2h", "--type", "SLA_BREACH")  # starts at end
    window("--site", "ACME-MYS", "--start", iso(START - timedelta(hours=1)), "--end", iso(END), "--suppress-all")
    run(noc)
    got = snapshots(db_url)
    assert {code for code, s in got.items() if s["in_maintenance"]} == \
        {"GLOBEX-PNQ", "INITECH", "INITECH-GGN", "INITECH-NOI", "INITECH-HYD", "INITECH-CHN"}
    assert (got["ACME-BLR-KOR"]["city"], got["ACME-BLR-KOR"]["state"], got["ACME-BLR-KOR"]["officer"]) == \
        ("Bengaluru", "Karnataka", "meera.iyer")
    assert got["GLOBEX"]["officer"] == "rahul.desai" and got["GLOBEX"]["scope"] == "CLIENT"
    window("--all-sites", "--start", iso(END + timedelta(minutes=5)), "--duration", "1h", "--suppress-all")
    run(noc, now=NOW + timedelta(minutes=5))
    later = snapshots(db_url, END + timedelta(minutes=5))
    assert all(s["in_maintenance"] for s in later.values()) and len(later) == 15


# ---------------------------------------------------------------- re-runs, dry runs, the lock

def test_rerunning_a_window_changes_nothing_even_after_the_feeds_changed(noc, db_url, engine, units):
    feed(engine, units, {"kind": "ticket", "site": "ACME-CHN", "status": "OPEN", "priority": "P4",
                         "opened_at": START, "due_at": END + timedelta(hours=1)})
    first = run(noc)
    before = rows(db_url, "SELECT id, unit_id, metrics, created_at FROM snapshot ORDER BY id")
    feed(engine, units, {"kind": "ticket", "site": "ACME-CHN", "status": "OPEN", "opened_at": START})
    again = run(noc, now=NOW + timedelta(seconds=40))  # the same window
    assert (first["snapshots_created"], again["snapshots_created"], again["snapshots_unchanged"]) == (15, 0, 15)
    assert rows(db_url, "SELECT id, unit_id, metrics, created_at FROM snapshot ORDER BY id") == before
    nxt = run(noc, now=NOW + timedelta(minutes=5))
    assert nxt["snapshots_created"] == 15
    assert snapshots(db_url, END + timedelta(minutes=5))["ACME-CHN"]["metrics"]["tickets_open"] == 2


def test_dry_run_writes_nothing(noc, db_url, engine, units):
    feed(engine, units, {"kind": "ticket", "site": "ACME-CHN", "status": "OPEN", "priority": "P1",
                         "opened_at": START, "due_at": START})
    audit_before = rows(db_url, "SELECT count(*) FROM audit_log")
    summary = run(noc, "--dry-run")
    assert summary["dry_run"] is True and summary["snapshots_created"] == 15 and summary["alerts_created"] == 1
    for table in ("snapshot", "alert", "ingest_event", "incident"):
        assert rows(db_url, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert rows(db_url, "SELECT count(*) FROM audit_log") == audit_before
    assert run(noc)["snapshots_created"] == 15


def test_a_second_runner_while_the_lock_is_held_exits_75(noc, engine, db_url):
    from nocctl.services import passlock

    with passlock.hold(engine, "snapshot"):
        result = noc("snapshot", "run", "--now", iso(NOW))
    assert result.exit_code == 75
    assert "another `snapshot` pass is running" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert rows(db_url, "SELECT count(*) FROM snapshot") == [(0,)]


def test_one_summary_line_on_stderr(noc):
    result = noc("snapshot", "run", "--now", iso(NOW))
    assert result.exit_code == 0 and result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["event"] == "snapshot summary"
    assert lines[0]["snapshots_created"] == 15 and "duration_ms" in lines[0]


def test_every_tenant_is_covered_and_no_person_is_needed(noc, db_url):
    assert noc("--tenant", "other", "init").exit_code == 0
    assert noc("--tenant", "other", "org", "client", "add", "ZED", "--name", "Zed").exit_code == 0
    result = noc("--as", "nobody.at.all", "snapshot", "run", "--now", iso(NOW), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["tenants"], summary["clients"], summary["snapshots_created"]) == (2, 4, 16)
    assert rows(db_url, "SELECT t.slug, count(*) FROM snapshot s JOIN tenant t ON t.id = s.tenant_id"
                        " GROUP BY t.slug ORDER BY t.slug") == [("default", 15), ("other", 1)]


def test_the_pass_is_set_based_its_statements_do_not_grow_with_units(noc, engine, units, caller):
    """The same number of statements for 15 units and for 35: no per-unit query."""
    counted = []

    def count_statement(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    event.listen(engine, "before_cursor_execute", count_statement)
    config = service.Config()
    try:
        service.run(engine, config, caller, NOW)
        small = len(counted)
        for i in range(20):
            assert noc("org", "site", "add", f"ACME-X{i}", "--client", "ACME", "--name", f"X{i}").exit_code == 0
        counted.clear()
        service.run(engine, config, caller, NOW + timedelta(minutes=5))
        assert len(counted) == small, counted
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)


# ---------------------------------------------------------------- list and show

@pytest.fixture
def taken(noc, db_url):
    run(noc)
    run(noc, now=NOW + timedelta(minutes=5))
    return noc


def listed(noc, *args: str, person: str | None = None) -> list[dict]:
    result = noc(*(("--as", person) if person else ()), "snapshot", "list", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_list_newest_window_first_with_filters(taken):
    everything = listed(taken)
    assert len(everything) == 30
    assert [s["window_end"] for s in everything[:15]] == ["2026-03-01T12:10:00Z"] * 15
    assert [(s["client"], s["site"]) for s in everything[:2]] == [("ACME", None), ("ACME", "ACME-BLR-KOR")]
    assert set(everything[0]) == set(service.LIST_COLUMNS) and isinstance(everything[0]["metrics"], dict)
    acme = listed(taken, "--client", "ACME")
    assert len(acme) == 10 and {s["client"] for s in acme} == {"ACME"}
    site = listed(taken, "--site", "GLOBEX-PNQ")
    assert [s["window_end"] for s in site] == ["2026-03-01T12:10:00Z", "2026-03-01T12:05:00Z"]
    assert len(listed(taken, "--limit", "4")) == 4
    assert len(listed(taken, "--since", "2026-03-01T12:06:00Z", "--until", "2026-03-01T13:00:00Z")) == 15
    assert len(listed(taken, "--until", "2026-03-01T12:10:00Z", "--since", "2026-03-01T12:00:00Z")) == 15
    assert len(listed(taken, "--days", "1")) == 15  # until the clock's now (12:07:30): not the 12:10 window
    assert taken("snapshot", "list", "--client", "NOPE").exit_code == 3
    table = taken("snapshot", "list", "--site", "ACME-MYS")
    assert table.exit_code == 0 and "tickets_open" in table.stdout and "ACME-MYS" in table.stdout
    csv = taken("snapshot", "list", "--site", "ACME-MYS", "--format", "csv")
    assert csv.stdout.splitlines()[0] == ",".join(service.LIST_COLUMNS)


def test_show_one_snapshot(taken):
    first = listed(taken, "--site", "ACME-BLR-WF")[0]
    shown = taken("snapshot", "show", str(first["id"]), "--format", "json")
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data == {k: first[k] for k in service.LIST_COLUMNS}
    table = taken("snapshot", "show", str(first["id"]))
    assert table.exit_code == 0 and "officer_in_charge" in table.stdout and "alerts_open_by_severity" in table.stdout
    assert taken("snapshot", "show", "999999").exit_code == 3


def test_people_see_only_the_snapshots_of_what_they_may_view(taken):
    assert taken("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    assert taken("user", "grant", "meera.iyer", "noc:view_assigned_sites", "--site", "ACME-BLR-KOR").exit_code == 0
    globex = listed(taken, person="sana.khan")
    assert len(globex) == 10 and {s["client"] for s in globex} == {"GLOBEX"}
    mine = listed(taken, person="meera.iyer")
    assert {(s["client"], s["site"]) for s in mine} == {("ACME", "ACME-BLR-KOR")}  # not the client's aggregate
    assert taken("--as", "meera.iyer", "snapshot", "list", "--client", "GLOBEX").exit_code == 3
    assert taken("--as", "meera.iyer", "snapshot", "list", "--site", "ACME-BLR-WF").exit_code == 3
    acme_row = listed(taken, "--client", "ACME")[0]
    assert acme_row["site"] is None
    assert taken("--as", "meera.iyer", "snapshot", "show", str(acme_row["id"])).exit_code == 3
    assert taken("--as", "sana.khan", "snapshot", "show", str(acme_row["id"])).exit_code == 3
    assert taken("--as", "sana.khan", "snapshot", "show", str(globex[0]["id"])).exit_code == 0
    assert taken("--as", "arjun.mehta", "snapshot", "list").exit_code == 77  # no view grant at all
    assert taken("--as", "ghost", "snapshot", "list").exit_code == 77
