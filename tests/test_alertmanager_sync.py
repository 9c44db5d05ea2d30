"""`nocctl alertmanager sync` (`services/alertmanager_sync.py`) against a tiny fake
Alertmanager (http.server on a free port serving canned /api/v2/alerts, /api/v2/status and
/api/v2/silences), and `nocctl ingest` of Alertmanager's /api/v2/alerts array honouring
`status.state`. Both databases."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest_helpers import ORG, rows
from nocctl.services import alertmanager_sync, passlock
from nocctl.services.ingest.formats import am_fingerprint

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SYNC_AT = T0 + timedelta(minutes=30)
SILENCE = "0c1a5e2f-6b7d-4e8f-9a0b-1c2d3e4f5a6b"


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- the fake Alertmanager

class FakeAlertmanager:
    """Serves what the test puts here; `answer` overrides everything with (status, body)."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.silences: list[dict[str, Any]] = []
        self.up_since = T0 - timedelta(days=1)
        self.answer: tuple[int, bytes] | None = None
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if fake.answer is not None:
                    status, body = fake.answer
                else:
                    status, body = 200, json.dumps(fake.body(self.path)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def body(self, path: str) -> Any:
        if path.startswith("/api/v2/alerts"):
            return self.alerts
        if path.startswith("/api/v2/status"):
            return {"uptime": iso(self.up_since), "versionInfo": {"version": "0.25.0"}, "cluster": {}}
        if path.startswith("/api/v2/silences"):
            return self.silences
        return {"error": "not found"}

    def fire(self, *labels_list: dict[str, str], silenced: dict[str, list[str]] | None = None,
             inhibited: dict[str, list[str]] | None = None) -> None:
        """Report these alerts (labels), some silenced or inhibited (by instance)."""
        self.alerts = [am_alert(labels, (silenced or {}).get(labels["instance"], []),
                                (inhibited or {}).get(labels["instance"], [])) for labels in labels_list]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def am_alert(labels: dict[str, str], silenced_by: list[str] = (), inhibited_by: list[str] = (),
             starts: datetime = T0, updated: datetime | None = None) -> dict[str, Any]:
    """One element of /api/v2/alerts as Alertmanager 0.25 gives it."""
    state = "suppressed" if silenced_by or inhibited_by else "active"
    return {"annotations": {"summary": f"{labels['alertname']} on {labels['instance']}"},
            "endsAt": iso(starts + timedelta(hours=1)), "fingerprint": am_fingerprint(labels),
            "receivers": [{"name": "noc"}], "startsAt": iso(starts),
            "status": {"inhibitedBy": list(inhibited_by), "silencedBy": list(silenced_by), "state": state},
            "updatedAt": iso(updated or starts), "generatorURL": "http://prometheus:9090/graph", "labels": labels}


def host(instance: str, client: str = "ACME", site: str | None = "ACME-BLR-WF", name: str = "HostDown") -> dict:
    labels = {"alertname": name, "instance": instance, "client": client, "severity": "critical"}
    if site:
        labels["site"] = site
    return labels


def key(labels: dict[str, str]) -> str:
    return "am:" + am_fingerprint(labels)


@pytest.fixture
def am() -> Iterator[FakeAlertmanager]:
    fake = FakeAlertmanager()
    yield fake
    fake.close()


@pytest.fixture
def noc(admin_cli, monkeypatch):
    """The example org; integration `prom` (alertmanager, client ACME) and `globex`
    (alertmanager, client GLOBEX); the clock at T0."""
    monkeypatch.setenv("NOC_NOW", iso(T0))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    for name, client in (("prom", "ACME"), ("globex", "GLOBEX")):
        result = admin_cli("integration", "add", name, "--format", "alertmanager", "--client", client)
        assert result.exit_code == 0, result.stderr
    return admin_cli


def ingest(noc, *alerts: dict[str, Any]) -> dict[str, int]:
    """Alertmanager alerts through `nocctl ingest` (the /api/v2/alerts shape)."""
    result = noc("ingest", "--json", input=json.dumps(list(alerts)))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def sync(noc, am: FakeAlertmanager, *args: str, integration: str = "prom", code: int = 0):
    result = noc("alertmanager", "sync", "--url", am.url, "--integration", integration, "--now", iso(SYNC_AT),
                 "--json", *args)
    assert result.exit_code == code, result.stderr
    return json.loads(result.stdout) if code == 0 else result


def status(db_url: str) -> dict[str, str]:
    """dedup key -> status of its active alert, else of its last resolved one."""
    return dict(rows(db_url, "SELECT dedup_key, status FROM alert ORDER BY status = 'RESOLVED' DESC, id"))


def metadata(db_url: str, dedup_key: str) -> dict[str, Any]:
    (value,), = rows(db_url, "SELECT metadata FROM alert WHERE dedup_key = :k ORDER BY id DESC LIMIT 1", k=dedup_key)
    return value if isinstance(value, dict) else json.loads(value)


def audit(db_url: str, *actions: str, system: bool = True) -> list[tuple[str, str, dict]]:
    found = rows(db_url, "SELECT a.action, al.dedup_key, a.details, a.actor_id FROM audit_log a"
                         " JOIN alert al ON a.target_type = 'alert' AND a.target_id = CAST(al.id AS VARCHAR(64))"
                         " ORDER BY a.id")
    out = []
    for action, dedup_key, details, actor in found:
        if action in actions:
            assert (actor is None) is system  # the sync acts as the system, like the other passes
            out.append((action, dedup_key, details if isinstance(details, dict) else json.loads(details)))
    return out


def everything(db_url: str) -> list[tuple]:
    return [tuple(str(v) for v in row) for row in
            rows(db_url, "SELECT id, status, metadata, resolved_at, resolution_note FROM alert ORDER BY id")] + \
        rows(db_url, "SELECT count(*) FROM audit_log")


A, B, C = host("db1:9100"), host("db2:9100"), host("web1:9100", site=None)


# ---------------------------------------------------------------- the three moves

def test_a_silenced_alert_becomes_suppressed_with_its_silence_in_metadata(noc, am, db_url):
    ingest(noc, am_alert(A), am_alert(B), am_alert(C))
    ends = T0 + timedelta(hours=2)
    am.fire(A, B, C, silenced={"db1:9100": [SILENCE]}, inhibited={"web1:9100": ["ffee000000000001"]})
    am.silences = [{"id": SILENCE, "status": {"state": "active"}, "startsAt": iso(T0), "endsAt": iso(ends),
                    "matchers": [{"name": "instance", "value": "db1:9100", "isRegex": False, "isEqual": True}]}]
    assert sync(noc, am) == {"reported": 3, "suppressed": 2, "unsuppressed": 0, "resolved": 0, "unchanged": 1}
    assert status(db_url) == {key(A): "SUPPRESSED", key(B): "NEW", key(C): "SUPPRESSED"}
    held = metadata(db_url, key(A))
    assert held["status"] == {"state": "suppressed", "silencedBy": [SILENCE], "inhibitedBy": []}
    assert held["silencedUntil"] == iso(ends) and held["labels"] == A  # the rest of the metadata is kept
    assert metadata(db_url, key(C))["status"]["inhibitedBy"] == ["ffee000000000001"]
    assert "silencedUntil" not in metadata(db_url, key(C))
    entries = {k: details for _, k, details in audit(db_url, "SUPPRESS")}
    assert sorted(entries) == sorted([key(A), key(C)])
    assert entries[key(A)] == {"from": "NEW", "to": "SUPPRESSED", "by": "alertmanager sync", "integration": "prom",
                             "url": am.url, "silenced_by": [SILENCE], "inhibited_by": [],
                             "silenced_until": iso(ends)}
    # The same view again changes nothing.
    assert sync(noc, am) == {"reported": 3, "suppressed": 0, "unsuppressed": 0, "resolved": 0, "unchanged": 3}
    assert len(audit(db_url, "SUPPRESS", "UNSUPPRESS", "RESOLVE")) == 2


def test_an_alert_whose_silence_ended_and_still_fires_returns_to_new(noc, am, db_url):
    ingest(noc, am_alert(A), am_alert(B))
    am.fire(A, B, silenced={"db1:9100": [SILENCE], "db2:9100": [SILENCE]})
    assert sync(noc, am)["suppressed"] == 2
    am.fire(A, B, silenced={"db2:9100": [SILENCE]})  # db1's silence expired; db2's goes on
    assert sync(noc, am) == {"reported": 2, "suppressed": 0, "unsuppressed": 1, "resolved": 0, "unchanged": 1}
    assert status(db_url) == {key(A): "NEW", key(B): "SUPPRESSED"}
    assert metadata(db_url, key(A))["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    (_, _, details), = audit(db_url, "UNSUPPRESS")
    assert details == {"from": "SUPPRESSED", "to": "NEW", "by": "alertmanager sync", "integration": "prom",
                       "url": am.url}


def test_an_alert_alertmanager_no_longer_reports_is_resolved_at_the_pass_now(noc, am, db_url, monkeypatch):
    ingest(noc, am_alert(A), am_alert(B))
    am.fire(A, silenced={"db1:9100": [SILENCE]})
    assert sync(noc, am) == {"reported": 1, "suppressed": 1, "unsuppressed": 0, "resolved": 1, "unchanged": 0}
    am.fire()  # db1 ended while silenced: Alertmanager's webhook never says so (its issue #226)
    assert sync(noc, am) == {"reported": 0, "suppressed": 0, "unsuppressed": 0, "resolved": 1, "unchanged": 0}
    assert status(db_url) == {key(A): "RESOLVED", key(B): "RESOLVED"}
    resolved = rows(db_url, "SELECT resolved_at, time_to_resolve, resolved_by, resolution_note FROM alert"
                            " WHERE dedup_key = :k", k=key(B))
    (at, seconds, by, note), = resolved
    assert str(at).startswith("2026-03-01 10:30:00") and seconds == 1800 and by is None
    assert note == f"resolved by alertmanager sync: no longer reported by Alertmanager at {am.url}"
    assert [(k, d["from"]) for _, k, d in audit(db_url, "RESOLVE")] == [(key(B), "NEW"), (key(A), "SUPPRESSED")]
    assert all(d["at"] == iso(SYNC_AT) for _, _, d in audit(db_url, "RESOLVE"))
    # A resolved key that fires again opens a new alert, as after any resolve.
    monkeypatch.setenv("NOC_NOW", iso(T0 + timedelta(hours=1)))
    assert ingest(noc, am_alert(B, starts=T0 + timedelta(hours=1)))["created"] == 1


def test_acknowledged_and_assigned_alerts_stay_with_whoever_took_them(noc, am, db_url):
    ingest(noc, am_alert(A), am_alert(B))
    (alert_id,), = rows(db_url, "SELECT id FROM alert WHERE dedup_key = :k", k=key(A))
    assert noc("alert", "ack", str(alert_id)).exit_code == 0
    am.fire(A, silenced={"db1:9100": [SILENCE]})
    assert sync(noc, am) == {"reported": 1, "suppressed": 0, "unsuppressed": 0, "resolved": 1, "unchanged": 1}
    assert status(db_url) == {key(A): "ACKNOWLEDGED", key(B): "RESOLVED"}
    am.fire()
    assert sync(noc, am)["resolved"] == 1  # vanished: resolved whatever its status
    assert status(db_url)[key(A)] == "RESOLVED"


# ---------------------------------------------------------------- only the integration's alerts

def test_only_the_integrations_scope_and_its_am_alerts_are_touched(noc, am, db_url):
    globex = host("db9:9100", client="GLOBEX", site="GLOBEX-PNQ")
    initech = host("db8:9100", client="INITECH", site="INITECH-GGN")
    ingest(noc, am_alert(A), am_alert(globex), am_alert(initech))
    native = {"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "cam down", "site": "ACME-MYS",
              "entity_type": "device", "entity_id": "cam-1", "occurred_at": iso(T0)}
    spoof = dict(native, entity_id="cam-2", dedup_key="am:0000000000000abc")  # an am: key, not from Alertmanager
    assert noc("ingest", input=json.dumps(native) + "\n" + json.dumps(spoof) + "\n").exit_code == 0
    before = status(db_url)
    am.fire(globex, initech, silenced={"db9:9100": [SILENCE], "db8:9100": [SILENCE]})  # A vanished
    assert sync(noc, am) == {"reported": 2, "suppressed": 0, "unsuppressed": 0, "resolved": 1, "unchanged": 0}
    after = status(db_url)
    assert after.pop(key(A)) == "RESOLVED" and before.pop(key(A)) == "NEW"
    assert after == before  # GLOBEX's (another integration's), INITECH's, the native alerts: as they were
    # GLOBEX's own integration reaches GLOBEX's alert only.
    assert sync(noc, am, integration="globex") == {"reported": 2, "suppressed": 1, "unsuppressed": 0,
                                                    "resolved": 0, "unchanged": 0}
    assert status(db_url)[key(globex)] == "SUPPRESSED" and status(db_url)[key(initech)] == "NEW"


def test_a_site_integration_reaches_its_site_only(noc, am, db_url):
    assert noc("integration", "add", "wf", "--format", "alertmanager", "--site", "ACME-BLR-WF").exit_code == 0
    other_site = host("db5:9100", site="ACME-MYS")
    ingest(noc, am_alert(A), am_alert(other_site), am_alert(C))  # C: client-level ACME
    am.fire()
    assert sync(noc, am, integration="wf")["resolved"] == 1
    assert status(db_url) == {key(A): "RESOLVED", key(other_site): "NEW", key(C): "NEW"}


# ---------------------------------------------------------------- the rules it keeps

def test_a_maintenance_window_keeps_holding_what_it_holds(noc, am, db_url):
    assert noc("maintenance", "add", "--site", "ACME-BLR-WF", "--start", iso(T0 - timedelta(hours=1)),
               "--duration", "4h", "--suppress-all", "--reason", "rack move").exit_code == 0
    assert ingest(noc, am_alert(A))["suppressed"] == 1
    am.fire(A)  # active in Alertmanager: nocctl's own window still holds it
    assert sync(noc, am) == {"reported": 1, "suppressed": 0, "unsuppressed": 0, "resolved": 0, "unchanged": 1}
    assert status(db_url) == {key(A): "SUPPRESSED"}
    late = noc("alertmanager", "sync", "--url", am.url, "--integration", "prom", "--json",
               "--now", iso(T0 + timedelta(hours=5)))  # after the window: it still fires
    assert json.loads(late.stdout)["unsuppressed"] == 1 and status(db_url) == {key(A): "NEW"}


def test_escalation_leaves_an_alertmanager_silenced_alert_alone_and_a_resolve_event_resolves_it(noc, am, db_url):
    ingest(noc, am_alert(A))
    am.fire(A, silenced={"db1:9100": [SILENCE]})
    sync(noc, am)
    assert noc("escalate", "run", "--now", iso(T0 + timedelta(hours=3))).exit_code == 0
    assert status(db_url) == {key(A): "SUPPRESSED"}
    webhook = {"version": "4", "status": "resolved", "receiver": "noc", "groupKey": "{}:{}", "alerts": [
        {"status": "resolved", "labels": A, "annotations": {}, "startsAt": iso(T0),
         "endsAt": iso(T0 + timedelta(hours=1)), "fingerprint": am_fingerprint(A)}]}
    result = noc("ingest", "--json", input=json.dumps(webhook), env={"NOC_NOW": iso(T0 + timedelta(hours=3))})
    assert json.loads(result.stdout)["resolved"] == 1 and status(db_url) == {key(A): "RESOLVED"}


def test_after_an_alertmanager_restart_vanished_alerts_wait_for_the_settle_time(noc, am, db_url):
    ingest(noc, am_alert(A), am_alert(B))
    am.up_since = datetime.now(UTC) - timedelta(seconds=40)  # restarted: Prometheus has not re-sent yet
    am.fire(B)
    assert sync(noc, am) == {"reported": 1, "suppressed": 0, "unsuppressed": 0, "resolved": 0, "unchanged": 2}
    result = noc("alertmanager", "sync", "--url", am.url, "--integration", "prom")
    assert "less than the settle time" in result.stderr
    assert sync(noc, am, "--settle", "0")["resolved"] == 1
    am.up_since = datetime.now(UTC) - timedelta(minutes=6)
    am.fire()
    assert sync(noc, am)["resolved"] == 1


def test_an_alert_created_after_alertmanager_was_read_is_not_taken_for_vanished(noc, am, db_url, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(T0 + timedelta(minutes=40)))
    ingest(noc, am_alert(A))  # created at 10:40 ...
    monkeypatch.setenv("NOC_NOW", iso(T0 + timedelta(minutes=39)))  # ... after this sync read Alertmanager
    am.fire()
    assert sync(noc, am) == {"reported": 0, "suppressed": 0, "unsuppressed": 0, "resolved": 0, "unchanged": 1}


def test_a_dry_run_reports_and_changes_nothing(noc, am, db_url):
    ingest(noc, am_alert(A), am_alert(B), am_alert(C))
    am.fire(A, B, C, silenced={"db1:9100": [SILENCE]})
    sync(noc, am)
    am.fire(A, C, silenced={"web1:9100": [SILENCE]})  # A back, B gone, C silenced
    before = everything(db_url)
    assert sync(noc, am, "--dry-run") == {"reported": 2, "suppressed": 1, "unsuppressed": 1, "resolved": 1,
                                          "unchanged": 0}
    assert everything(db_url) == before
    assert sync(noc, am)["resolved"] == 1 and everything(db_url) != before


# ---------------------------------------------------------------- failures

def test_an_unreachable_alertmanager_exits_75_naming_the_url_and_changes_nothing(noc, am, db_url):
    ingest(noc, am_alert(A))
    am.close()
    before = everything(db_url)
    result = sync(noc, am, code=75)
    assert f"Alertmanager at {am.url}/api/v2/alerts is unreachable" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert everything(db_url) == before


@pytest.mark.parametrize("answer, code, words", [
    ((200, b"<html>login</html>"), 65, "did not answer JSON"),
    ((200, b'{"data": []}'), 65, "did not answer an array of alerts"),
    ((200, b'[{"labels": {"alertname": "X"}}]'), 65, "alert 1 of 1: not an alert of API v2"),
    ((200, b'[{"fingerprint": "ab", "status": {"state": 7}}]'), 65, "status.state must be a string"),
    ((404, b"404 page not found"), 65, "answered HTTP 404"),
    ((503, b"overloaded"), 75, "answered HTTP 503"),
])
def test_an_answer_that_is_not_alertmanagers_changes_nothing(noc, am, db_url, answer, code, words):
    ingest(noc, am_alert(A))
    am.answer = answer
    before = everything(db_url)
    result = sync(noc, am, code=code)
    assert words in result.stderr, result.stderr
    assert everything(db_url) == before


def test_a_second_runner_exits_75_while_the_first_holds_the_lock(noc, am, engine, db_url):
    ingest(noc, am_alert(A))
    am.fire()
    with passlock.hold(engine, alertmanager_sync.lock_name("prom")):
        result = sync(noc, am, code=75)
        assert "another `alertmanager-sync-prom` pass is running" in result.stderr
        assert am.requests == []  # the refused run did not even ask
        assert sync(noc, am, integration="globex")["reported"] == 0  # another integration's pass: its own lock
    assert status(db_url) == {key(A): "NEW"}
    assert sync(noc, am)["resolved"] == 1


@pytest.mark.parametrize("setup, name, code, words", [
    ((), "nope", 3, "no integration 'nope'"),
    ((("integration", "add", "pd", "--format", "pagerduty"),), "pd", 2, "is a pagerduty integration"),
    ((("integration", "revoke", "prom"),), "prom", 4, "integration 'prom' is revoked"),
])
def test_the_integration_must_be_a_live_alertmanager_one(noc, am, setup, name, code, words):
    for args in setup:
        assert noc(*args).exit_code == 0
    result = sync(noc, am, integration=name, code=code)
    assert words in result.stderr and am.requests == []


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown():
    endpoint = alertmanager_sync.Endpoint("http://noc:s3cret@am.internal:9093/alertmanager/api/v2/")
    assert endpoint.base == "http://am.internal:9093/alertmanager" and endpoint.shown == endpoint.base
    assert endpoint.auth == "Basic bm9jOnMzY3JldA=="


# ---------------------------------------------------------------- `nocctl ingest` of the v2 array

def test_ingest_of_the_v2_array_honours_status_state(noc, db_url):
    unprocessed = dict(am_alert(C), status={"state": "unprocessed", "silencedBy": [], "inhibitedBy": []})
    summary = ingest(noc, am_alert(A, [SILENCE]), am_alert(B), unprocessed)
    assert (summary["created"], summary["suppressed"]) == (2, 1)
    assert status(db_url) == {key(A): "SUPPRESSED", key(B): "NEW", key(C): "NEW"}
    assert metadata(db_url, key(A))["status"] == {"state": "suppressed", "silencedBy": [SILENCE], "inhibitedBy": []}
    (_, _, details), = audit(db_url, "SUPPRESS", system=False)  # the ingesting person's
    assert details == {"maintenance_window_id": None, "dedup_key": key(A), "by": "alertmanager",
                       "silenced_by": [SILENCE], "inhibited_by": []}
    # The same array again is a replay: nothing changes.
    again = ingest(noc, am_alert(A, [SILENCE]), am_alert(B), unprocessed)
    assert again["replayed"] == 3 and status(db_url)[key(A)] == "SUPPRESSED"
    # A later pull: A's silence ended, B is now inhibited.
    later = T0 + timedelta(minutes=5)
    summary = ingest(noc, am_alert(A, updated=later), am_alert(B, inhibited_by=["ffee000000000001"], updated=later))
    assert summary["deduplicated"] == 2 and summary["replayed"] == 0
    assert status(db_url) == {key(A): "NEW", key(B): "SUPPRESSED", key(C): "NEW"}
    details = audit(db_url, "SUPPRESS", system=False)[-1][2]
    assert details == {"from": "NEW", "to": "SUPPRESSED", "dedup_key": key(B), "by": "alertmanager",
                       "silenced_by": [], "inhibited_by": ["ffee000000000001"]}


def test_ingest_holds_an_escalated_alert_but_not_an_acknowledged_one(noc, db_url):
    ingest(noc, am_alert(A), am_alert(B))
    assert noc("escalate", "run", "--now", iso(T0 + timedelta(minutes=20))).exit_code == 0
    (b_id,), = rows(db_url, "SELECT id FROM alert WHERE dedup_key = :k", k=key(B))
    assert noc("alert", "ack", str(b_id)).exit_code == 0
    later = T0 + timedelta(minutes=25)
    ingest(noc, am_alert(A, [SILENCE], updated=later), am_alert(B, [SILENCE], updated=later))
    assert status(db_url) == {key(A): "SUPPRESSED", key(B): "ACKNOWLEDGED"}


def test_the_v2_state_is_read_strictly_where_it_matters():
    from nocctl.services.ingest.formats import Record, RecordError, records_with_items

    def one(status: Any) -> Record | RecordError:
        [(_, record)] = list(records_with_items([dict(am_alert(A), status=status)]))
        return record

    muted = one({"state": "suppressed", "silencedBy": ["s2", "s1"], "inhibitedBy": []})
    assert isinstance(muted, Record) and muted.suppressed and muted.metadata["status"]["silencedBy"] == ["s1", "s2"]
    # "suppressed" that names nothing muting it, "unprocessed", a state of a later release: active.
    for status in ({"state": "suppressed"}, {"state": "unprocessed"}, {"state": "deferred", "silencedBy": None}):
        record = one(status)
        assert isinstance(record, Record) and not record.suppressed, status
    assert str(one({"state": "suppressed", "silencedBy": "s1"})) == "status.silencedBy must be a list of ids"
    # The webhook's alerts carry a status string: never held by it.
    webhook = {"version": "4", "status": "firing", "receiver": "noc", "alerts": [dict(am_alert(A), status="firing")]}
    [(_, record)] = list(records_with_items(webhook))
    assert isinstance(record, Record) and not record.suppressed and record.event_id is None
