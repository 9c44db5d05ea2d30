"""`nocctl status` (issue #8): the latest snapshot per unit, drill-down sums by state, city
and client checked against sums the test computes itself, worst-first order, filters,
RBAC visibility, the JSON shape, watch mode and the empty case — against the backend under
test. Snapshots are inserted directly (the snapshot pass is not needed here)."""
from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from ingest_helpers import ORG, alert, ndjson
from nocctl.models import BusinessUnit, Person, Snapshot
from nocctl.services import status as service

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=7)  # the latest window ended 7 minutes ago
OLD = T0 - timedelta(minutes=5)  # an older window that must never be shown
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
COUNTS = service.COUNTS


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def metrics(rng: random.Random, sync: float | None = -1.0) -> dict:
    data = {name: rng.randint(0, 9) for name in COUNTS}
    data["devices_total"] = data["devices_offline"] + rng.randint(1, 20)
    data["alerts_open_by_severity"] = {s: rng.randint(0, 3) for s in SEVERITIES}
    data["sync_health_score"] = round(rng.uniform(40, 100), 1) if sync == -1.0 else sync
    data["tickets_by_priority"] = {"P1": 1}  # keys the view does not know are ignored
    return data


class Org:
    """The example organisation's units and who is in charge, read from the database."""

    def __init__(self, engine):
        with engine.connect() as conn:
            people = dict(conn.execute(select(Person.id, Person.username)).all())
            self.units = {u.code: u for u in conn.execute(select(
                BusinessUnit.id, BusinessUnit.code, BusinessUnit.kind, BusinessUnit.client_id, BusinessUnit.city,
                BusinessUnit.state, BusinessUnit.site_in_charge_id)).all()}
        self.in_charge = {code: people.get(u.site_in_charge_id) for code, u in self.units.items()}
        self.sites = sorted(c for c, u in self.units.items() if u.kind == "SITE")
        self.clients = sorted(c for c, u in self.units.items() if u.kind == "CLIENT")
        self.client_of = {c: next(k for k in self.clients if self.units[k].id == self.units[c].client_id)
                          for c in self.units}


def put(engine, org: Org, code: str, window_end: datetime, data: dict, in_maintenance: bool = False) -> None:
    unit = org.units[code]
    site = unit.kind == "SITE"
    with engine.begin() as conn:
        conn.execute(insert(Snapshot.__table__), [{
            "tenant_id": 1, "scope": unit.kind, "unit_id": unit.id, "client_id": unit.client_id,
            "site_id": unit.id if site else None, "window_start": window_end - timedelta(minutes=5),
            "window_end": window_end, "city": unit.city if site else None, "state": unit.state if site else None,
            "officer_in_charge": org.in_charge[code] if site else None, "in_maintenance": in_maintenance,
            "metrics": data, "created_at": window_end}])


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(NOW))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def org(noc, engine):
    return Org(engine)


@pytest.fixture
def world(org, engine):
    """Two windows for every unit (the older one with different numbers), except INITECH-HYD
    whose latest snapshot is the older window. Returns the latest metrics per unit code."""
    rng = random.Random(8)
    latest: dict[str, dict] = {}
    for code in org.sites + org.clients:
        put(engine, org, code, OLD, metrics(rng), in_maintenance=True)
        if code == "INITECH-HYD":
            continue
        latest[code] = metrics(rng, sync=None if code == "GLOBEX-AMD" else -1.0)
        put(engine, org, code, T0, latest[code], in_maintenance=code in ("ACME-MYS", "GLOBEX"))
    hyd = metrics(random.Random(99))
    with engine.begin() as conn:  # HYD keeps only its old window, with known numbers
        conn.execute(Snapshot.__table__.update().where(Snapshot.unit_id == org.units["INITECH-HYD"].id)
                     .values(metrics=hyd, in_maintenance=False))
    latest["INITECH-HYD"] = hyd
    return latest


