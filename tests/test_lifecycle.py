"""Ingest's acknowledge and resolve events follow the same rules as `alert ack` and `alert
resolve` (nocctl.lifecycle): from which statuses each applies, and the fields it sets, also
when both arrive in one batch. The allowed statuses are spelled out here, independently of
lifecycle, as tests/test_workflow.py does for the commands."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from ingest_helpers import ORG, alert, ndjson, rows

STATUSES = ("NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED", "SUPPRESSED", "RESOLVED")
ALLOWED = {
    "acknowledge": {"NEW", "ESCALATED", "ASSIGNED"},
    "resolve": {"NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED", "SUPPRESSED"},
}
TARGET = {"acknowledge": "ACKNOWLEDGED", "resolve": "RESOLVED"}
WHERE = {"alert_type": "DEVICE_OFFLINE", "site": "ACME-BLR-WF", "entity_type": "device", "entity_id": "cam-01"}


@pytest.fixture
def noc(admin_cli):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def ingest(noc, *records: dict) -> dict:
    result = noc("ingest", "--json", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("status", STATUSES)
def test_an_ingest_event_moves_the_alert_from_the_statuses_the_command_does(noc, engine, db_url, status, action):
    ingest(noc, alert(at="2026-03-01T10:00:00Z"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alert SET status = :s"), {"s": status})
    done = ingest(noc, {"action": action, **WHERE, "occurred_at": "2026-03-01T10:05:00Z"})
    moved = status in ALLOWED[action]
    counted = "acknowledged" if action == "acknowledge" else "resolved"
    assert (done[counted], done["unmatched"]) == ((1, 0) if moved else (0, 1))
    assert rows(db_url, "SELECT status FROM alert") == [(TARGET[action] if moved else status,)]
    audits = rows(db_url, "SELECT count(*) FROM audit_log WHERE action = :a", a=action.upper())
    assert audits == [(1 if moved else 0,)]


def test_acknowledge_then_resolve_in_one_batch_sets_the_fields_of_both(noc, db_url):
    done = ingest(noc, alert(at="2026-03-01T10:00:00Z"),
                  {"action": "acknowledge", **WHERE, "occurred_at": "2026-03-01T10:05:00Z"},
                  {"action": "acknowledge", **WHERE, "occurred_at": "2026-03-01T10:06:00Z"},  # already acknowledged
                  {"action": "resolve", **WHERE, "occurred_at": "2026-03-01T10:10:00Z", "source": "nagios"})
    assert (done["created"], done["acknowledged"], done["resolved"], done["unmatched"]) == (1, 1, 1, 1)
    ((status, acknowledged_at, time_to_ack, resolved_at, time_to_resolve, note),) = rows(
        db_url, "SELECT status, acknowledged_at, time_to_ack, resolved_at, time_to_resolve, resolution_note FROM alert")
    assert (status, time_to_ack, time_to_resolve, note) == ("RESOLVED", 300, 600, "resolved by nagios event")
    assert str(acknowledged_at).startswith("2026-03-01 10:05:00") and str(resolved_at).startswith("2026-03-01 10:10:00")


def test_a_resolve_keeps_an_earlier_acknowledgement(noc, db_url):
    ingest(noc, alert(at="2026-03-01T10:00:00Z"),
           {"action": "acknowledge", **WHERE, "occurred_at": "2026-03-01T10:02:00Z"})
    ingest(noc, {"action": "resolve", **WHERE, "occurred_at": "2026-03-01T10:04:00Z"})
    ((status, acknowledged_at, time_to_ack, time_to_resolve, note),) = rows(
        db_url, "SELECT status, acknowledged_at, time_to_ack, time_to_resolve, resolution_note FROM alert")
    assert (status, time_to_ack, time_to_resolve, note) == ("RESOLVED", 120, 240, "resolved by ingest event")
    assert str(acknowledged_at).startswith("2026-03-01 10:02:00")
