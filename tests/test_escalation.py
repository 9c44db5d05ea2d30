"""Escalation policies and `nocctl escalate run` (DESIGN §3 "Escalation", §6): levels and
delays, the fall-through chain, per-client policies over the tenant default, the maximum
level, what the pass never touches, re-planning, idempotence, the lock, and two real
processes racing — against the backend under test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ingest_helpers import ORG, alert, ndjson, rows

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOCCTL = [sys.executable, "-m", "nocctl"]


def iso(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(0))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def ingest(noc, *records: dict) -> None:
    result = noc("ingest", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr


def crit(site="ACME-BLR-WF", entity="cam-01", at=0, severity="CRITICAL", **extra) -> dict:
    return alert(site=site, entity=entity, at=iso(at), severity=severity, **extra)


def escalate(noc, minutes: float, *extra: str) -> list[dict]:
    result = noc("escalate", "run", "--now", iso(minutes), "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def summary_line(stderr: str) -> dict:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stderr
    return lines[0]


def state(db_url: str, entity="cam-01") -> tuple:
    return rows(db_url, "SELECT a.status, a.escalation_level, p.username FROM alert a"
                        " LEFT JOIN person p ON p.id = a.escalated_to WHERE a.entity_id = :e", e=entity)[0]


def set_policy(noc, *args: str) -> dict:
    result = noc("escalation", "policy", "set", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def show_policy(noc, *args: str) -> dict:
    result = noc("escalation", "policy", "show", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- policies

def test_built_in_policy_is_in_force_until_one_is_set(noc):
    policy = show_policy(noc)
    assert policy["source"] == "built-in" and policy["max_level"] == 3
    assert [lv["target"] for lv in policy["levels"]] == ["oncall", "site_in_charge", "client_owner"]
    assert all(lv["delays"] == {"CRITICAL": 900, "HIGH": 1800} for lv in policy["levels"])
    table = noc("escalation", "policy", "show")
    assert table.exit_code == 0 and "built-in" in table.stdout and "15m" in table.stdout and "never" in table.stdout


def test_client_policy_wins_over_tenant_default_and_delete_falls_back(noc, db_url):
    set_policy(noc, "--level", "user:noc.lead,CRITICAL=5m")
    set_policy(noc, "--client", "ACME", "--level", "oncall,CRITICAL=20m,MEDIUM=1h", "--max-level", "2")
    acme = show_policy(noc, "--client", "ACME")
    assert acme["source"] == "client ACME" and acme["max_level"] == 2
    assert acme["levels"] == [{"target": "oncall", "delays": {"CRITICAL": 1200, "HIGH": 1800, "MEDIUM": 3600}}]
    assert show_policy(noc, "--client", "GLOBEX")["source"] == "tenant default"
    audit = rows(db_url, "SELECT details FROM audit_log WHERE action = 'CONFIG_CHANGE'"
                         " AND target_type = 'escalation_policy' ORDER BY id")
    assert len(audit) == 2
    second = audit[1][0] if isinstance(audit[1][0], dict) else json.loads(audit[1][0])
    assert second["scope"] == "client ACME" and second["before"] is None and second["after"]["max_level"] == 2
    deleted = noc("escalation", "policy", "delete", "--client", "ACME")
    assert deleted.exit_code == 0 and "tenant default" in deleted.stdout
    assert show_policy(noc, "--client", "ACME")["source"] == "tenant default"
    assert noc("escalation", "policy", "delete", "--client", "ACME").exit_code == 3


@pytest.mark.parametrize("args, code, words", [
    (("--level", "pager"), 65, "unknown target"),
    (("--level", "oncall,URGENT=5m"), 65, "SEVERITY=DELAY"),
    (("--level", "oncall,CRITICAL=soon"), 65, "delay"),
    (("--level", "user:nobody.here"), 3, "no person"),
    (("--level", "oncall", "--level", "client_owner", "--max-level", "1"), 65, "below the 2 levels"),
    (("--client", "NOPE", "--level", "oncall"), 3, "no client"),
])
def test_bad_policies_are_refused_with_one_line(noc, args, code, words):
    result = noc("escalation", "policy", "set", *args)
    assert result.exit_code == code, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert show_policy(noc)["source"] == "built-in"


def test_setting_a_policy_needs_noc_configure_over_the_client(noc):
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    assert noc("user", "grant", "sana.khan", "noc:configure", "--client", "GLOBEX").exit_code == 0
    assert noc("--as", "sana.khan", "escalation", "policy", "set", "--client", "GLOBEX",
               "--level", "oncall").exit_code == 0
    refused = noc("--as", "sana.khan", "escalation", "policy", "set", "--level", "oncall")  # tenant default
    assert refused.exit_code == 77 and "noc:configure" in refused.stderr
    hidden = noc("--as", "sana.khan", "escalation", "policy", "show", "--client", "ACME")
    assert hidden.exit_code == 3


# ---------------------------------------------------------------- the pass

def test_built_in_policy_climbs_level_by_level_then_stops(noc, db_url):
    """No schedule: on-call names nobody and falls through to the site's in-charge."""
    ingest(noc, crit())
    assert escalate(noc, 14.99) == []
    first = escalate(noc, 15)
    assert [(e["to_level"], e["target"], e["resolved_via"], e["escalated_to"]) for e in first] == \
        [(1, "oncall", "site_in_charge", "vikram.nair")]
    assert state(db_url) == ("ESCALATED", 1, "vikram.nair")
    assert escalate(noc, 15) == []  # the same --now again changes nothing
    assert escalate(noc, 29.99) == []  # level 2 waits 15m from the escalation, not from first_seen
    assert [e["escalated_to"] for e in escalate(noc, 30)] == ["vikram.nair"]
    assert [(e["to_level"], e["resolved_via"], e["escalated_to"]) for e in escalate(noc, 45)] == \
        [(3, "client_owner", "asha.rao")]
    assert escalate(noc, 600) == []  # the top level: no further
    assert state(db_url) == ("ESCALATED", 3, "asha.rao")
    assert rows(db_url, "SELECT next_escalation_at FROM alert") == [(None,)]
    audit = rows(db_url, "SELECT actor_id, os_user, details, at FROM audit_log WHERE action = 'ESCALATE' ORDER BY id")
    assert len(audit) == 3 and all(actor is None and os_user for actor, os_user, _, _ in audit)
    # Each row is written at the pass's --now, like the escalation it records.
    assert [str(at)[:16] for *_, at in audit] == ["2026-03-01 10:15", "2026-03-01 10:30", "2026-03-01 10:45"]
    details = audit[2][2] if isinstance(audit[2][2], dict) else json.loads(audit[2][2])
    assert details["level"] == 3 and details["escalated_to"] == "asha.rao" and details["from"] == "ESCALATED"