def run(noc, *args: str) -> list[dict]:
    result = noc("status", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def expected(parts: list[dict], open_alerts: dict | None = None) -> dict:
    """The view's metrics of a group of snapshots, computed here independently. Open alerts
    come from the alerts (`open_alerts`: severity -> count), never from the snapshots'
    alerts_open_by_severity (issue 16)."""
    out = {name: sum(p.get(name, 0) for p in parts) for name in COUNTS}
    for s in SEVERITIES:
        out[f"alerts_{s.lower()}"] = (open_alerts or {}).get(s, 0)
    out["alerts_open"] = sum(out[f"alerts_{s.lower()}"] for s in SEVERITIES)
    scored = [p for p in parts if p.get("sync_health_score") is not None]
    weight = sum(p["devices_total"] for p in scored)
    out["sync_health_score"] = (round(sum(p["sync_health_score"] * p["devices_total"] for p in scored) / weight, 2)
                                if scored else None)
    out["score"] = (100 * out["alerts_critical"] + 25 * out["alerts_high"] + 10 * out["tickets_overdue"]
                    + 5 * out["work_orders_overdue"] + 5 * out["devices_offline"] + 5 * out["attendance_missing"])
    return out


def metric_part(row: dict) -> dict:
    return {k: row[k] for k in expected([])}


def check_worst_first(rows: list[dict]) -> None:
    keys = [(-r["score"], -r["alerts_critical"], -r["alerts_high"]) for r in rows]
    assert keys == sorted(keys)


# ---------------------------------------------------------------- which snapshots

def test_each_site_shows_its_latest_snapshot(noc, org, world):
    rows = run(noc, "--by", "site")
    assert sorted(r["site"] for r in rows) == org.sites
    for row in rows:
        code = row["site"]
        single = expected([world[code]])
        if code == "GLOBEX-AMD":
            assert single["sync_health_score"] is None
        else:
            single["sync_health_score"] = world[code]["sync_health_score"]  # one site: its own value
        assert metric_part(row) == single, code
        unit = org.units[code]
        assert (row["client"], row["city"], row["state"], row["officer_in_charge"]) == \
            (org.client_of[code], unit.city, unit.state, org.in_charge[code])
        hyd = code == "INITECH-HYD"
        assert row["window_end"] == iso(OLD if hyd else T0)
        assert row["snapshot_age_seconds"] == (12 if hyd else 7) * 60
        assert row["in_maintenance"] is (code == "ACME-MYS")
        assert row["sites"] == 1 and row["sites_in_maintenance"] == int(code == "ACME-MYS")
    check_worst_first(rows)


def test_clients_show_their_own_snapshot(noc, org, world):
    rows = run(noc)  # --by client is the default
    assert sorted(r["client"] for r in rows) == org.clients
    for row in rows:
        own = expected([world[row["client"]]])
        own["sync_health_score"] = world[row["client"]]["sync_health_score"]
        assert metric_part(row) == own
        assert row["sites"] == 4 and row["window_end"] == iso(T0)
        assert row["in_maintenance"] is (row["client"] == "GLOBEX")
        assert row["sites_in_maintenance"] == (1 if row["client"] == "ACME" else 0)
        assert row["client_name"] and row["site"] is None and row["state"] is None
    check_worst_first(rows)


# ---------------------------------------------------------------- drill-down sums

@pytest.mark.parametrize("by", ["state", "city"])
def test_states_and_cities_sum_their_sites(noc, org, world, by):
    rows = run(noc, "--by", by)
    groups: dict = {}
    for code in org.sites:
        unit = org.units[code]
        groups.setdefault(unit.state if by == "state" else (unit.state, unit.city), []).append(code)
    got = {r["state"] if by == "state" else (r["state"], r["city"]): r for r in rows}
    assert set(got) == set(groups)
    for key, codes in groups.items():
        row = got[key]
        assert metric_part(row) == expected([world[c] for c in codes]), key
        assert row["sites"] == len(codes)
        assert row["sites_in_maintenance"] == sum(c == "ACME-MYS" for c in codes)
        oldest = OLD if "INITECH-HYD" in codes else T0
        assert row["window_end"] == iso(oldest), key  # a group is as fresh as its oldest site
        assert row["client"] is None and row["site"] is None
    check_worst_first(rows)
    if by == "city":  # Chennai is a city of two clients: one row, both sites
        assert got[("Tamil Nadu", "Chennai")]["sites"] == 2


def test_a_state_filter_makes_client_rows_the_sum_of_their_sites_there(noc, org, world):
    rows = run(noc, "--state", "tamil NADU")  # case-insensitive
    assert sorted(r["client"] for r in rows) == ["ACME", "INITECH"]
    for row in rows:
        code = "ACME-CHN" if row["client"] == "ACME" else "INITECH-CHN"
        assert metric_part(row) == expected([world[code]]) and row["sites"] == 1


def test_filters_by_client_state_and_city(noc, org, world):
    acme = run(noc, "--by", "site", "--client", "ACME")
    assert sorted(r["site"] for r in acme) == [c for c in org.sites if c.startswith("ACME")]
    assert [r["client"] for r in run(noc, "--client", "GLOBEX")] == ["GLOBEX"]
    karnataka = run(noc, "--by", "city", "--state", "Karnataka")
    assert sorted(r["city"] for r in karnataka) == ["Bengaluru", "Mysuru"]
    chennai = run(noc, "--by", "site", "--city", "chennai")
    assert sorted(r["site"] for r in chennai) == ["ACME-CHN", "INITECH-CHN"]
    assert run(noc, "--by", "site", "--client", "ACME", "--city", "Chennai")[0]["site"] == "ACME-CHN"
    assert run(noc, "--by", "state", "--state", "Atlantis") == []
    missing = noc("status", "--client", "NOPE")
    assert missing.exit_code == 3 and "no client 'NOPE'" in missing.stderr


def open_alerts(noc, site: str, severity: str, n: int = 1) -> None:
    """`n` open alerts of `severity` at `site`, first seen at T0."""
    records = [alert(entity=f"{site}-{severity}-{i}", site=site, severity=severity, at=iso(T0)) for i in range(n)]
    result = noc("ingest", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr


def test_worst_first_uses_the_documented_score(noc, org, engine):
    quiet = {"alerts_open_by_severity": {"CRITICAL": 9}}  # the snapshot's alert counts are not used
    put(engine, org, "ACME-BLR-WF", T0, {**quiet, "tickets_overdue": 11})  # 110
    put(engine, org, "ACME-BLR-KOR", T0, {})
    open_alerts(noc, "ACME-BLR-KOR", "CRITICAL")  # 100
    put(engine, org, "ACME-MYS", T0, {})
    open_alerts(noc, "ACME-MYS", "HIGH", 4)  # 100, no CRITICAL
    put(engine, org, "ACME-CHN", T0, {**quiet, "devices_offline": 1, "work_orders_overdue": 1,
                                      "attendance_missing": 1})  # 15
    rows = run(noc, "--by", "site")
    assert [(r["site"], r["score"]) for r in rows] == [
        ("ACME-BLR-WF", 110), ("ACME-BLR-KOR", 100), ("ACME-MYS", 100), ("ACME-CHN", 15)]


def test_the_help_states_the_score_the_service_uses(noc):
    text = " ".join(noc("status", "--help").stdout.split())
    phrases = {"alerts_critical": "open CRITICAL alerts", "alerts_high": "open HIGH",
               "tickets_overdue": "overdue tickets", "work_orders_overdue": "overdue work orders",
               "devices_offline": "offline devices", "attendance_missing": "missing attendance"}
    assert set(phrases) == set(service.SCORE_WEIGHTS)
    for name, weight in service.SCORE_WEIGHTS.items():
        assert f"{weight} × {phrases[name]}" in text, name


def test_missing_and_unknown_metric_keys_count_as_zero(noc, org, engine):
    put(engine, org, "ACME-BLR-WF", T0, {"future_metric": 5, "tickets_open": 2, "devices_offline": None})
    put(engine, org, "ACME-MYS", T0, {"sync_health_score": 90.0, "devices_total": 0})
    open_alerts(noc, "ACME-MYS", "HIGH")
    put(engine, org, "ACME-CHN", T0, {"sync_health_score": 70.0, "devices_total": 0})
    [row] = run(noc, "--by", "state", "--state", "Karnataka")
    assert row["tickets_open"] == 2 and row["devices_offline"] == 0 and row["alerts_high"] == 1
    assert row["sync_health_score"] == 90.0 and row["score"] == 25
    [client] = run(noc)  # no client snapshot: the sum of the sites
    assert client["client"] == "ACME" and client["sites"] == 3
    assert client["sync_health_score"] == 80.0  # no devices to weigh by: the plain mean


# ---------------------------------------------------------------- visibility

def test_a_client_viewer_sees_only_that_client(noc, org, world):
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    result = noc("--as", "sana.khan", "status", "--by", "site", "--format", "json")
    rows = json.loads(result.stdout)
    assert sorted(r["site"] for r in rows) == [c for c in org.sites if c.startswith("GLOBEX")]
    clients = json.loads(noc("--as", "sana.khan", "status", "--format", "json").stdout)
    assert [c["client"] for c in clients] == ["GLOBEX"] and clients[0]["in_maintenance"] is True
    states = json.loads(noc("--as", "sana.khan", "status", "--by", "state", "--format", "json").stdout)
    assert sorted(r["state"] for r in states) == ["Gujarat", "Maharashtra"]
    hidden = noc("--as", "sana.khan", "status", "--client", "ACME")
    assert hidden.exit_code == 3


def test_a_site_viewer_sees_its_sites_summed_not_the_client_totals(noc, org, world):
    assert noc("user", "grant", "karthik.s", "noc:view_assigned_sites", "--site", "ACME-CHN").exit_code == 0
    assert noc("user", "grant", "karthik.s", "noc:view_assigned_sites", "--site", "INITECH-CHN").exit_code == 0
    clients = json.loads(noc("--as", "karthik.s", "status", "--format", "json").stdout)
    assert sorted(c["client"] for c in clients) == ["ACME", "INITECH"]
    for row in clients:
        code = f"{row['client']}-CHN"
        assert metric_part(row) == expected([world[code]]) and row["sites"] == 1


def test_no_view_grant_is_refused(noc, world):
    result = noc("--as", "noc.lead", "status")
    assert result.exit_code == 77 and "no view capability" in result.stderr


# ---------------------------------------------------------------- formats

def test_json_ndjson_csv_and_table_shapes(noc, world, tmp_path):
    rows = run(noc, "--by", "city")
    assert rows and all(list(r) == list(service.COLUMNS) for r in rows)
    nd = noc("status", "--by", "city", "--format", "ndjson")
    assert [json.loads(line) for line in nd.stdout.splitlines()] == rows
    table = list(csv.DictReader(io.StringIO(noc("status", "--by", "city", "--format", "csv").stdout)))
    assert list(table[0]) == list(service.COLUMNS) and len(table) == len(rows)
    text = noc("status", "--by", "site")
    assert text.exit_code == 0
    assert text.stdout.startswith(f"status by site at {iso(NOW)}")
    for header in ("site", "in charge", "score", "crit", "high", "tickets", "attendance", "devices off", "sync",
                   "maint", "age"):
        assert header in text.stdout.splitlines()[1]
    assert "12m" in text.stdout and "7m" in text.stdout
    target = tmp_path / "status.json"
    assert noc("status", "--format", "json", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text()) == run(noc)


def test_no_snapshots_yet(noc):
    table = noc("status")
    assert table.exit_code == 0 and "no snapshots yet: run `nocctl snapshot run`" in table.stdout
    as_json = noc("status", "--by", "state", "--format", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    assert "no snapshots yet" in as_json.stderr


def test_filtered_to_nothing_is_not_no_snapshots(noc, world):
    result = noc("status", "--state", "Atlantis")
    assert result.exit_code == 0 and "(none)" in result.stdout and "no snapshots yet" not in result.stdout


# ---------------------------------------------------------------- watch

def test_watch_off_a_terminal_prints_each_refresh_plainly(noc, world):
    result = noc("status", "--watch", "0.01", "--count", "3")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("status by client at") == 3
    assert "\x1b" not in result.stdout
    streamed = noc("status", "--watch", "0.01", "--count", "2", "--format", "ndjson")
    assert len(streamed.stdout.splitlines()) == 2 * 3


def test_watch_on_a_terminal_redraws_in_place_and_ctrl_c_exits_quietly(noc, world, monkeypatch):
    from nocctl.cli import status as command

    monkeypatch.setattr(command, "_isatty", lambda: True)
    sleeps = []

    def interrupt_second_time(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(command, "_sleep", interrupt_second_time)
    result = noc("status", "--watch", "5")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.count(command.CLEAR) == 2 and sleeps == [5.0, 5.0]


def test_watch_needs_a_positive_interval(noc):
    assert noc("status", "--watch", "0").exit_code == 2


def test_grouped_sync_health_is_the_mean_over_the_devices_that_report_one():
    from nocctl.services.status import _sum, normalise

    two_of_ten = normalise({"devices_total": 10, "sync_health_score": 50.0, "sync_health_devices": 2})
    one = normalise({"devices_total": 1, "sync_health_score": 100.0, "sync_health_devices": 1})
    assert _sum([two_of_ten, one])["sync_health_score"] == round((50 * 2 + 100) / 3, 2)
    older = normalise({"devices_total": 3, "sync_health_score": 90.0})  # no count: every device
    assert _sum([older, one])["sync_health_score"] == round((90 * 3 + 100) / 4, 2)


# ---------------------------------------------------------------- open alerts from the alerts (issue 16)

def test_a_new_critical_shows_before_any_snapshot(noc):
    result = noc("ingest", input=ndjson(alert(severity="CRITICAL", at=iso(NOW - timedelta(minutes=1)))))
    assert result.exit_code == 0, result.stderr
    [row] = run(noc)
    assert (row["client"], row["alerts_critical"], row["alerts_open"], row["score"]) == ("ACME", 1, 1, 100)
    assert (row["window_end"], row["snapshot_age_seconds"], row["sites"]) == (None, None, 0)
    [site] = run(noc, "--by", "site")
    assert (site["site"], site["city"], site["state"], site["alerts_critical"]) == (
        "ACME-BLR-WF", "Bengaluru", "Karnataka", 1)
    [state] = run(noc, "--by", "state")
    assert (state["state"], state["client"], state["alerts_critical"]) == ("Karnataka", None, 1)
    table = noc("status")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == f"status by client at {iso(NOW)} · 1 rows, worst first · alerts now, no snapshot"
    assert lines[3].split()[:4] == ["ACME", "0", "100", "1"]
    assert lines[-1] == service.NO_SNAPSHOTS


def test_open_counts_leave_out_the_resolved_the_held_and_the_snoozed(noc, world):
    records = [alert(entity=e, severity="CRITICAL", at=iso(T0)) for e in ("open", "resolved", "snoozed")]
    records.append(alert(entity="resolved", severity="CRITICAL", at=iso(T0), action="resolve"))
    assert noc("ingest", input=ndjson(*records)).exit_code == 0
    listed = {a["entity_id"]: a["id"] for a in json.loads(noc("alert", "list", "--format", "json").stdout)}
    assert noc("alert", "snooze", str(listed["snoozed"]), "--for", "1h").exit_code == 0
    assert noc("maintenance", "add", "--site", "ACME-MYS", "--start", iso(OLD), "--end", iso(NOW + timedelta(hours=1)),
               "--suppress-all", "--reason", "works").exit_code == 0
    assert noc("ingest", input=ndjson(alert(site="ACME-MYS", severity="CRITICAL", at=iso(T0)))).exit_code == 0
    rows = {r["site"]: r for r in run(noc, "--by", "site")}
    assert rows["ACME-BLR-WF"]["alerts_critical"] == 1
    assert metric_part(rows["ACME-BLR-WF"]) == {
        **expected([world["ACME-BLR-WF"]], {"CRITICAL": 1}),
        "sync_health_score": world["ACME-BLR-WF"]["sync_health_score"]}
    assert rows["ACME-MYS"]["alerts_critical"] == 0  # held by the window
    [acme] = run(noc, "--client", "ACME")
    assert (acme["alerts_critical"], acme["alerts_open"]) == (1, 1)
    karnataka = {r["city"]: r for r in run(noc, "--by", "city", "--state", "Karnataka")}
    assert karnataka["Bengaluru"]["alerts_critical"] == 1 and karnataka["Mysuru"]["alerts_critical"] == 0


def test_the_heading_says_how_old_the_snapshot_is(noc, world):
    assert noc("status", "--by", "site").stdout.splitlines()[0].endswith(
        "worst first · alerts now, snapshots 7m to 12m ago")
    assert noc("status", "--client", "ACME").stdout.splitlines()[0].endswith(
        "worst first · alerts now, snapshot 7m ago")


def test_a_client_viewer_counts_only_the_alerts_they_see(noc, world):
    records = [alert(entity="a", site="ACME-CHN", severity="CRITICAL", at=iso(T0)),
               alert(entity="g", site="GLOBEX-PNQ", severity="HIGH", at=iso(T0))]
    assert noc("ingest", input=ndjson(*records)).exit_code == 0
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    rows = json.loads(noc("--as", "sana.khan", "status", "--by", "state", "--format", "json").stdout)
    assert {r["state"]: (r["alerts_critical"], r["alerts_high"]) for r in rows} == {
        "Gujarat": (0, 0), "Maharashtra": (0, 1)}
