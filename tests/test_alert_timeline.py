"""`alert show`'s timeline, `alert note`, and moves to where an alert is already
(DESIGN §3 "Snooze and notes", issue 16): what happened to an alert, in order, with who,
when and the note, in the table and as a JSON `timeline`; a note is audited; an
idempotent acknowledge exits 0 and writes nothing; a refused move stays 4; an alert the
person cannot see is not found."""
from __future__ import annotations

import json

import pytest

from conftest import LOGIN
from ingest_helpers import ORG, alert, ndjson, rows


@pytest.fixture
def noc(admin_cli):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def at(clock: str) -> dict:
    return {"NOC_NOW": f"2026-03-01T{clock}Z"}


def one_alert(noc) -> int:
    result = noc("ingest", input=ndjson(alert(at="2026-03-01T10:00:00Z"),
                                        alert(at="2026-03-01T10:02:00Z", severity="CRITICAL")), env=at("10:03:00"))
    assert result.exit_code == 0, result.stderr
    return rows_one(noc)


def rows_one(noc) -> int:
    (found,) = json.loads(noc("alert", "list", "--format", "json").stdout)
    return found["id"]


def audit_count(db_url) -> int:
    return rows(db_url, "SELECT count(*) FROM audit_log")[0][0]


def worked(noc, alert_id: int) -> None:
    """Acknowledged with a note, noted, escalated, resolved — each at its own minute."""
    ident = str(alert_id)
    assert noc("alert", "ack", ident, "--note", "on it", env=at("10:04:30")).exit_code == 0
    assert noc("alert", "note", ident, "camera\x07 rebooting", env=at("10:05:00")).exit_code == 0
    assert noc("alert", "escalate", ident, "--to", "noc.lead", env=at("10:06:00")).exit_code == 0
    assert noc("alert", "resolve", ident, "--note", "camera rebooted", env=at("11:00:00")).exit_code == 0


def test_the_timeline_lists_what_happened_in_order_with_who_and_the_note(noc):
    alert_id = one_alert(noc)
    worked(noc, alert_id)
    shown = json.loads(noc("alert", "show", str(alert_id), "--format", "json", env=at("12:00:00")).stdout)
    timeline = shown["timeline"]
    assert [(e["at"], e["event"], e["actor"]) for e in timeline] == [
        ("2026-03-01T10:00:00Z", "first_seen", None),
        ("2026-03-01T10:02:00Z", "duplicates", None),
        ("2026-03-01T10:03:00Z", "incident", None),  # the CRITICAL occurrence opened one (ingested at 10:03)
        ("2026-03-01T10:04:30Z", "acknowledged", LOGIN),
        ("2026-03-01T10:05:00Z", "note", LOGIN),
        ("2026-03-01T10:06:00Z", "escalated", LOGIN),
        ("2026-03-01T11:00:00Z", "resolved", LOGIN),
    ]
    assert all(set(e) == {"at", "event", "actor", "details"} for e in timeline)
    details = [e["details"] for e in timeline]
    assert details[1] == {"count": 1, "last_seen_at": "2026-03-01T10:02:00Z", "severity_now": "CRITICAL"}
    (incident,) = json.loads(noc("incident", "list", "--format", "json").stdout)
    assert details[2] == {"incident_id": incident["id"], "title": incident["title"], "status": incident["status"]}
    assert details[3]["note"] == "on it" and details[3]["to"] == "ACKNOWLEDGED"
    assert details[4] == {"note": "camera\x07 rebooting"}  # JSON keeps the text exact
    assert details[5]["escalated_to"] == "noc.lead"
    assert details[6]["note"] == "camera rebooted" and details[6]["to"] == "RESOLVED"


def test_the_timeline_table_is_escaped_and_ordered(noc):
    alert_id = one_alert(noc)
    worked(noc, alert_id)
    result = noc("alert", "show", str(alert_id), env=at("12:00:00"))
    assert result.exit_code == 0, result.stderr
    assert "\x07" not in result.stdout  # the renderer escapes the note
    table = result.stdout[result.stdout.index("timeline (7 events)"):]
    names = ("first_seen", "duplicates", "incident", "acknowledged", "note", "escalated", "resolved")
    events = [next(word for word in line.split() if word in names) for line in table.splitlines()[3:] if line]
    assert events == list(names)
    assert "note=camera\\x07 rebooting" in table or "note=camera\\a rebooting" in table


