"""`nocctl ingest` end to end: de-duplication, replay, correlation, maintenance, events,
rejects and the exit codes (DESIGN §3, §4)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest_helpers import ORG, alert, ndjson, rows, state
from nocctl.db import make_engine
from nocctl.models import BusinessUnit, MaintenanceWindow


@pytest.fixture
def noc(admin_cli):
    """An initialised database with the example organisation."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def summary(result) -> dict:
    return json.loads(result.stdout)


def test_duplicates_merge_into_one_alert_with_counts(noc, db_url):
    data = ndjson(alert(at="2026-03-01T10:00:00Z"), alert(at="2026-03-01T10:05:00Z"),
                  alert(at="2026-03-01T10:02:00Z"), alert(entity="cam-02"))
    result = noc("ingest", "--json", input=data)
    assert result.exit_code == 0, result.stderr
    assert summary(result) == {"received": 4, "created": 2, "deduplicated": 2, "suppressed": 0, "resolved": 0,
                               "acknowledged": 0, "replayed": 0, "unmatched": 0, "rejected": 0}
    found = rows(db_url, "SELECT entity_id, duplicate_count, first_seen_at, last_seen_at, status FROM alert"
                         " ORDER BY entity_id")
    assert [(r[0], r[1], r[4]) for r in found] == [("cam-01", 2, "NEW"), ("cam-02", 0, "NEW")]
    # first_seen is the earliest occurrence even when it arrived later; last_seen the latest
    assert "10:00:00" in str(found[0][2]) and "10:05:00" in str(found[0][3])
    assert "ingest" in result.stderr  # the one-line summary


def test_out_of_order_duplicate_moves_first_seen_earlier_across_runs(noc, db_url):
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:10:00Z")))
    noc("ingest", input=ndjson(alert(at="2026-03-01T09:50:00Z")))
    ((first, last, count),) = rows(db_url, "SELECT first_seen_at, last_seen_at, duplicate_count FROM alert")
    assert "09:50:00" in str(first) and "10:10:00" in str(last) and count == 1


def test_severity_and_message_follow_the_latest_occurrence_not_the_latest_to_arrive(noc, db_url):
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:00:00Z", severity="LOW", message="first")))
    # A later occurrence re-grades the alert and brings its escalation look forward to first seen.
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:10:00Z", severity="CRITICAL", message="worse")))
    # An older one arriving late, in a later run and inside one batch, changes neither.
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:05:00Z", severity="INFO", message="stale")))
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:20:00Z", severity="MEDIUM", message="latest"),
                               alert(at="2026-03-01T10:15:00Z", severity="HIGH", message="late")))
    ((severity, message, count, first, due),) = rows(
        db_url, "SELECT severity, message, duplicate_count, first_seen_at, next_escalation_at FROM alert")
    assert (severity, message, count) == ("MEDIUM", "latest", 4)
    assert str(due) == str(first)
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:19:00Z", severity="CRITICAL", message="older")))
    assert rows(db_url, "SELECT severity, message FROM alert") == [("MEDIUM", "latest")]


def test_dedup_key_defaults_to_md5_of_type_site_entity(noc, db_url):
    import hashlib

    noc("ingest", input=ndjson(alert()))
    expected = hashlib.md5(b"DEVICE_OFFLINE|ACME-BLR-WF|device|cam-01").hexdigest()
    assert rows(db_url, "SELECT dedup_key FROM alert") == [(expected,)]


@pytest.mark.parametrize("record, options, unit", [
    ({"site": "ACME-BLR-WF", "client": "ACME"}, [], "ACME-BLR-WF"),  # the site, when both are named
    ({"client": "ACME"}, ["--site", "ACME-MYS"], "ACME"),  # the record's client over --site
    ({}, ["--site", "ACME-MYS"], "ACME-MYS"),
    ({}, ["--client", "ACME"], "ACME"),
    ({"site": "ACME-CHN"}, ["--client", "ACME"], "ACME-CHN"),
])
def test_the_default_dedup_key_names_the_unit_the_alert_is_placed_on(noc, db_url, record, options, unit):
    """The reader process computes the key from the codes; the writer places the alert: the two agree."""
    import hashlib

    body = {k: v for k, v in alert().items() if k not in ("site", "client")} | record
    assert noc("ingest", *options, input=ndjson(body)).exit_code == 0
    expected = hashlib.md5(f"DEVICE_OFFLINE|{unit}|device|cam-01".encode()).hexdigest()
    placed = "site_id" if unit != "ACME" else "client_id"
    assert rows(db_url, f"SELECT a.dedup_key, u.code FROM alert a JOIN business_unit u ON u.id = a.{placed}"
                        " WHERE a.site_id IS NOT NULL OR u.kind = 'CLIENT'") == [(expected, unit)]


