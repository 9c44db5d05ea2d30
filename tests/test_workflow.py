"""The alert and incident state machines (DESIGN §3): every allowed and every refused move,
the timings they set, their audit rows, automatic incidents, and a race of two processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl import clock
from nocctl.services import alerts, incidents
from nocctl.services.rbac import Caller, os_login

ALERT_STATUSES = ("NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED", "SUPPRESSED", "RESOLVED")
ALERT_ALLOWED = {
    "acknowledge": {"NEW", "ESCALATED", "ASSIGNED"},
    "assign": {"NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED"},
    "escalate": {"NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED"},
    "resolve": {"NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED", "SUPPRESSED"},
}
ALERT_TARGET = {"acknowledge": "ACKNOWLEDGED", "assign": "ASSIGNED", "escalate": "ESCALATED", "resolve": "RESOLVED"}
# A move to the state the alert is in already: a no-op that succeeds (issue 16).
ALERT_ALREADY = {"acknowledge": {"ACKNOWLEDGED"}, "resolve": {"RESOLVED"}}
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def noc(admin_cli):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def admin():
    return Caller("default", None, os_login(), "testhost")


@pytest.fixture
def fixed_clock():
    clock.set_now(T0 + timedelta(minutes=7))
    yield
    clock.set_now(None)


def execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def one_alert(noc) -> int:
    assert noc("ingest", input=ndjson(alert(at="2026-03-01T10:00:00Z"))).exit_code == 0
    return json.loads(noc("alert", "list", "--format", "json").stdout)[0]["id"]


@pytest.mark.parametrize("action", sorted(ALERT_ALLOWED))
@pytest.mark.parametrize("status", ALERT_STATUSES)
def test_alert_state_machine(noc, engine, new_session, admin, fixed_clock, status, action):
    alert_id = one_alert(noc)
    execute(engine, "UPDATE alert SET status = :s WHERE id = :i", s=status, i=alert_id)
    audit_before = rows(str(engine.url.render_as_string(hide_password=False)), "SELECT count(*) FROM audit_log")
    (outcome,) = alerts.act(new_session(), admin, action, [alert_id],
                                   assignee=os_login() if action == "assign" else None)
    found = rows(engine.url.render_as_string(hide_password=False), "SELECT status FROM alert WHERE id = :i", i=alert_id)
    audits = rows(engine.url.render_as_string(hide_password=False), "SELECT count(*) FROM audit_log")
    if status in ALERT_ALREADY.get(action, ()):
        assert outcome.ok and outcome.unchanged and outcome.status == status
        assert outcome.message == f"already {status.lower()}"
        assert found == [(status,)] and audits == audit_before
    elif status in ALERT_ALLOWED[action]:
        assert outcome.ok and outcome.status == ALERT_TARGET[action]
        assert found == [(ALERT_TARGET[action],)]
        assert audits[0][0] == audit_before[0][0] + 1
    else:
        assert not outcome.ok and outcome.exit_code == 4
        assert f"is {status}: cannot {action}" in outcome.error
        assert found == [(status,)]  # nothing changed
        assert audits == audit_before


def test_timings_and_fields_of_alert_moves(noc, db_url):
    alert_id = one_alert(noc)
    env = {"NOC_NOW": "2026-03-01T10:04:30Z"}
    assert noc("alert", "ack", str(alert_id), "--note", "on it", env=env).exit_code == 0
    env = {"NOC_NOW": "2026-03-01T10:06:00Z"}
    assert noc("alert", "escalate", str(alert_id), "--to", "noc.lead", env=env).exit_code == 0
    assert noc("alert", "assign", str(alert_id), "vikram.nair", env=env).exit_code == 0
    env = {"NOC_NOW": "2026-03-01T11:00:00Z"}
    result = noc("alert", "resolve", str(alert_id), "--note", "camera rebooted", "--format", "json", env=env)
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["status"] == "RESOLVED"
    shown = json.loads(noc("alert", "show", str(alert_id), "--format", "json").stdout)
    assert shown["time_to_ack"] == 270 and shown["time_to_resolve"] == 3600
    assert shown["escalation_level"] == 1 and shown["escalated_to"] == "noc.lead"
    assert shown["assigned_to"] == "vikram.nair" and shown["resolution_note"] == "camera rebooted"
    actions = [r[0] for r in rows(db_url, "SELECT action FROM audit_log WHERE target_type = 'alert' ORDER BY id")]
    assert actions == ["ACKNOWLEDGE", "ESCALATE", "ASSIGN", "RESOLVE"]


def test_several_ids_each_reported_valid_ones_done(noc, db_url):
    noc("ingest", input=ndjson(alert(entity="a"), alert(entity="b")))
    a, b = sorted(x["id"] for x in json.loads(noc("alert", "list", "--format", "json").stdout))
    noc("alert", "ack", str(a))
    result = noc("alert", "ack", str(a), str(b), "999999")
    assert result.exit_code == 3  # the first failure; a acknowledged already is no failure (issue 16)
    assert result.stdout == f"alert {a}: already acknowledged\nalert {b}: ACKNOWLEDGED\n"
    assert "no alert 999999" in result.stderr
    assert rows(db_url, "SELECT status FROM alert ORDER BY id") == [("ACKNOWLEDGED",), ("ACKNOWLEDGED",)]


def test_ack_by_dedup_key(noc, db_url):
    noc("ingest", input=ndjson(alert(dedup_key="pump-7")))
    assert noc("alert", "ack", "--dedup-key", "pump-7").exit_code == 0
    assert rows(db_url, "SELECT status FROM alert") == [("ACKNOWLEDGED",)]
    assert noc("alert", "ack", "--dedup-key", "nope").exit_code == 3
    usage = noc("alert", "ack")
    assert usage.exit_code == 2 and "give at least one alert ID" in usage.stderr


def test_assign_to_an_unknown_person_is_not_found(noc):
    alert_id = one_alert(noc)
    result = noc("alert", "assign", str(alert_id), "ghost")
    assert result.exit_code == 3 and "no active person 'ghost'" in result.stderr


INCIDENT_STATUSES = ("NEW", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "CLOSED")
INCIDENT_ALLOWED = {
    "acknowledge": ({"NEW"}, "ACKNOWLEDGED"),
    "assign": ({"NEW", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS"}, None),
    "start": ({"NEW", "ACKNOWLEDGED", "ASSIGNED"}, "IN_PROGRESS"),
    "resolve": ({"NEW", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS"}, "RESOLVED"),
    "reopen": ({"RESOLVED"}, "IN_PROGRESS"),
    "close": ({"NEW", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED"}, "CLOSED"),
}


@pytest.mark.parametrize("action", sorted(INCIDENT_ALLOWED))
@pytest.mark.parametrize("status", INCIDENT_STATUSES)
def test_incident_state_machine(noc, engine, new_session, admin, status, action):
    made = json.loads(noc("incident", "create", "--title", "Power cut", "--severity", "HIGH", "--site", "ACME-MYS",
                          "--format", "json").stdout)
    execute(engine, "UPDATE incident SET status = :s WHERE id = :i", s=status, i=made["id"])
    (outcome,) = incidents.act(new_session(), admin, action, [made["id"]],
                               assignee=os_login() if action == "assign" else None)
    allowed, target = INCIDENT_ALLOWED[action]
    if target is None:  # assign keeps an incident in progress, else makes it ASSIGNED
        target = "IN_PROGRESS" if status == "IN_PROGRESS" else "ASSIGNED"
    url = engine.url.render_as_string(hide_password=False)
    found = rows(url, "SELECT status FROM incident WHERE id = :i", i=made["id"])
    if status in allowed:
        assert outcome.ok and found == [(target,)]
    else:
        assert not outcome.ok and outcome.exit_code == 4 and found == [(status,)]


def test_incident_sla_target_timings_and_links(noc, db_url):
    noc("ingest", input=ndjson(alert(entity="a"), alert(entity="b", site="ACME-MYS")))
    by_site = {x["site"]: x["id"] for x in json.loads(noc("alert", "list", "--format", "json").stdout)}
    ids = [by_site["ACME-BLR-WF"], by_site["ACME-MYS"]]
    env = {"NOC_NOW": "2026-03-01T10:00:00Z"}
    made = json.loads(noc("incident", "create", "--title", "Cameras", "--alert", str(ids[0]), "--ticket", "T-1",
                          "--runbook", "https://wiki/cams", "--format", "json", env=env).stdout)
    assert made["severity"] == "HIGH" and made["site"] == "ACME-BLR-WF" and made["ticket_ref"] == "T-1"
    assert made["sla_target"] == "2026-03-01T18:00:00Z"  # HIGH: 8 hours
    added = noc("incident", "add-alert", str(made["id"]), str(ids[1]), str(ids[0]), "--format", "json")
    assert json.loads(added.stdout) == {"incident": made["id"], "linked": [ids[1]], "already_linked": [ids[0]]}
    shown = json.loads(noc("incident", "show", str(made["id"]), "--format", "json").stdout)
    assert sorted(a["id"] for a in shown["linked_alerts"]) == sorted(ids)
    assert shown["site"] == "ACME-BLR-WF"  # where it was opened
    noc("incident", "assign", str(made["id"]), "meera.iyer", env={"NOC_NOW": "2026-03-01T10:30:00Z"})
    noc("incident", "resolve", str(made["id"]), env={"NOC_NOW": "2026-03-01T12:00:00Z"})
    shown = json.loads(noc("incident", "show", str(made["id"]), "--format", "json").stdout)
    assert shown["time_to_resolve"] == 7200 and shown["assigned_to"] == "meera.iyer"
    info = noc("incident", "create", "--title", "FYI", "--severity", "INFO", "--client", "ACME", "--format", "json")
    assert json.loads(info.stdout)["sla_target"] is None  # INFO has no SLA
    listed = json.loads(noc("incident", "list", "--open", "--format", "json").stdout)
    assert [i["title"] for i in listed] == ["FYI"]


def test_critical_alert_opens_an_incident_and_its_group_joins(noc, db_url):
    noc("ingest", input=ndjson(alert(entity="cam", at="2026-03-01T10:00:00Z"),
                               alert(alert_type="GEOFENCE_BREACH", entity="g", severity="CRITICAL",
                                     at="2026-03-01T10:02:00Z")))
    (incident,) = json.loads(noc("incident", "list", "--format", "json").stdout)
    assert incident["severity"] == "CRITICAL" and incident["alerts"] == 2
    assert incident["title"].startswith("GEOFENCE_BREACH:")
    noc("ingest", input=ndjson(alert(entity="door", at="2026-03-01T10:05:00Z")))
    assert json.loads(noc("incident", "show", str(incident["id"]), "--format", "json").stdout)["alerts"] == 3
    # Other groups below the threshold open nothing.
    noc("ingest", input=ndjson(alert(entity="x", site="GLOBEX-PNQ", at="2026-03-01T10:00:00Z")))
    assert len(json.loads(noc("incident", "list", "--format", "json").stdout)) == 1
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'INCIDENT_CREATE'") == [(1,)]


def test_suppressed_critical_alert_opens_no_incident(noc, engine, db_url):
    site = rows(db_url, "SELECT id, client_id, tenant_id FROM business_unit WHERE code = 'ACME-BLR-WF'")[0]
    execute(engine, "INSERT INTO maintenance_window (tenant_id, scope_kind, client_id, site_id, suppress_all,"
                    " starts_at, ends_at, recurrence, timezone, reason, created_at) VALUES (:t, 'SITE', :c, :s, :a,"
                    " :start, :end, 'NONE', 'UTC', 'works', :start)",
            t=site[2], c=site[1], s=site[0], a=True, start=datetime(2026, 3, 1, 9, tzinfo=UTC),
            end=datetime(2026, 3, 1, 11, tzinfo=UTC))
    noc("ingest", input=ndjson(alert(severity="CRITICAL", at="2026-03-01T10:00:00Z")))
    assert json.loads(noc("incident", "list", "--format", "json").stdout) == []


def test_two_processes_acknowledge_the_same_alert(noc, db_url):
    """Real processes, at once: exactly one acknowledgement and one audit row; the other is
    told `already acknowledged` and exits 0 (issue 16: an idempotent acknowledge)."""
    alert_id = one_alert(noc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env.update(NOC_CONFIG=os.devnull, NOC_DATABASE_URL=db_url)
    for _ in range(3):  # a few rounds, resetting in between, to give the race a chance
        command = [sys.executable, "-m", "nocctl", "alert", "ack", str(alert_id)]
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        codes = sorted(p.wait(timeout=60) for p in procs)
        assert codes == [0, 0], [p.stderr.read() for p in procs]
        said = sorted(p.stdout.read() for p in procs)
        assert said == [f"alert {alert_id}: ACKNOWLEDGED\n", f"alert {alert_id}: already acknowledged\n"]
        assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'ACKNOWLEDGE' AND target_id = :i",
                    i=str(alert_id)) == [(1,)]
        subprocess.run([sys.executable, "-m", "nocctl", "alert", "resolve", str(alert_id)], env=env, check=True,
                       capture_output=True)
        assert noc("ingest", input=ndjson(alert(at="2026-03-01T12:00:00Z", entity=f"r{_}"))).exit_code == 0
        ((alert_id,),) = rows(db_url, "SELECT id FROM alert WHERE entity_id = :e", e=f"r{_}")


def test_incident_list_follows_preferences(noc):
    for title, severity, client in (("a", "HIGH", "ACME"), ("b", "CRITICAL", "ACME"), ("c", "HIGH", "GLOBEX")):
        assert noc("incident", "create", "--title", title, "--severity", severity, "--client", client).exit_code == 0
    assert noc("prefs", "set", "client", "ACME").exit_code == 0
    assert noc("prefs", "set", "severity", "HIGH").exit_code == 0
    assert noc("prefs", "set", "format", "json").exit_code == 0
    assert noc("prefs", "set", "status", "new").exit_code == 0  # alert statuses: not applied to incidents
    listed = noc("incident", "list")
    assert [i["title"] for i in json.loads(listed.stdout)] == ["a"]
    assert "filtered by your preferences" in listed.stderr
    explicit = json.loads(noc("incident", "list", "--client", "GLOBEX").stdout)
    assert [i["title"] for i in explicit] == ["c"]
    every = json.loads(noc("incident", "list", "--no-prefs", "--format", "json").stdout)
    assert sorted(i["title"] for i in every) == ["a", "b", "c"]
    assert noc("incident", "list", "--no-prefs").stdout.startswith("  id")  # table without the preference