def test_a_note_is_audited_needs_ack_alerts_and_changes_nothing_else(noc, db_url):
    alert_id = one_alert(noc)
    before = rows(db_url, "SELECT status, acknowledged_at FROM alert")
    result = noc("alert", "note", str(alert_id), "checked the NVR", env=at("10:10:00"))
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"alert {alert_id}: note added\n", "")
    ((action, target, details),) = rows(db_url, "SELECT action, target_id, details FROM audit_log"
                                                " WHERE action = 'NOTE'")
    details = json.loads(details) if isinstance(details, str) else details
    assert (action, target, details) == ("NOTE", str(alert_id), {"note": "checked the NVR"})
    assert rows(db_url, "SELECT status, acknowledged_at FROM alert") == before
    assert noc("user", "add", "viewer").exit_code == 0
    assert noc("user", "grant", "viewer", "noc:view_client", "--client", "ACME").exit_code == 0
    refused = noc("--as", "viewer", "alert", "note", str(alert_id), "mine")
    assert refused.exit_code == 77 and "noc:ack_alerts" in refused.stderr
    assert noc("alert", "note", "999999", "x").exit_code == 3


def test_acknowledging_again_says_already_and_writes_nothing(noc, db_url):
    alert_id = one_alert(noc)
    assert noc("alert", "ack", str(alert_id), env=at("10:04:00")).exit_code == 0
    before, audits = rows(db_url, "SELECT * FROM alert"), audit_count(db_url)
    again = noc("alert", "ack", str(alert_id), "--note", "me too", env=at("10:09:00"))
    assert (again.exit_code, again.stdout, again.stderr) == (0, f"alert {alert_id}: already acknowledged\n", "")
    assert rows(db_url, "SELECT * FROM alert") == before  # acknowledged_at and time_to_ack kept
    assert audit_count(db_url) == audits
    as_json = noc("alert", "ack", str(alert_id), "--format", "json")
    assert json.loads(as_json.stdout) == [{"target": str(alert_id), "id": alert_id, "ok": True,
                                           "status": "ACKNOWLEDGED", "error": None,
                                           "message": "already acknowledged", "unchanged": True}]


def test_resolving_and_assigning_again_say_already(noc, db_url):
    alert_id = one_alert(noc)
    assert noc("alert", "assign", str(alert_id), "noc.lead").exit_code == 0
    audits = audit_count(db_url)
    same = noc("alert", "assign", str(alert_id), "noc.lead")
    assert (same.exit_code, same.stdout) == (0, f"alert {alert_id}: already assigned\n")
    assert audit_count(db_url) == audits
    other = noc("alert", "assign", str(alert_id), "vikram.nair")  # someone else: a reassignment
    assert (other.exit_code, other.stdout) == (0, f"alert {alert_id}: ASSIGNED\n")
    assert audit_count(db_url) == audits + 1
    assert noc("alert", "resolve", str(alert_id)).exit_code == 0
    again = noc("alert", "resolve", str(alert_id))
    assert (again.exit_code, again.stdout) == (0, f"alert {alert_id}: already resolved\n")
    assert audit_count(db_url) == audits + 2


def test_a_move_not_allowed_stays_4_and_each_id_is_reported(noc, db_url):
    noc("ingest", input=ndjson(alert(entity="a"), alert(entity="b")))
    a, b = sorted(x["id"] for x in json.loads(noc("alert", "list", "--format", "json").stdout))
    noc("alert", "resolve", str(a))
    audits = audit_count(db_url)
    result = noc("alert", "ack", str(a), str(b))
    assert result.exit_code == 4
    assert result.stdout == f"alert {b}: ACKNOWLEDGED\n"
    assert f"alert {a} is RESOLVED: cannot acknowledge it" in result.stderr
    assert audit_count(db_url) == audits + 1
    mixed = noc("alert", "ack", str(b), "999999")
    assert mixed.exit_code == 3 and mixed.stdout == f"alert {b}: already acknowledged\n"


def test_an_invisible_alert_is_not_found_everywhere(noc, db_url):
    noc("ingest", input=ndjson(alert(site="GLOBEX-PNQ", entity="pnq")))
    ident = str(rows(db_url, "SELECT id FROM alert")[0][0])
    assert noc("user", "add", "acme").exit_code == 0
    for capability in ("noc:view_client", "noc:ack_alerts"):
        assert noc("user", "grant", "acme", capability, "--client", "ACME").exit_code == 0
    audits = audit_count(db_url)
    for command in (("show", ident), ("note", ident, "x"), ("ack", ident), ("snooze", ident, "--for", "1h"),
                    ("unsnooze", ident)):
        result = noc("--as", "acme", "alert", *command)
        assert result.exit_code == 3, (command, result)
        assert f"no alert {ident}" in result.stderr and "GLOBEX" not in result.stderr + result.stdout
    assert audit_count(db_url) == audits