def test_own_dedup_key_wins_and_resolved_key_opens_a_new_alert(noc, db_url):
    first = ndjson(alert(dedup_key="pump-7", at="2026-03-01T10:00:00Z"),
                   {"action": "resolve", "dedup_key": "pump-7", "occurred_at": "2026-03-01T10:30:00Z"})
    result = noc("ingest", "--json", input=first)
    assert summary(result)["resolved"] == 1
    again = noc("ingest", "--json", input=ndjson(alert(dedup_key="pump-7", at="2026-03-01T11:00:00Z")))
    assert summary(again)["created"] == 1
    found = rows(db_url, "SELECT status, time_to_resolve FROM alert WHERE dedup_key = 'pump-7' ORDER BY id")
    assert found == [("RESOLVED", 1800), ("NEW", None)]


def test_replaying_the_same_file_changes_nothing(noc, db_url, tmp_path):
    data = tmp_path / "alerts.ndjson"
    data.write_text(ndjson(
        alert(at="2026-03-01T10:00:00Z"), alert(at="2026-03-01T10:01:00Z"),
        alert(alert_type="GEOFENCE_BREACH", entity="guard-3", at="2026-03-01T10:02:00Z"),
        {"action": "acknowledge", "alert_type": "GEOFENCE_BREACH", "site": "ACME-BLR-WF", "entity_type": "device",
         "entity_id": "guard-3", "occurred_at": "2026-03-01T10:04:00Z"},
        {"action": "resolve", "alert_type": "DEVICE_OFFLINE", "site": "ACME-BLR-WF", "entity_type": "device",
         "entity_id": "cam-01", "occurred_at": "2026-03-01T10:09:00Z"},
    ))
    assert noc("ingest", str(data)).exit_code == 0
    before = state(db_url)
    audit_before = rows(db_url, "SELECT count(*) FROM audit_log")
    result = noc("ingest", str(data), "--json")
    assert result.exit_code == 0
    assert summary(result)["replayed"] == 5 and summary(result)["received"] == 5
    assert state(db_url) == before
    assert rows(db_url, "SELECT count(*) FROM audit_log") == audit_before


def test_records_without_time_or_event_id_always_count(noc, db_url):
    record = {k: v for k, v in alert().items() if k != "occurred_at"}
    noc("ingest", input=ndjson(record))
    result = noc("ingest", "--json", input=ndjson(record))
    assert summary(result)["deduplicated"] == 1 and summary(result)["replayed"] == 0
    assert rows(db_url, "SELECT duplicate_count FROM alert") == [(1,)]


def test_event_id_makes_replay_detectable(noc, db_url):
    record = {k: v for k, v in alert().items() if k != "occurred_at"} | {"event_id": "evt-1"}
    noc("ingest", input=ndjson(record))
    result = noc("ingest", "--json", input=ndjson(record))
    assert summary(result)["replayed"] == 1
    assert rows(db_url, "SELECT duplicate_count FROM alert") == [(0,)]


def test_correlation_groups_alerts_of_a_site_within_the_window(noc, db_url):
    noc("ingest", input=ndjson(
        alert(entity="cam-01", at="2026-03-01T10:00:00Z"),
        alert(alert_type="GEOFENCE_BREACH", entity="g-1", at="2026-03-01T10:04:00Z"),
        alert(entity="cam-09", at="2026-03-01T10:45:00Z"),                      # outside the 10 minutes
        alert(entity="cam-05", site="ACME-MYS", at="2026-03-01T10:01:00Z"),      # another site
    ))
    found = {r[0]: r[1:] for r in rows(db_url, "SELECT entity_id, id, correlation_id, parent_alert_id FROM alert")}
    first, second, later, other = found["cam-01"], found["g-1"], found["cam-09"], found["cam-05"]
    assert second[1] == first[1] and second[2] == first[0] and first[2] is None
    assert later[1] != first[1] and later[2] is None
    assert other[1] not in (first[1], later[1])


