"""`alert snooze` / `alert unsnooze` (DESIGN §3 "Snooze and notes", issue 16): a snoozed
alert is out of the default `alert list` and the escalation pass until its end, and
comes back by itself at the right `--now`; unsnooze wakes it; a CRITICAL occurrence wakes
it early; snoozing is audited, needs noc:ack_alerts, and a RESOLVED alert refuses it."""
from __future__ import annotations

import json

import pytest

from ingest_helpers import ORG, alert, ndjson, rows


def at(clock: str) -> dict:
    return {"NOC_NOW": f"2026-03-01T{clock}Z"}


@pytest.fixture
def noc(admin_cli):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def critical(noc) -> int:
    """A CRITICAL alert first seen at 10:00: the built-in policy escalates it after 15 minutes."""
    result = noc("ingest", input=ndjson(alert(severity="CRITICAL", at="2026-03-01T10:00:00Z")), env=at("10:00:00"))
    assert result.exit_code == 0, result.stderr
    return rows_ids(noc, "10:00:00")[0]


def rows_ids(noc, clock: str) -> list[int]:
    """The ids of the default `alert list` at that instant."""
    result = noc("alert", "list", "--format", "json", env=at(clock))
    assert result.exit_code == 0, result.stderr
    return [a["id"] for a in json.loads(result.stdout)]


def escalated(noc, clock: str) -> list[int]:
    result = noc("escalate", "run", "--now", f"2026-03-01T{clock}Z", "--json")
    assert result.exit_code == 0, result.stderr
    return [e["alert_id"] for e in json.loads(result.stdout)]


def audits(db_url, action: str) -> list[tuple]:
    return rows(db_url, "SELECT target_id FROM audit_log WHERE action = :a ORDER BY id", a=action)


def test_a_snoozed_alert_leaves_the_list_and_the_pass_and_returns_at_its_end(noc, db_url, critical):
    result = noc("alert", "snooze", str(critical), "--for", "1h", env=at("10:05:00"))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"alert {critical}: snoozed until 2026-03-01T11:05:00Z (NEW)\n", "")
    assert audits(db_url, "SNOOZE") == [(str(critical),)]
    assert rows_ids(noc, "10:30:00") == []
    assert escalated(noc, "10:30:00") == []  # due at 10:15, but snoozed
    assert rows(db_url, "SELECT status, escalation_level FROM alert") == [("NEW", 0)]
    assert rows_ids(noc, "11:04:59") == []
    assert escalated(noc, "11:04:59") == []
    # The end passes: back in the list and escalated by the next pass, nothing written meanwhile.
    assert rows_ids(noc, "11:05:00") == [critical]
    assert escalated(noc, "11:05:00") == [critical]
    assert rows(db_url, "SELECT status, escalation_level FROM alert") == [("ESCALATED", 1)]
    shown = json.loads(noc("alert", "show", str(critical), "--format", "json", env=at("11:10:00")).stdout)
    events = [(e["at"], e["event"]) for e in shown["timeline"]]
    assert ("2026-03-01T10:05:00Z", "snoozed") in events and ("2026-03-01T11:05:00Z", "snooze_ended") in events
    assert shown["snoozed"] is False and shown["snoozed_until"] == "2026-03-01T11:05:00Z"


def test_snooze_until_a_time_and_unsnooze(noc, db_url, critical):
    assert noc("alert", "snooze", str(critical), "--until", "2026-03-01T12:00:00Z", "--note", "vendor on site",
               env=at("10:05:00")).exit_code == 0
    assert rows_ids(noc, "10:20:00") == []
    again = noc("alert", "snooze", str(critical), "--until", "2026-03-01T12:00:00Z", env=at("10:06:00"))
    assert (again.exit_code, again.stdout) == (0, f"alert {critical}: already snoozed until 2026-03-01T12:00:00Z\n")
    woken = noc("alert", "unsnooze", str(critical), env=at("10:20:00"))
    assert (woken.exit_code, woken.stdout) == (0, f"alert {critical}: unsnoozed (NEW)\n")
    assert rows_ids(noc, "10:20:00") == [critical]
    assert escalated(noc, "10:20:00") == [critical]
    idle = noc("alert", "unsnooze", str(critical), env=at("10:21:00"))
    assert (idle.exit_code, idle.stdout) == (0, f"alert {critical}: not snoozed\n")
    assert audits(db_url, "SNOOZE") == [(str(critical),)] and audits(db_url, "UNSNOOZE") == [(str(critical),)]
    shown = json.loads(noc("alert", "show", str(critical), "--format", "json", env=at("10:30:00")).stdout)
    snoozed = next(e for e in shown["timeline"] if e["event"] == "snoozed")
    assert snoozed["details"]["note"] == "vendor on site"
    assert [e["event"] for e in shown["timeline"]].count("unsnoozed") == 1


def test_snoozing_a_resolved_alert_is_refused_with_4(noc, db_url, critical):
    assert noc("alert", "resolve", str(critical)).exit_code == 0
    result = noc("alert", "snooze", str(critical), "--for", "2h")
    assert result.exit_code == 4 and f"alert {critical} is RESOLVED: cannot snooze it" in result.stderr
    assert rows(db_url, "SELECT snoozed_until FROM alert") == [(None,)]
    assert noc("alert", "unsnooze", str(critical)).exit_code == 4
    assert audits(db_url, "SNOOZE") == []


def test_snooze_needs_ack_alerts_and_a_time(noc, db_url, critical):
    assert noc("user", "add", "viewer").exit_code == 0
    assert noc("user", "grant", "viewer", "noc:view_client", "--client", "ACME").exit_code == 0
    refused = noc("--as", "viewer", "alert", "snooze", str(critical), "--for", "1h")
    assert refused.exit_code == 77 and "noc:ack_alerts" in refused.stderr
    assert noc("alert", "snooze", str(critical)).exit_code == 2
    assert noc("alert", "snooze", str(critical), "--for", "1h", "--until", "+2h").exit_code == 2
    past = noc("alert", "snooze", str(critical), "--until", "2026-03-01T09:00:00Z", env=at("10:00:00"))
    assert past.exit_code == 65 and "not after now" in past.stderr
    assert rows(db_url, "SELECT snoozed_until FROM alert") == [(None,)]


def test_a_critical_occurrence_wakes_a_snoozed_alert_early(noc, db_url):
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:00:00Z")), env=at("10:00:00"))  # HIGH
    (ident,) = rows_ids(noc, "10:00:00")
    assert noc("alert", "snooze", str(ident), "--for", "2h", env=at("10:01:00")).exit_code == 0
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:10:00Z")), env=at("10:10:00"))  # HIGH again: still snoozed
    assert rows_ids(noc, "10:10:00") == []
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:20:00Z", severity="CRITICAL")), env=at("10:20:00"))
    assert rows_ids(noc, "10:20:00") == [ident]
    assert rows(db_url, "SELECT snoozed_until, duplicate_count FROM alert") == [(None, 2)]
    assert audits(db_url, "UNSNOOZE") == [(str(ident),)]