def test_on_call_answers_when_a_schedule_exists(noc, db_url):
    assert noc("oncall", "schedule", "add", "acme", "--client", "ACME", "--member", "meera.iyer",
               "--member", "karthik.s", "--start", iso(-60 * 24), "--turn", "1d").exit_code == 0
    ingest(noc, crit())
    (done,) = escalate(noc, 15)
    assert (done["resolved_via"], done["escalated_to"]) == ("oncall", "karthik.s")  # second turn


def test_fall_through_for_client_level_alerts_and_departed_people(noc, db_url):
    set_policy(noc, "--level", "user:priya.sharma,CRITICAL=5m", "--level", "site_in_charge,CRITICAL=5m")
    assert noc("user", "add", "temp.worker").exit_code == 0
    client_level = {**crit(entity="fw-1"), "client": "ACME"}
    client_level.pop("site")
    ingest(noc, client_level)
    (done,) = escalate(noc, 5)
    assert (done["target"], done["resolved_via"], done["escalated_to"]) == \
        ("user:priya.sharma", "user:priya.sharma", "priya.sharma")
    (done,) = escalate(noc, 10)  # no site: site in-charge names nobody, the client owner answers
    assert (done["target"], done["resolved_via"], done["escalated_to"]) == (
        "site_in_charge", "client_owner", "asha.rao")


def test_an_alert_nobody_can_take_is_still_escalated_and_counted(noc, db_url):
    set_policy(noc, "--level", "client_owner,CRITICAL=5m")
    _sql(db_url, "UPDATE person SET active = false WHERE username = 'asha.rao'")
    client_level = {**crit(entity="fw-2"), "client": "ACME"}
    client_level.pop("site")
    ingest(noc, client_level)
    result = noc("escalate", "run", "--now", iso(5), "--json")
    assert result.exit_code == 0
    (done,) = json.loads(result.stdout)
    assert done["escalated_to"] is None and done["resolved_via"] is None
    assert summary_line(result.stderr)["unrouted"] == 1
    assert state(db_url, "fw-2") == ("ESCALATED", 1, None)


def test_per_client_policy_over_the_tenant_default(noc, db_url):
    set_policy(noc, "--level", "user:noc.lead,CRITICAL=5m")
    set_policy(noc, "--client", "ACME", "--level", "oncall,CRITICAL=20m")
    ingest(noc, crit(site="ACME-MYS", entity="a"), crit(site="GLOBEX-PNQ", entity="g"))
    assert [(e["client"], e["escalated_to"]) for e in escalate(noc, 5)] == [("GLOBEX", "noc.lead")]
    assert [(e["client"], e["escalated_to"]) for e in escalate(noc, 20)] == [("ACME", "vikram.nair")]