def test_correlation_joins_an_existing_group_from_an_earlier_run(noc, db_url):
    noc("ingest", input=ndjson(alert(entity="cam-01", at="2026-03-01T10:00:00Z")))
    noc("ingest", input=ndjson(alert(entity="cam-02", at="2026-03-01T10:06:00Z")))
    (a, b) = rows(db_url, "SELECT id, correlation_id, parent_alert_id FROM alert ORDER BY id")
    assert b[1] == a[1] and b[2] == a[0]


def _window(db_url, site_code: str, start: str, end: str, types=None) -> int:
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        site = session.scalar(select(BusinessUnit).where(BusinessUnit.code == site_code))
        window = MaintenanceWindow(
            tenant_id=site.tenant_id, scope_kind="SITE", client_id=site.client_id, site_id=site.id,
            suppress_all=types is None, alert_types=types,
            starts_at=datetime.fromisoformat(start), ends_at=datetime.fromisoformat(end),
            reason="generator swap", created_at=datetime.now(UTC))
        session.add(window)
        session.flush()
        window_id = window.id
    engine.dispose()
    return window_id


def test_maintenance_suppresses_keeps_and_surfaces_alerts(noc, db_url):
    window_id = _window(db_url, "ACME-BLR-WF", "2026-03-01T09:00:00+00:00", "2026-03-01T11:00:00+00:00")
    result = noc("ingest", "--json", input=ndjson(alert(at="2026-03-01T10:00:00Z"), alert(at="2026-03-01T10:30:00Z"),
                                                  alert(site="ACME-MYS", at="2026-03-01T10:00:00Z")))
    assert summary(result)["suppressed"] == 1 and summary(result)["created"] == 1
    assert summary(result)["deduplicated"] == 1
    assert rows(db_url, "SELECT status, maintenance_window_id FROM alert WHERE site_id ="
                        " (SELECT id FROM business_unit WHERE code = 'ACME-BLR-WF')") == [("SUPPRESSED", window_id)]
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'SUPPRESS'") == [(1,)]
    # Still firing after the window: the NOC sees it.
    noc("ingest", input=ndjson(alert(at="2026-03-01T11:30:00Z")))
    assert rows(db_url, "SELECT status FROM alert WHERE entity_id = 'cam-01' AND site_id ="
                        " (SELECT id FROM business_unit WHERE code = 'ACME-BLR-WF')") == [("NEW",)]
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'SUPPRESS'") == [(1,)]


def test_maintenance_by_type_and_resolve_of_a_suppressed_alert(noc, db_url):
    _window(db_url, "ACME-BLR-WF", "2026-03-01T09:00:00+00:00", "2026-03-01T11:00:00+00:00", types=["DEVICE_OFFLINE"])
    result = noc("ingest", "--json", input=ndjson(
        alert(at="2026-03-01T10:00:00Z"),
        alert(alert_type="GEOFENCE_BREACH", entity="g-1", at="2026-03-01T10:00:00Z"),
        {"action": "resolve", "alert_type": "DEVICE_OFFLINE", "site": "ACME-BLR-WF", "entity_type": "device",
         "entity_id": "cam-01", "occurred_at": "2026-03-01T10:20:00Z"}))
    assert summary(result) | {} == {"received": 3, "created": 1, "deduplicated": 0, "suppressed": 1, "resolved": 1,
                                    "acknowledged": 0, "replayed": 0, "unmatched": 0, "rejected": 0}
    assert rows(db_url, "SELECT alert_type, status FROM alert ORDER BY alert_type") == [
        ("DEVICE_OFFLINE", "RESOLVED"), ("GEOFENCE_BREACH", "NEW")]


def test_acknowledge_event_sets_time_to_ack(noc, db_url):
    result = noc("ingest", "--json", input=ndjson(
        alert(at="2026-03-01T10:00:00Z"),
        {"action": "acknowledge", "alert_type": "DEVICE_OFFLINE", "site": "ACME-BLR-WF", "entity_type": "device",
         "entity_id": "cam-01", "occurred_at": "2026-03-01T10:07:30Z"}))
    assert summary(result)["acknowledged"] == 1
    assert rows(db_url, "SELECT status, time_to_ack FROM alert") == [("ACKNOWLEDGED", 450)]
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'ACKNOWLEDGE'") == [(1,)]


