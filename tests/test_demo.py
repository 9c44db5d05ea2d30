"""`nocctl demo`: a fresh database filled through the real paths, the weekly report, and
the refusal to touch a database that holds data."""
from __future__ import annotations

import json
import re
import shlex
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from conftest import PG_SERVER, Result
from nocctl import simulator as demo
from nocctl.db import make_engine, make_sessionmaker
from nocctl.models import Incident
from nocctl.services.ingest.pipeline import default_dedup_key

# A Tuesday: the three days before it hold GLOBEX's Sunday patching window (02:00–04:00 IST).
NOW = "2026-03-10T12:00:00Z"
DAYS = "3"


def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    from nocctl.cli import cli as root

    result = CliRunner().invoke(root, args, env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def environment(home) -> dict[str, str | None]:
    """What the hermetic fixture gives every test, for the module-scoped demo database too."""
    config = home / "config.toml"
    config.write_text("")
    return {"NOC_CONFIG": str(config), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "cfg"),
            "NOC_DATABASE_URL": None, "NOC_TENANT": None, "NOC_ACTOR": None, "NOC_NOW": NOW}


@pytest.fixture(scope="module")
def filled(pg_server, tmp_path_factory):
    """One demo run on a database with nothing in it (no schema either), shared by the
    tests that only read it."""
    home = tmp_path_factory.mktemp("demo")
    url = pg_server.create() if pg_server is not None else f"sqlite:///{home / 'demo.db'}"
    env = environment(home)
    (home / "bin").mkdir()
    env["PATH"] = str(home / "bin")  # no nocctl on PATH: the next steps must say how to run it
    result = invoke(["demo", "--db", url, "--days", DAYS], env)
    yield url, env, home, result
    if pg_server is not None:
        pg_server.drop(url)


def query(url: str, sql: str, **params):
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