def test_levels_past_the_listed_ones_repeat_the_last_up_to_the_maximum(noc, db_url):
    set_policy(noc, "--level", "user:noc.lead,CRITICAL=5m", "--max-level", "3")
    ingest(noc, crit())
    assert [e["to_level"] for m in (5, 10, 15, 20, 60) for e in escalate(noc, m)] == [1, 2, 3]
    assert state(db_url) == ("ESCALATED", 3, "noc.lead")


def test_the_pass_leaves_acknowledged_suppressed_resolved_and_never_severities_alone(noc, db_url):
    assert noc("maintenance", "add", "--site", "ACME-CHN", "--start", iso(-5), "--duration", "2h",
               "--suppress-all", "--reason", "works").exit_code == 0
    ingest(noc, crit(entity="acked"), crit(entity="resolved"), crit(entity="medium", severity="MEDIUM"),
           crit(site="ACME-CHN", entity="quiet"), crit(entity="due"))
    ids = dict(rows(db_url, "SELECT entity_id, id FROM alert"))
    assert noc("alert", "ack", str(ids["acked"])).exit_code == 0
    assert noc("alert", "resolve", str(ids["resolved"])).exit_code == 0
    result = noc("escalate", "run", "--now", iso(60), "--json")
    assert [e["alert_id"] for e in json.loads(result.stdout)] == [ids["due"]]
    summary = summary_line(result.stderr)
    assert (summary["escalated"], summary["finished"]) == (1, 1)  # MEDIUM never escalates
    assert dict(rows(db_url, "SELECT entity_id, status FROM alert")) == {
        "acked": "ACKNOWLEDGED", "resolved": "RESOLVED", "medium": "NEW", "quiet": "SUPPRESSED", "due": "ESCALATED"}
    assert rows(db_url, "SELECT next_escalation_at FROM alert WHERE entity_id = 'medium'") == [(None,)]
    assert [e["alert_id"] for e in escalate(noc, 600)] == [ids["due"]]  # its level 2; nothing else moves
    assert state(db_url, "quiet")[0] == "SUPPRESSED" and state(db_url, "acked")[0] == "ACKNOWLEDGED"


def test_a_raised_severity_brings_the_escalation_forward(noc, db_url, monkeypatch):
    ingest(noc, crit(severity="HIGH"))
    assert escalate(noc, 10) == []  # HIGH: due at 30m
    monkeypatch.setenv("NOC_NOW", iso(12))  # the raised severity arrives when it happens
    ingest(noc, crit(severity="CRITICAL", at=12))
    assert [e["severity"] for e in escalate(noc, 15)] == ["CRITICAL"]


def test_a_new_policy_replans_waiting_alerts(noc, db_url):
    ingest(noc, crit(severity="HIGH"))
    assert escalate(noc, 1) == []  # planned for 30m under the built-in policy
    replanned = set_policy(noc, "--level", "oncall,HIGH=5m")
    assert replanned["replanned_alerts"] == 1
    assert [e["to_level"] for e in escalate(noc, 6)] == [1]


def test_a_manual_escalation_restarts_the_clock_for_the_next_level(noc, db_url):
    ingest(noc, crit())
    (alert_id,) = rows(db_url, "SELECT id FROM alert")[0]
    assert noc("alert", "escalate", str(alert_id), "--note", "paging now").exit_code == 0  # at T0: level 1
    assert escalate(noc, 14) == []
    assert [e["to_level"] for e in escalate(noc, 15)] == [2]