def test_resolve_of_unknown_key_is_reported_not_counted(noc):
    result = noc("ingest", "--json", input=ndjson({"action": "resolve", "dedup_key": "nothing-here",
                                                   "occurred_at": "2026-03-01T10:00:00Z"}))
    assert result.exit_code == 0
    assert summary(result)["resolved"] == 0 and "matched no alert" in result.stderr


BAD_LINES = [
    ("not json at all", "invalid JSON"),
    ('{"alert_type": "X", "severity": "HIGH", "message": "m", "site": "ACME-BLR-WF", "severty": 1}', "unknown field"),
    ('{"alert_type": "DEVICE_OFFLINE", "severity": 5, "message": "m", "site": "ACME-BLR-WF"}', "severity"),
    ('{"alert_type": "DEVICE_OFFLINE", "message": "m", "site": "ACME-BLR-WF"}', "severity"),
    (('{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "m", "site": "ACME-BLR-WF",'
      ' "occurred_at": "2026-03-01T10:00:00"}'), "no UTC offset"),
    ('{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "m", "site": "NO-SUCH-SITE"}', "unknown site"),
    ('{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "m"}', "no client or site"),
    ('{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "a\\u0000b", "site": "ACME-BLR-WF"}', "NUL"),
    ("\x00\xff\xfe binary", "UTF-8"),  # written as raw bytes below
]


def test_bad_records_are_reported_kept_and_never_stop_good_ones(noc, db_url, tmp_path):
    good = [json.dumps(alert(entity=f"cam-{i}")) for i in range(3)]
    lines = [good[0], *[line for line, _ in BAD_LINES], good[1], good[2]]
    data = tmp_path / "mixed.ndjson"
    data.write_bytes(("\n".join(lines) + "\n").encode().replace(b"\x00\xc3\xbf\xc3\xbe", b"\x00\xff\xfe"))
    rejects = tmp_path / "rejects.ndjson"
    result = noc("ingest", str(data), "--rejects", str(rejects), "--json")
    assert result.exit_code == 65
    counts = summary(result)
    assert counts["created"] == 3 and counts["rejected"] == len(BAD_LINES)
    assert rows(db_url, "SELECT count(*) FROM alert") == [(3,)]
    err_lines = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert len(err_lines) == len(BAD_LINES)
    for number, (_, reason) in enumerate(BAD_LINES, start=2):
        assert any(f"{data}:{number}: rejected:" in line and reason in line for line in err_lines), (number, reason)
    kept = rejects.read_text(encoding="utf-8", errors="replace").splitlines()
    assert len(kept) == len(BAD_LINES) and kept[0] == "not json at all"
    assert rows(db_url, "SELECT count(*) FROM ingest_reject WHERE status = 'PENDING'") == [(len(BAD_LINES),)]


def test_rejects_retry_after_the_org_is_fixed(noc, db_url):
    result = noc("ingest", input=ndjson(alert(site="ACME-PUNE"), alert(site="ACME-BLR-WF", entity="x")))
    assert result.exit_code == 65
    listed = noc("ingest", "rejects", "list", "--format", "json")
    (reject,) = json.loads(listed.stdout)
    assert reject["reason"] == "unknown site 'ACME-PUNE'" and reject["line"] == 1
    still = noc("ingest", "rejects", "retry")
    assert still.exit_code == 65 and "still rejected" in still.stderr
    assert noc("org", "site", "add", "ACME-PUNE", "--client", "ACME", "--name", "Pune").exit_code == 0
    done = noc("ingest", "rejects", "retry", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout) == {"retried": 1, "accepted": 1, "rejected": 0}
    assert rows(db_url, "SELECT count(*) FROM alert") == [(2,)]
    assert json.loads(noc("ingest", "rejects", "list", "--format", "json").stdout) == []
    assert rows(db_url, "SELECT status, attempts FROM ingest_reject") == [("RETRIED", 3)]


def test_the_same_bad_record_twice_is_kept_once(noc, db_url):
    data = ndjson(alert(site="NOPE"))
    noc("ingest", input=data)
    noc("ingest", input=data)
    assert rows(db_url, "SELECT count(*) FROM ingest_reject") == [(1,)]


def test_strict_commits_nothing_when_any_record_is_bad(noc, db_url):
    result = noc("ingest", "--strict", "--json", input=ndjson(alert(), alert(site="NOPE")))
    assert result.exit_code == 65 and "nothing was committed" in result.stderr
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM ingest_reject") == [(0,)]
    ok = noc("ingest", "--strict", input=ndjson(alert()))
    assert ok.exit_code == 0 and rows(db_url, "SELECT count(*) FROM alert") == [(1,)]