def typed(url: str, statement):
    """Rows with the models' types (aware datetimes on both backends)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.execute(statement).all()
    finally:
        engine.dispose()


def status_counts(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT status, count(*) FROM alert GROUP BY status"))


def test_the_demo_fills_an_empty_database_and_prints_the_weekly_report(filled):
    _url, _, home, result = filled
    assert result.exit_code == 0, result.stderr
    assert "MTTR" in result.stdout and "SLA" in result.stdout  # the weekly report, on stdout
    assert "\r" not in result.stderr  # no progress when stderr is not a terminal
    html = (home if not PG_SERVER else home / "data" / "nocctl") / "demo-weekly.html"  # beside the database
    page = html.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "<style" in page
    assert not re.search(r"<link\b|<script[^>]*\bsrc=|<img[^>]*\bsrc=\"https?:", page)  # self-contained
    assert f"weekly report as HTML: {html}" in result.stderr
    assert "audit verify" in result.stderr  # what to try next
    assert re.search(r"demo: [\d,]+ records over 3 days", result.stderr)


def test_the_traffic_went_through_ingest_with_everything_a_noc_sees(filled):
    url = filled[0]
    counts = status_counts(url)
    assert counts["RESOLVED"] > 0 and counts.get("NEW", 0) + counts.get("ESCALATED", 0) > 0
    held = "SELECT count(*) FROM alert WHERE status = 'SUPPRESSED' AND maintenance_window_id IS NOT NULL"
    assert query(url, held)[0][0] > 0
    # Held alerts are kept (SUPPRESSED, later resolved or surfaced), never dropped.
    assert query(url, "SELECT count(*) FROM alert WHERE maintenance_window_id IS NOT NULL")[0][0] > \
        counts["SUPPRESSED"]
    assert query(url, "SELECT count(*) FROM alert WHERE duplicate_count > 0")[0][0] > 0
    groups = query(url, "SELECT correlation_id, count(*), count(DISTINCT site_id) FROM alert"
                        " GROUP BY correlation_id HAVING count(*) >= 3")
    assert groups and all(sites == 1 for _, _, sites in groups)  # correlated: several alerts at one site
    assert query(url, "SELECT count(*) FROM alert WHERE acknowledged_at IS NOT NULL AND time_to_ack > 0")[0][0] > 0
    assert query(url, "SELECT count(*) FROM alert WHERE resolved_at IS NOT NULL AND time_to_resolve > 0")[0][0] > 0
    escalated = query(url, "SELECT a.id FROM alert a WHERE a.escalation_level > 0 AND EXISTS (SELECT 1 FROM audit_log l"
                           " WHERE l.action = 'ESCALATE' AND l.target_type = 'alert'"
                           " AND l.target_id = CAST(a.id AS VARCHAR(20)))")
    assert escalated
    # Incidents: opened automatically by CRITICAL groups and by hand, with SLA targets, some late.
    incidents = typed(url, select(Incident.sla_target, Incident.resolved_at, Incident.ticket_ref))
    assert incidents and all(sla is not None for sla, *_ in incidents)
    assert any(ticket == "INC-2041" for *_, ticket in incidents)  # opened by hand
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    late = [sla for sla, resolved, _ in incidents if (resolved or now) > sla]
    assert late, "no SLA breach"
    assert len(late) < len(incidents)
    # Nothing was rejected: the generator speaks the native format exactly.
    assert query(url, "SELECT count(*) FROM ingest_reject")[0][0] == 0


def test_the_audit_chain_of_the_demo_verifies(filled):
    url, env = filled[0], filled[1]
    result = invoke(["--db", url, "audit", "verify"], env)
    assert result.exit_code == 0, result.stderr
    actions = dict(query(url, "SELECT action, count(*) FROM audit_log GROUP BY action"))
    for action in ("ACKNOWLEDGE", "RESOLVE", "SUPPRESS", "ESCALATE", "MAINTENANCE_CREATE", "CONFIG_CHANGE",
                   "INCIDENT_CREATE", "INCIDENT_RESOLVE"):
        assert actions.get(action), action


def test_a_database_that_holds_data_is_refused_and_left_alone(filled, tmp_path):
    url, env = filled[0], filled[1]
    before = [status_counts(url), query(url, "SELECT count(*), max(id) FROM audit_log")]
    elsewhere = tmp_path / "global.db"  # the demo's own --db wins over the global one
    result = invoke(["--db", f"sqlite:///{elsewhere}", "demo", "--db", url, "--days", DAYS], env)
    assert not elsewhere.exists()
    assert result.exit_code == 4
    assert result.stdout == ""
    assert re.fullmatch(r"nocctl: error: the database .* already holds data \(business_unit, alert, .*\); the demo "
                        r"will not mix made-up alerts into it; use --db sqlite:////tmp/nocctl-demo.db or another fresh "
                        r"database\n", result.stderr), result.stderr
    assert [status_counts(url), query(url, "SELECT count(*), max(id) FROM audit_log")] == before


def test_same_seed_and_clock_give_the_same_data(filled, db_url, tmp_path):
    """A second fresh database (migrated, `nocctl init` run: still no data), the global
    --db this time, and --html: the same alerts by status as the first run."""
    env = environment(tmp_path)
    assert invoke(["--db", db_url, "init"], env).exit_code == 0
    html = tmp_path / "reports" / "week.html"
    result = invoke(["--db", db_url, "demo", "--days", DAYS, "--html", str(html)], env)
    assert result.exit_code == 0, result.stderr
    assert html.exists()
    assert status_counts(db_url) == status_counts(filled[0])
    counts = "SELECT count(*), sum(duplicate_count), count(correlation_id) FROM alert"
    assert query(db_url, counts) == query(filled[0], counts)
    assert query(db_url, "SELECT count(*) FROM incident") == query(filled[0], "SELECT count(*) FROM incident")


def test_the_feeds_went_in_and_the_snapshot_pass_ran_through_the_period(filled):
    url = filled[0]
    kinds = dict(query(url, "SELECT kind, count(*) FROM feed_record GROUP BY kind"))
    assert set(kinds) == {"ticket", "work_order", "attendance", "device", "geofence", "security"}, kinds
    # Every six hours of simulated time, then at the end: the windows span the period.
    ends = [row[0] for row in query(url, "SELECT DISTINCT window_end FROM snapshot")]
    assert len(ends) >= 3 * 4
    # The derived alerts: raised by the pass, and some resolved again when their condition cleared.
    derived = dict(query(url, "SELECT status, count(*) FROM alert WHERE source = 'nocctl-snapshot' GROUP BY status"))
    assert derived.get("RESOLVED", 0) > 0 and sum(derived.values()) > derived["RESOLVED"], derived
    types = {row[0] for row in query(url, "SELECT DISTINCT alert_type FROM alert WHERE source = 'nocctl-snapshot'")}
    assert {"SLA_BREACH", "ATTENDANCE_MISSING"} <= types, types
    assert re.search(r"demo: [\d,]+ feed records \(.*\); [\d,]+ snapshot passes wrote [\d,]+ snapshots and raised "
                     r"[\d,]+ derived alerts", filled[3].stderr)


def test_status_and_snapshot_list_show_the_feeds_after_the_demo(filled):
    url, env = filled[0], filled[1]
    status = invoke(["--db", url, "status", "--format", "json"], env)
    assert status.exit_code == 0, status.stderr
    assert "no snapshots yet" not in status.stdout + status.stderr
    rows = json.loads(status.stdout)
    assert {row["client"] for row in rows} == {"ACME", "GLOBEX", "INITECH"}
    assert all(row["window_end"] is not None for row in rows)
    for metric in ("tickets_open", "work_orders_pending", "attendance_expected", "attendance_present",
                   "devices_total"):
        assert sum(row[metric] for row in rows) > 0, metric
    assert all(row["sync_health_score"] is not None for row in rows)
    table = invoke(["--db", url, "status"], env)
    assert table.exit_code == 0 and "GLOBEX" in table.stdout
    listed = invoke(["--db", url, "snapshot", "list", "--site", "GLOBEX-BOM-WH2", "--format", "json", "--limit",
                     "10"], env)
    assert listed.exit_code == 0, listed.stderr
    snapshots = json.loads(listed.stdout)
    assert len(snapshots) == 10  # of the 12 passes of 3 days (every 6 hours)
    assert sum(s["metrics"]["attendance_expected"] for s in snapshots) > 0
    assert sum(s["metrics"]["geofence_events"] for s in snapshots) > 0


def _expected_invocation() -> str:
    beside = Path(sys.executable).parent / "nocctl"
    return shlex.quote(str(beside)) if beside.is_file() else f"{shlex.quote(sys.executable)} -m nocctl"


def test_the_next_steps_say_how_to_run_nocctl_when_it_is_not_on_path(filled):
    """The fixture ran the demo with a PATH that has no nocctl on it."""
    stderr = filled[3].stderr
    steps = stderr.split("demo: try next:\n", 1)[1].splitlines()
    prefix = f"  {_expected_invocation()} --db "
    assert steps and all(step.startswith(prefix) for step in steps), steps
    assert any(step.endswith(" status") for step in steps)
    assert any(" snapshot list " in step for step in steps)


def test_invocation_names_the_program_that_runs(monkeypatch, tmp_path):
    from nocctl.cli.demo import invocation

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "argv", ["pytest"])  # in-process: the script beside the interpreter
    assert invocation() == _expected_invocation()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "py dir" / "python3"))  # no script beside it
    assert invocation() == f"'{tmp_path}/py dir/python3' -m nocctl"
    script = tmp_path / "bin" / "nocctl"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script)])  # run as a console script that is not on PATH
    assert invocation() == str(script)
    monkeypatch.setenv("PATH", f"{empty}:{script.parent}")
    assert invocation() == "nocctl"


# ---------------------------------------------------------------- the generator alone


def plan(days: int = 30, seed: int = 7) -> demo.Plan:
    return demo.Plan(datetime.fromisoformat("2026-03-10T12:00:00+00:00"), days, seed)


def traffic(p: demo.Plan) -> demo.Traffic:
    t = demo.Traffic(p, demo.windows(p))
    t.build()
    return t


def test_a_month_of_traffic_is_a_realistic_size_and_shape():
    t = traffic(plan())
    records = t.records()
    assert 20_000 <= len(records) <= 40_000
    actions = Counter(r[2].get("action", "trigger") for r in records)
    assert actions["resolve"] > actions["acknowledge"] > 0
    times = [r[0] for r in records]
    assert times == sorted(times) and plan().start.timestamp() < times[0] and times[-1] <= plan().end.timestamp()
    sites = Counter(r[2]["site"] for r in records if "action" not in r[2])
    assert sites.most_common(1)[0][0] == "GLOBEX-BOM-WH2"  # the noisy warehouse
    # Diurnal: office-hours kinds peak in the Indian day.
    hours = Counter((r[0] + demo.IST_SECONDS) // 3600 % 24 for r in records
                    if r[2].get("alert_type") == "WORK_ORDER_OVERDUE" and "action" not in r[2])
    assert sum(hours[h] for h in range(9, 18)) > 3 * sum(hours[h] for h in range(6))


def test_the_generator_is_deterministic_per_seed():
    first = [(at, record) for at, _, record in traffic(plan(3, 7)).records()]
    assert first == [(at, record) for at, _, record in traffic(plan(3, 7)).records()]
    assert first != [(at, record) for at, _, record in traffic(plan(3, 8)).records()]


def test_acknowledge_and_resolve_events_name_the_key_ingest_computes():
    records = [r[2] for r in traffic(plan(3)).records()]
    keys = {default_dedup_key(r["alert_type"], r["site"], r["entity_type"], r["entity_id"])
            for r in records if "action" not in r}
    closes = [r for r in records if "action" in r]
    assert closes and all(r["dedup_key"] in keys for r in closes)


def test_every_window_is_a_valid_maintenance_window():
    from nocctl.services import maintenance

    for window in demo.windows(plan()):
        maintenance.validate(maintenance.NewWindow(
            window.scope, window.unit, window.starts_at, window.ends_at, window.reason, not window.types,
            window.types, "weekly" if window.weekly_until else "none", ("sun",) if window.weekly_until else (),
            window.weekly_until, "Asia/Kolkata"))


def test_quiet_settings_drop_the_notification_channels():
    from nocctl.config import Settings

    settings = Settings("sqlite://", "default", None, None, {"notify": {"channels": {"x": {}}}, "sla": {"LOW": "1h"}})
    assert demo.quiet_settings(settings).file == {"sla": {"LOW": "1h"}}


def test_doctor_right_after_the_demo_is_healthy(filled):
    """The demo's passes ran in simulated time, not from cron: doctor says they never ran
    (information) instead of failing on a notify pass 'overdue' minutes after the demo."""
    url, env = filled[0], filled[1]
    result = invoke(["--db", url, "doctor", "--format", "json"], env)
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    for name in ("snapshot", "escalate", "notify", "retention"):
        assert checks[f"pass {name}"]["status"] == "info", checks[f"pass {name}"]
    assert result.exit_code == 0, result.stdout