def test_dry_run_reports_and_changes_nothing(noc, db_url):
    ingest(noc, crit(), crit(entity="cam-02"))
    before = rows(db_url, "SELECT id, status, escalation_level, next_escalation_at FROM alert ORDER BY id")
    result = noc("escalate", "run", "--now", iso(20), "--dry-run", "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 2
    assert summary_line(result.stderr)["dry_run"] is True
    assert rows(db_url, "SELECT id, status, escalation_level, next_escalation_at FROM alert ORDER BY id") == before
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'ESCALATE'") == [(0,)]


def test_summary_is_one_json_line_on_stderr_and_stdout_is_quiet(noc):
    ingest(noc, crit())
    result = noc("escalate", "run", "--now", iso(16))
    assert result.exit_code == 0 and result.stdout == ""
    summary = summary_line(result.stderr)
    assert summary["escalated"] == 1 and summary["looked_at"] == 1 and "duration_ms" in summary


def test_escalations_queue_one_notification_per_channel(noc, db_url, tmp_path, monkeypatch):
    config = tmp_path / "notify.toml"
    config.write_text('[notify.channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
                      '[notify.channels.page]\ntype = "command"\ncommand = "cat > /dev/null"\n'
                      'severities = ["CRITICAL"]\n')
    monkeypatch.setenv("NOC_CONFIG", str(config))
    ingest(noc, crit(), crit(entity="cam-02", severity="HIGH"))
    escalate(noc, 30)
    queued = rows(db_url, "SELECT channel, status, kind FROM notification ORDER BY channel, id")
    assert queued == [("hook", "PENDING", "ESCALATION"), ("hook", "PENDING", "ESCALATION"),
                      ("page", "PENDING", "ESCALATION")]
    payload = rows(db_url, "SELECT payload FROM notification WHERE channel = 'page'")[0][0]
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["alert"]["severity"] == "CRITICAL" and payload["recipient"]["username"] == "vikram.nair"
    assert payload["level"] == 1 and "nocctl alert ack" in payload["text"]


def test_the_due_selection_is_served_by_the_partial_index(noc, engine):
    """5,000 stored alerts, nearly all acknowledged or resolved: the planner reads the
    partial index, whose entries are only the unacknowledged alerts."""
    with engine.begin() as conn:
        client = conn.scalar(text("SELECT id FROM business_unit WHERE code = 'ACME'"))
        conn.execute(text(
            "INSERT INTO alert (tenant_id, client_id, alert_type, severity, status, message, dedup_key,"
            " first_seen_at, last_seen_at, created_at, next_escalation_at)"
            " VALUES (1, :client, 'DEVICE_OFFLINE', 'CRITICAL', :status, 'm', :key, :at, :at, :at, :next)"),
            [{"client": client, "status": ("RESOLVED", "ACKNOWLEDGED")[i % 2] if i % 100 else "NEW",
              "key": f"k{i}", "at": T0, "next": T0 + timedelta(minutes=15)} for i in range(5000)])
        conn.execute(text("ANALYZE"))
    query = ("SELECT id FROM alert WHERE tenant_id = 1 AND alert.status IN ('NEW', 'ESCALATED')"
             " AND next_escalation_at <= :now ORDER BY next_escalation_at, id")
    with engine.connect() as conn:
        explain = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        plan = "\n".join(str(r[-1]) for r in conn.execute(text(explain + query), {"now": T0 + timedelta(hours=1)}))
    assert "ix_alert_tenant_escalation_due" in plan, plan


# ---------------------------------------------------------------- cron safety

def test_a_second_runner_while_the_lock_is_held_exits_75(noc, engine):
    from nocctl.services import passlock

    with passlock.hold(engine, "escalate"):
        result = noc("escalate", "run", "--now", iso(20))
    assert result.exit_code == 75
    assert "another `escalate` pass is running" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_processes_at_once_escalate_each_due_alert_exactly_once(noc, db_url):
    ingest(noc, *(crit(site=site, entity=f"dev-{i}") for i, site in
                  enumerate(["ACME-BLR-WF", "GLOBEX-PNQ", "INITECH-HYD", "ACME-MYS"] * 50)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env["NOC_CONFIG"] = os.devnull
    procs = [subprocess.Popen([*NOCCTL, "--db", db_url, "escalate", "run", "--now", iso(20), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(code in (0, 75) for code, _, _ in results), results
    assert any(code == 0 for code, _, _ in results)
    escalated = [e["alert_id"] for code, out, _ in results if code == 0 for e in json.loads(out)]
    assert len(escalated) == 200 and len(set(escalated)) == 200
    assert rows(db_url, "SELECT count(*), count(DISTINCT target_id) FROM audit_log WHERE action = 'ESCALATE'") \
        == [(200, 200)]
    assert rows(db_url, "SELECT escalation_level, count(*) FROM alert GROUP BY escalation_level") == [(1, 200)]


def _sql(db_url: str, statement: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()



def test_an_alert_acknowledged_while_the_pass_decides_is_left_alone(noc, db_url, new_session):
    """The pass read two due alerts; an engineer acknowledges one before the pass writes:
    only the other is escalated, audited and notified."""
    from nocctl.rawsql import RawSQL
    from nocctl.services import escalation

    ingest(noc, crit(entity="taken"), crit(entity="left"))
    session = new_session()
    with session.begin():
        due = escalation._due(session, 1, T0 + timedelta(minutes=20))
    ids = {a.id: a for a in due}
    taken = next(i for i in ids if rows(db_url, "SELECT entity_id FROM alert WHERE id = :i", i=i) == [("taken",)])
    assert noc("alert", "ack", str(taken)).exit_code == 0
    moves = [escalation._Move(a, 1, "oncall", None, None, None) for a in due]
    with session.begin():
        changed = escalation._write(RawSQL(session), [], moves, T0 + timedelta(minutes=20))
    assert changed == set(ids) - {taken}
    assert dict(rows(db_url, "SELECT entity_id, status FROM alert")) == {"taken": "ACKNOWLEDGED", "left": "ESCALATED"}