def test_dry_run_reports_and_commits_nothing(noc, db_url):
    result = noc("ingest", "--dry-run", "--json", input=ndjson(alert(), alert(entity="b")))
    assert result.exit_code == 0 and summary(result)["created"] == 2
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM ingest_event") == [(0,)]


def test_defaults_from_client_and_site_options(noc, db_url):
    record = {k: v for k, v in alert().items() if k != "site"}
    assert noc("ingest", "--site", "ACME-MYS", input=ndjson(record)).exit_code == 0
    assert noc("ingest", "--client", "GLOBEX", input=ndjson(record | {"entity_id": "z"})).exit_code == 0
    found = rows(db_url, "SELECT u.code FROM alert a JOIN business_unit u ON u.id = coalesce(a.site_id, a.client_id)"
                         " ORDER BY a.id")
    assert found == [("ACME-MYS",), ("GLOBEX",)]


def test_site_of_another_client_is_rejected(noc):
    result = noc("ingest", input=ndjson(alert(site="ACME-MYS", client="GLOBEX")))
    assert result.exit_code == 65 and "does not belong to client" in result.stderr


def test_alertmanager_and_pagerduty_payloads_through_the_cli(noc, db_url):
    webhook = {"version": "4", "receiver": "noc", "status": "firing", "groupKey": "{}:{}", "alerts": [
        {"status": "firing", "labels": {"alertname": "HostDown", "severity": "critical", "site": "GLOBEX-PNQ",
                                        "instance": "10.0.0.7:9100"},
         "annotations": {"summary": "Host 10.0.0.7 down"}, "startsAt": "2026-03-01T10:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z"}]}
    pagerduty = {"routing_key": "r", "event_action": "trigger", "dedup_key": "pd-1",
                 "payload": {"summary": "Door forced", "source": "door-3", "severity": "error",
                             "timestamp": "2026-03-01T10:01:00Z", "class": "security anomaly",
                             "custom_details": {"site": "GLOBEX-PNQ"}}}
    result = noc("ingest", "--json", input=json.dumps(webhook) + "\n" + json.dumps(pagerduty) + "\n")
    assert result.exit_code == 0, result.stderr
    assert summary(result)["created"] == 2
    found = rows(db_url, "SELECT alert_type, severity, entity_id, source FROM alert ORDER BY alert_type")
    assert found == [("HOST_DOWN", "CRITICAL", "10.0.0.7:9100", "alertmanager"),
                     ("SECURITY_ANOMALY", "HIGH", "door-3", "pagerduty")]
    resolved = dict(webhook, status="resolved", alerts=[dict(webhook["alerts"][0], status="resolved",
                                                             endsAt="2026-03-01T10:20:00Z")])
    ack = {"routing_key": "r", "event_action": "acknowledge", "dedup_key": "pd-1"}
    result = noc("ingest", "--json", input=json.dumps(resolved) + "\n" + json.dumps(ack) + "\n")
    assert summary(result)["resolved"] == 1 and summary(result)["acknowledged"] == 1
    assert rows(db_url, "SELECT alert_type, status, time_to_resolve FROM alert ORDER BY alert_type") == [
        ("HOST_DOWN", "RESOLVED", 1200), ("SECURITY_ANOMALY", "ACKNOWLEDGED", None)]


def test_empty_input_is_fine(noc):
    result = noc("ingest", "--json", input="")
    assert result.exit_code == 0 and summary(result)["received"] == 0


def test_a_missing_file_is_exit_3(noc, tmp_path):
    result = noc("ingest", str(tmp_path / "nope.ndjson"))
    assert result.exit_code == 3 and "cannot open" in result.stderr


def test_ingest_needs_the_capability_and_its_scope(noc, db_url):
    noc("user", "add", "prom")
    denied = noc("--as", "prom", "ingest", input=ndjson(alert()))
    assert denied.exit_code == 77 and "noc:ingest" in denied.stderr
    noc("user", "grant", "prom", "noc:ingest", "--client", "GLOBEX")
    result = noc("--as", "prom", "ingest", "--json", input=ndjson(alert(), alert(site="GLOBEX-PNQ")))
    assert result.exit_code == 65 and summary(result)["created"] == 1
    # a site the sender neither sees nor may ingest for reads as one that does not exist
    assert "rejected: unknown site 'ACME-BLR-WF'" in result.stderr


def test_database_unavailable_is_exit_75(noc):
    result = noc("--db", "postgresql://nobody@127.0.0.1:1/none", "ingest", input=ndjson(alert()))
    assert result.exit_code == 75 and "retry" in result.stderr


def test_alert_list_and_show(noc, db_url):
    noc("ingest", input=ndjson(alert(at="2026-03-01T10:00:00Z"), alert(entity="g", alert_type="GEOFENCE_BREACH",
                                                                        at="2026-03-01T10:01:00Z"),
                               alert(site="GLOBEX-PNQ", entity="h", at="2026-03-01T10:02:00Z")))
    listed = json.loads(noc("alert", "list", "--format", "json").stdout)
    assert [a["entity_id"] for a in listed] == ["cam-01", "g", "h"]  # as severe: the longest waiting first
    for field in ("id", "alert_type", "severity", "status", "client", "site", "message", "entity_type", "entity_id",
                  "dedup_key", "duplicate_count", "first_seen_at", "last_seen_at", "correlation_id"):
        assert field in listed[0]
    by_client = json.loads(noc("alert", "list", "--client", "GLOBEX", "--format", "json").stdout)
    assert [a["site"] for a in by_client] == ["GLOBEX-PNQ"]
    typed = json.loads(noc("alert", "list", "--type", "geofence_breach", "--format", "json").stdout)
    assert [a["entity_id"] for a in typed] == ["g"]
    windowed = json.loads(noc("alert", "list", "--since", "2026-03-01T10:01:00Z", "--until", "2026-03-01T10:02:00Z",
                              "--format", "json").stdout)
    assert [a["entity_id"] for a in windowed] == ["g"]
    shown = json.loads(noc("alert", "show", str(listed[1]["id"]), "--format", "json").stdout)
    assert shown["entity_id"] == "g" and len(shown["correlation_group"]) == 2
    table = noc("alert", "show", str(listed[1]["id"]))
    assert "correlation group (2 alerts)" in table.stdout
    missing = noc("alert", "show", "999999")
    assert missing.exit_code == 3 and "no alert 999999" in missing.stderr


def test_alert_list_respects_visibility(noc):
    noc("ingest", input=ndjson(alert(), alert(site="GLOBEX-PNQ", entity="h")))
    noc("user", "add", "asha")
    noc("user", "grant", "asha", "noc:view_client", "--client", "GLOBEX")
    seen = json.loads(noc("--as", "asha", "alert", "list", "--format", "json").stdout)
    assert [a["site"] for a in seen] == ["GLOBEX-PNQ"]
    acme_id = json.loads(noc("alert", "list", "--client", "ACME", "--format", "json").stdout)[0]["id"]
    hidden = noc("--as", "asha", "alert", "show", str(acme_id))
    assert hidden.exit_code == 3


def test_one_alert_costs_one_transaction(noc):
    """A script piping one alert pays for imports and one transaction, nothing more."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    begins = []

    def listener(conn):
        begins.append(conn)

    event.listen(Engine, "begin", listener)
    try:
        result = noc("ingest", input=ndjson(alert()))
    finally:
        event.remove(Engine, "begin", listener)
    assert result.exit_code == 0
    assert len(begins) == 1


def test_an_ingest_leaves_the_garbage_collector_as_it_found_it(noc):
    """The command eases the collector while it runs (cli.common.collector_eased); a process
    that runs commands one after another (the tests, an embedding script) gets it back."""
    import gc

    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    good = noc("ingest", "--json", input=ndjson(alert(), alert(entity="cam-02")))
    bad = noc("ingest", "--json", input=ndjson(alert(entity="cam-03"), {"severity": "LOUD"}))
    assert good.exit_code == 0, good.stderr
    assert bad.exit_code == 65 and summary(bad)["rejected"] == 1
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen and gc.isenabled()
    # What the process had frozen itself stays frozen.
    gc.freeze()
    try:
        held = gc.get_freeze_count()
        assert noc("ingest", "--json", input=ndjson(alert(entity="cam-04"))).exit_code == 0
        assert gc.get_freeze_count() >= held > 0 and gc.get_threshold() == before
    finally:
        gc.unfreeze()
