"""`nocctl serve` as a real process on a free port (DESIGN §4a): the PagerDuty client
library, Alertmanager webhooks and native records in; the answers a sender relies on (2xx
only once committed, 400 with dead letters, 401, 403, 413, 503 + Retry-After); slow
clients; SIGTERM and kill -9 under load; many client processes at once. Both databases."""
from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pagerduty
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from ingest_helpers import ORG, rows
from nocctl.db import make_engine
from nocctl.services import schema
from serve_helpers import NOCCTL, Server, clean_env, client_results, pd_event, request, spawn_clients

pytestmark = pytest.mark.slow
TIMEOUT = 3  # the shared server's --request-timeout (seconds)


def nocctl(db_url: str, *args: str) -> str:
    """Run `nocctl ARGS` in-process as the tenant admin; its stdout."""
    from nocctl.cli import cli as root

    result = CliRunner().invoke(root, ["--db", db_url, *args], env={"NOC_CONFIG": os.devnull, "NOC_ACTOR": None},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


class Setup:
    """A database with the example org and one integration per case, and one server on it."""

    def __init__(self, db_url: str, tmp: Path):
        self.db_url, self.tmp = db_url, tmp
        nocctl(db_url, "init")
        nocctl(db_url, "org", "import", str(ORG))
        self.keys = {
            "pd-acme": self.add("pd-acme", "pagerduty", "--client", "ACME"),
            "pd-all": self.add("pd-all", "pagerduty"),
            "am": self.add("am", "alertmanager"),
            "am-acme": self.add("am-acme", "alertmanager", "--client", "ACME"),
            "native-mys": self.add("native-mys", "native", "--site", "ACME-MYS"),
        }
        self.server = Server(db_url, tmp, "--request-timeout", f"{TIMEOUT}s").start()

    def add(self, name: str, fmt: str, *scope: str) -> str:
        return nocctl(self.db_url, "integration", "add", name, "--format", fmt, *scope).strip()

    def post(self, path: str, body, key: str | None = None, headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return request(self.server.port, "POST", path, body, headers, **kw)

    def alerts(self, where: str, **params) -> list[tuple]:
        return rows(self.db_url, "SELECT dedup_key, status, duplicate_count, site_id FROM alert WHERE "
                    + where + " ORDER BY dedup_key, id", **params)

    def rejects(self, like: str) -> list[tuple]:
        return rows(self.db_url, "SELECT reason, raw, input_format FROM ingest_reject WHERE raw LIKE :like"
                    " ORDER BY id", like=like)


@pytest.fixture(scope="module")
def served(pg_server, template_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    if pg_server is None:
        shutil.copy(template_db, tmp / "noc.db")
        url = f"sqlite:///{tmp / 'noc.db'}"
    else:
        url = pg_server.create()
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
    setup = Setup(url, tmp)
    yield setup
    setup.server.stop()
    if pg_server is not None:
        pg_server.drop(url)


class PlainHttp(httpx2.BaseTransport):
    """The PagerDuty client takes https:// base URLs only (PagerDuty is HTTPS-only; in
    production a TLS terminator sits in front of nocctl serve). This transport sends the
    client's requests, unchanged, over plain HTTP to the test server."""

    def __init__(self, port: int):
        self.port = port
        self.inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)


def pd_client(served: Setup, name: str = "pd-acme") -> pagerduty.EventsApiV2Client:
    return pagerduty.EventsApiV2Client(served.keys[name], base_url="https://nocctl.test",
                                       transport=PlainHttp(served.server.port))


def webhook(status: str, *alerts: dict) -> dict:
    """An Alertmanager webhook payload (version 4)."""
    return {"version": "4", "groupKey": '{}:{alertname="HostDown"}', "truncatedAlerts": 0, "status": status,
            "receiver": "nocctl", "groupLabels": {"alertname": "HostDown"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


def am_alert(instance: str, site: str = "ACME-BLR-WF", status: str = "firing",
             ends: str = "0001-01-01T00:00:00Z") -> dict:
    return {"status": status, "labels": {"alertname": "HostDown", "instance": instance, "site": site,
                                          "severity": "critical"},
            "annotations": {"summary": f"{instance} is down"}, "startsAt": "2026-03-01T10:00:00Z", "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"fp{instance}"}


# ---------------------------------------------------------------- the senders

def test_pagerduty_client_triggers_acknowledges_and_resolves_by_its_dedup_key(served):
    client = pd_client(served)
    key = client.trigger("disk full on cam-7", "cam-7", dedup_key="pd-lib-1", severity="critical",
                         payload={"group": "ACME-BLR-WF", "class": "DiskFull"})
    assert key == "pd-lib-1"
    assert served.alerts("dedup_key = 'pd-lib-1'")[0][:3] == ("pd-lib-1", "NEW", 0)
    assert client.acknowledge(key) == key
    assert served.alerts("dedup_key = 'pd-lib-1'")[0][1] == "ACKNOWLEDGED"
    assert client.resolve(key) == key
    assert rows(served.db_url, "SELECT status, alert_type, severity FROM alert WHERE dedup_key = 'pd-lib-1'") == [
        ("RESOLVED", "DISK_FULL", "CRITICAL")]


def test_a_pagerduty_trigger_without_dedup_key_gets_one_that_acknowledges_and_resolves_it(served):
    client = pd_client(served)
    key = client.trigger("fan failed", "cam-8", payload={"group": "ACME-MYS"})
    assert key and served.alerts("dedup_key = :k", k=key)[0][1:3] == ("NEW", 0)
    # The same event again is the same alert (nocctl's de-duplication), with the same key back.
    assert client.trigger("fan failed", "cam-8", payload={"group": "ACME-MYS"}) == key
    # ... and `nocctl ingest` of that event files it under the same key.
    event = json.dumps({"event_action": "trigger", "payload": {"summary": "fan failed", "source": "cam-8",
                                                               "severity": "critical", "group": "ACME-MYS"}})
    path = served.tmp / "pd-event.json"
    path.write_text(event)
    nocctl(served.db_url, "ingest", "--format", "pagerduty", str(path))
    assert served.alerts("dedup_key = :k", k=key)[0][1:3] == ("NEW", 2)
    client.acknowledge(key)
    client.resolve(key)
    assert [a[1] for a in served.alerts("dedup_key = :k", k=key)] == ["RESOLVED"]


def test_a_pagerduty_event_for_another_clients_site_is_refused_and_kept_as_a_dead_letter(served):
    with pytest.raises(pagerduty.HttpError) as refused:
        pd_client(served).trigger("door open", "gate-1", dedup_key="pd-globex-1", payload={"group": "GLOBEX-PNQ"})
    assert refused.value.response.status_code == 400
    assert refused.value.response.json() == {"status": "invalid event", "message": "Event object is invalid",
                                             "errors": ["unknown site 'GLOBEX-PNQ'"]}
    assert served.alerts("dedup_key = 'pd-globex-1'") == []
    [(reason, raw, fmt)] = served.rejects("%pd-globex-1%")
    assert reason == "unknown site 'GLOBEX-PNQ'" and fmt == "pagerduty"
    assert served.keys["pd-acme"] not in raw  # the routing key is never stored


def test_an_acknowledge_for_another_clients_alert_changes_nothing(served):
    pd_client(served, "pd-all").trigger("smoke", "sensor-2", dedup_key="pd-other-1", payload={"group": "GLOBEX-PNQ"})
    pd_client(served).resolve("pd-other-1")  # ACME's key: GLOBEX's alert is not in its scope
    assert served.alerts("dedup_key = 'pd-other-1'")[0][1] == "NEW"


def test_alertmanager_webhook_fires_repeats_without_twins_and_resolves(served):
    key = served.keys["am"]
    status, _, body = served.post("/api/v1/alertmanager", webhook("firing", am_alert("h1"), am_alert("h2")), key)
    assert (status, body) == (200, {"status": "success", "received": 2, "accepted": 2, "rejected": 0})
    # The repeat notification (same startsAt), with the key as basic-auth password
    # (http_config.basic_auth): the same event again, a replay that changes nothing.
    basic = base64.b64encode(f"alertmanager:{key}".encode()).decode()
    status, _, _ = served.post("/api/v1/alertmanager", webhook("firing", am_alert("h1")),
                               headers={"Authorization": f"Basic {basic}"})
    assert status == 200
    # Fired again while still active (a later startsAt: e.g. after Prometheus restarted): a duplicate.
    again = am_alert("h1") | {"startsAt": "2026-03-01T10:01:00Z"}
    assert served.post("/api/v1/alertmanager", webhook("firing", again), key)[0] == 200
    assert [a[:3] for a in served.alerts("dedup_key IN ('am:fph1', 'am:fph2')")] == [
        ("am:fph1", "NEW", 1), ("am:fph2", "NEW", 0)]
    status, _, _ = served.post("/api/v1/alertmanager",
                               webhook("resolved", am_alert("h1", status="resolved", ends="2026-03-01T10:05:00Z")), key)
    assert status == 200
    assert rows(served.db_url, "SELECT status, time_to_resolve FROM alert WHERE dedup_key = 'am:fph1'") == [
        ("RESOLVED", 300)]
    _, _, metrics = request(served.server.port, "GET", "/metrics")
    assert 'nocctl_serve_events_total{integration="am",outcome="replayed"} 1.0' in metrics


def test_native_records_of_many_batches_in_one_request_and_the_integrations_site_as_default(served):
    records = "".join(json.dumps({"alert_type": "SYNC_DEGRADED", "severity": "LOW", "message": f"sync {i}",
                                  "entity_type": "device", "entity_id": f"nat-{i}"}) + "\n" for i in range(2500))
    status, _, body = served.post("/api/v1/alerts", records, served.keys["native-mys"])
    assert (status, body) == (200, {"status": "success", "received": 2500, "accepted": 2500, "rejected": 0})
    array = [{"alert_type": "SYNC_DEGRADED", "severity": "LOW", "message": "sync a", "entity_id": "nat-a"},
             {"alert_type": "SYNC_DEGRADED", "severity": "LOW", "message": "sync b", "entity_id": "nat-b"}]
    assert served.post("/api/v1/alerts", array, served.keys["native-mys"])[0] == 200
    assert served.post("/api/v1/alerts", array[0], served.keys["native-mys"])[0] == 200
    [(count, sites)] = rows(served.db_url, "SELECT count(*), count(DISTINCT site_id) FROM alert"
                                           " WHERE alert_type = 'SYNC_DEGRADED'")
    assert (count, sites) == (2502, 1)
    assert rows(served.db_url, "SELECT duplicate_count FROM alert WHERE entity_id = 'nat-a'") == [(1,)]


# ---------------------------------------------------------------- refusals

UNAUTHORIZED = {"status": "unauthorized", "message": "invalid or revoked integration key"}


def test_a_wrong_and_a_revoked_key_get_the_same_401(served):
    key = served.add("am-revoked", "alertmanager")
    assert served.post("/api/v1/alertmanager", webhook("firing", am_alert("rv1")), key)[0] == 200
    nocctl(served.db_url, "integration", "revoke", "am-revoked")
    # Within a second, though the request threads' cache still holds the key: the writer
    # looks it up again once its run of the integration is 1 s old.
    time.sleep(1.1)
    revoked = served.post("/api/v1/alertmanager", webhook("firing", am_alert("rv2")), key)
    wrong = served.post("/api/v1/alertmanager", webhook("firing", am_alert("rv3")), key[:-4] + "AAAA")
    garbage = served.post("/api/v1/alertmanager", webhook("firing", am_alert("rv4")), "not-a-key")
    for status, headers, body in (revoked, wrong, garbage):
        assert (status, body) == (401, UNAUTHORIZED)
        assert headers["www-authenticate"].startswith("Bearer")
    assert served.alerts("dedup_key IN ('am:fprv2', 'am:fprv3', 'am:fprv4')") == []
    revoked_pd = served.post("/v2/enqueue", pd_event(key[:-4] + "AAAA", "pd-wrong", "ACME-MYS"))
    assert (revoked_pd[0], revoked_pd[2]) == (401, UNAUTHORIZED)
    missing = served.post("/api/v1/alertmanager", webhook("firing", am_alert("rv5")))
    assert missing[0] == 401


def test_a_key_on_another_formats_route_is_refused_403_naming_its_route(served):
    status, _, body = served.post("/api/v1/alertmanager", webhook("firing", am_alert("x1")), served.keys["pd-acme"])
    assert status == 403 and "/v2/enqueue" in body["message"]
    status, _, body = served.post("/v2/enqueue", pd_event(served.keys["am"], "pd-route", "ACME-MYS"))
    assert status == 403 and "/api/v1/alertmanager" in body["message"]


def test_records_for_another_clients_site_are_rejected_as_dead_letters_and_the_rest_stored(served):
    status, _, body = served.post("/api/v1/alertmanager",
                                  webhook("firing", am_alert("sc1", site="GLOBEX-PNQ"), am_alert("sc2")),
                                  served.keys["am-acme"])
    assert status == 400
    assert (body["received"], body["accepted"], body["rejected"]) == (2, 1, 1)
    assert body["errors"] == ["unknown site 'GLOBEX-PNQ'"]
    assert served.alerts("dedup_key = 'am:fpsc1'") == []
    assert [a[:2] for a in served.alerts("dedup_key = 'am:fpsc2'")] == [("am:fpsc2", "NEW")]
    [(reason, _, fmt)] = served.rejects('%"fpsc1"%')
    assert (reason, fmt) == ("unknown site 'GLOBEX-PNQ'", "alertmanager")


def test_broken_json_is_400_and_kept_as_a_dead_letter(served):
    status, _, body = served.post("/api/v1/alerts", '{"alert_type": "DEVICE_OFFLINE", "severity": ',
                                  served.keys["native-mys"])
    assert status == 400 and body["rejected"] == 1 and body["errors"][0].startswith("line 1: invalid JSON")
    [(reason, _, fmt)] = served.rejects('{"alert_type": "DEVICE_OFFLINE", "severity": ')
    assert reason.startswith("invalid JSON") and fmt == "native"
    # On /v2/enqueue the key is inside the body: unreadable, so nothing is kept.
    status, _, body = served.post("/v2/enqueue", '{"routing_key": "x", "event_action": ')
    assert status == 400 and body["status"] == "invalid event"
    assert served.rejects('{"routing_key"%') == []


def test_a_body_over_the_limit_is_413_by_content_length_and_when_chunked(served):
    big = json.dumps({"alert_type": "DEVICE_OFFLINE", "severity": "LOW", "message": "x" * (1024 * 1024)})
    status, _, body = served.post("/api/v1/alerts", big, served.keys["native-mys"])
    assert status == 413 and body["status"] == "payload too large"
    # Chunked: no Content-Length, counted as it is read (a little over the limit: the app's own check).
    payload = big[: 1024 * 1024 + 1000].encode()
    conn = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=30)
    conn.request("POST", "/api/v1/alerts", body=iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)]),
                 headers={"Authorization": f"Bearer {served.keys['native-mys']}"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    # Just under the limit is taken (a reject here: the record is no alert, but it was read).
    status, _, _ = served.post("/api/v1/alerts", big[: 1024 * 1024 - 10], served.keys["native-mys"])
    assert status == 400


def test_a_slow_client_does_not_hold_up_others_and_is_cut_off_after_the_timeout(served):
    slow = socket.create_connection(("127.0.0.1", served.server.port))
    body = json.dumps(webhook("firing", am_alert("slow1"))).encode()
    slow.sendall(b"POST /api/v1/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + served.keys["am"].encode()
                 + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[: len(body) // 2])
    started = time.monotonic()
    for i in range(10):
        assert served.post("/api/v1/alertmanager", webhook("firing", am_alert(f"fast{i}")), served.keys["am"],
                           timeout=2)[0] == 200
    assert time.monotonic() - started < 2
    slow.settimeout(TIMEOUT + 5)
    assert slow.recv(1024) == b""  # closed by the server, with nothing stored
    slow.close()
    assert served.alerts("dedup_key = 'am:fpslow1'") == []


def test_requests_of_one_group_do_not_fail_each_other(served):
    results: dict[int, int] = {}

    def send(i: int) -> None:
        site = "ACME-MYS" if i % 2 else "NOWHERE"
        results[i] = served.post("/api/v1/alertmanager", webhook("firing", am_alert(f"grp{i}", site=site)),
                                 served.keys["am"])[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: 200 if i % 2 else 400 for i in range(16)}
    assert len(served.alerts("dedup_key LIKE 'am:fpgrp%'")) == 8


class Lock:
    """The database held by another process: SQLite's write lock (BEGIN EXCLUSIVE), or an
    exclusive lock on PostgreSQL's alert table."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        if db_url.startswith("sqlite"):
            path = db_url.removeprefix("sqlite:///")
            self.locker = subprocess.Popen([sys.executable, "-c", (
                "import sqlite3, sys\n"
                f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
                "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert self.locker.stdout.readline().strip() == "locked"
        else:
            self.engine = create_engine(db_url)
            self.conn = self.engine.connect()
            self.conn.exec_driver_sql("LOCK TABLE alert IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if self.db_url.startswith("sqlite"):
            self.locker.communicate("")
        else:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()


def test_a_locked_database_is_503_with_retry_after_then_served_again(served):
    lock = Lock(served.db_url)
    answers: list = []
    started = time.monotonic()
    try:
        threads = [threading.Thread(target=lambda i=i: answers.append(served.post(
            "/api/v1/alertmanager", webhook("firing", am_alert(f"lock{i}")), served.keys["am"]))) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        lock.release()
    assert time.monotonic() - started < TIMEOUT + 5
    for status, headers, body in answers:
        assert (status, body["status"]) == (503, "unavailable") and int(headers["retry-after"]) > 0
    assert served.alerts("dedup_key LIKE 'am:fplock%'") == []
    assert served.post("/api/v1/alertmanager", webhook("firing", am_alert("lock0")), served.keys["am"])[0] == 200


# ---------------------------------------------------------------- probes, metrics, logs

def test_probes_metrics_and_one_json_log_line_per_request(served):
    port = served.server.port
    assert request(port, "GET", "/-/healthy")[:3:2] == (200, {"status": "healthy"})
    assert request(port, "GET", "/-/ready")[:3:2] == (200, {"status": "ready"})
    assert request(port, "GET", "/nowhere")[0] == 404
    status, headers, _ = request(port, "GET", "/v2/enqueue")
    assert status == 405 and headers["allow"] == "POST"
    pd_client(served).trigger("metrics", "m-1", dedup_key="pd-metrics-1", payload={"group": "ACME-MYS"})
    status, headers, text = request(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for needle in ('nocctl_serve_requests_total{code="202",route="/v2/enqueue"}',
                   'nocctl_serve_events_total{integration="pd-acme",outcome="created"}',
                   "nocctl_serve_commit_seconds_bucket", "nocctl_serve_group_requests_bucket",
                   "nocctl_serve_group_records_bucket", "nocctl_serve_queued_requests"):
        assert needle in text
    lines = [line for line in served.server.log_lines() if line.get("event") == "request"]
    assert any(line["path"] == "/v2/enqueue" and line["status"] == 202 and line["integration"] == "pd-acme"
               and line["run_id"] for line in lines)
    assert not any(served.keys["pd-acme"] in json.dumps(line) for line in served.server.log_lines())


# ---------------------------------------------------------------- load, shutdown, crashes

def _stored(db_url: str, like: str) -> dict[str, tuple[int, int]]:
    """dedup key -> (alerts with it, their duplicate_count summed)."""
    return {key: (count, dups) for key, count, dups in rows(
        db_url, "SELECT dedup_key, count(*), sum(duplicate_count) FROM alert WHERE dedup_key LIKE :like"
                " GROUP BY dedup_key", like=like)}


def test_eight_client_processes_at_once_store_every_answered_event_exactly_once(served):
    # 8 × 1,500 single-event requests (12,000; ~25 s on SQLite, ~35 s on PostgreSQL here).
    procs = spawn_clients(served.server, served.keys["pd-all"], "load-", 8, 1500, "INITECH-HYD")
    accepted, other = client_results(procs)
    assert other == [] and len(accepted) == 12_000
    stored = _stored(served.db_url, "load-%")
    assert set(stored) == accepted
    assert set(stored.values()) == {(1, 0)}
    # The same keys from eight processes at once: one alert each, every copy counted.
    procs = spawn_clients(served.server, served.keys["pd-all"], "same-", 8, 150, "INITECH-HYD", same_keys=True)
    accepted, other = client_results(procs)
    assert other == []
    assert set(_stored(served.db_url, "same-%").values()) == {(1, 7)}


def _wait_for(db_url: str, like: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(_stored(db_url, like)) < count:
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.05)


def test_sigterm_under_load_answers_what_it_received_exits_0_and_keeps_every_answered_event(served):
    server = Server(served.db_url, served.tmp).start()
    procs = spawn_clients(server, served.keys["pd-all"], "term-", 4, 3000, "INITECH-GGN")
    _wait_for(served.db_url, "term-%", 300)
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    accepted, other = client_results(procs)
    assert other, "the load ended before the signal"
    # Every request answered was answered 2xx; the others found the server gone (refused, reset).
    assert all(line.startswith("error ") for line in other), other
    stored = _stored(served.db_url, "term-%")
    assert accepted <= set(stored) and set(stored.values()) == {(1, 0)}
    lines = server.log_lines()
    assert lines[-1]["event"] == "stopped"
    assert [line for line in lines if line["level"] == "error"] == []


def test_a_request_in_flight_at_sigterm_is_written_and_answered_before_the_exit(served):
    server = Server(served.db_url, served.tmp, "--request-timeout", "10s").start()
    lock = Lock(served.db_url)  # the request waits in the writer
    answer: list = []
    sender = threading.Thread(target=lambda: answer.append(request(
        server.port, "POST", "/v2/enqueue", pd_event(served.keys["pd-all"], "inflight-1", "INITECH-CHN"))))
    try:
        sender.start()
        time.sleep(0.5)
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):  # no longer accepting
            request(server.port, "GET", "/-/healthy", timeout=2)
    finally:
        lock.release()
    sender.join(15)
    assert answer and answer[0][0] == 202
    assert server.wait(15) == 0
    assert _stored(served.db_url, "inflight-%") == {"inflight-1": (1, 0)}


def test_kill_9_under_load_then_restart_keeps_every_answered_event(served):
    server = Server(served.db_url, served.tmp).start()
    procs = spawn_clients(server, served.keys["pd-all"], "kill-", 4, 3000, "INITECH-NOI")
    _wait_for(served.db_url, "kill-%", 300)
    server.signal(signal.SIGKILL)
    server.wait(10)
    accepted, other = client_results(procs)
    assert other, "the load ended before the kill"
    restarted = Server(served.db_url, served.tmp, port=server.port).start()
    try:
        stored = _stored(served.db_url, "kill-%")
        assert accepted <= set(stored) and set(stored.values()) == {(1, 0)}
        assert request(restarted.port, "POST", "/v2/enqueue",
                       pd_event(served.keys["pd-all"], "kill-after", "INITECH-NOI"))[0] == 202
    finally:
        restarted.stop()


# ---------------------------------------------------------------- the command

def test_serve_help_imports_no_server_or_database_library():
    probe = ("import sys\nfrom nocctl.cli import cli\ntry:\n    cli.main(['serve', '--help'], prog_name='nocctl')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in ('sqlalchemy', 'jinja2', 'waitress', 'prometheus_client') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "NOC_CONFIG": os.devnull})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")


def test_a_bad_listen_address_is_a_usage_error_and_a_taken_port_is_75(served):
    from nocctl.cli import cli as root

    result = CliRunner().invoke(root, ["--db", served.db_url, "serve", "--listen", "nowhere"],
                                env={"NOC_CONFIG": os.devnull})
    assert result.exit_code == 2 and "HOST:PORT" in result.stderr
    done = subprocess.run([*NOCCTL, "--db", served.db_url, "serve", "--listen", f"127.0.0.1:{served.server.port}"],
                          capture_output=True, text=True, env=clean_env(served.tmp), timeout=60)
    assert done.returncode == 75 and "cannot listen on" in done.stderr


# ---------------------------------------------------------------- the writer, in-process

def _writer(db_url: str):
    """An initialised database with a PagerDuty integration, and an in-process writer for
    it: (writer, key, its resolved integration, the engine to dispose of)."""
    from nocctl.db import make_sessionmaker
    from nocctl.server import writer as w
    from nocctl.server.metrics import Metrics
    from nocctl.server.server import writer_engine
    from nocctl.services import integrations
    from nocctl.services.ingest.options import Options

    nocctl(db_url, "init")
    nocctl(db_url, "org", "import", str(ORG))
    key = nocctl(db_url, "integration", "add", "pd", "--format", "pagerduty").strip()
    engine = writer_engine(db_url, 5)
    factory = make_sessionmaker(engine)
    with factory() as session:
        resolved = integrations.resolve_key(session, key)
    assert resolved is not None
    return w.Writer(factory, Options(), "login", "host", Metrics()), key, resolved, engine


def _pd_item(key: str, dedup_key: str) -> tuple:
    """A PagerDuty event for ACME-MYS as the request thread queues it."""
    from nocctl.services.ingest import formats

    event = pd_event(key, dedup_key, "ACME-MYS")
    del event["routing_key"]
    [(_, record)] = formats.records_with_items(event, "pagerduty")
    return (record, dedup_key, 1, json.dumps(event))


def test_a_bug_reached_by_one_request_of_a_group_fails_that_request_alone(db_url):
    from nocctl.server import writer as w

    writer, key, resolved, engine = _writer(db_url)
    record, _, count, body = _pd_item(key, "bug-good")
    good = w.Job(key, resolved, "good", [(record, "good", count, body)])
    broken = w.Job(key, resolved, "broken", [("an item the pipeline cannot unpack",)])
    try:
        writer.write([good, broken])
    finally:
        engine.dispose()
    assert good.outcome is not None and good.outcome.status == w.OK
    assert broken.outcome is not None and broken.outcome.status == w.INTERNAL
    assert _stored(db_url, "bug-%") == {"bug-good": (1, 0)}


def test_a_run_that_goes_on_reads_the_units_it_knew_again(db_url, tmp_path):
    """The writer's next run of an integration looks up the sites the previous run knew in
    its first group: a site moved to another client meanwhile is placed on its new client."""
    from nocctl.server import writer as w

    writer, key, resolved, engine = _writer(db_url)

    def send(dedup_key: str) -> w.Job:
        job = w.Job(key, resolved, dedup_key, [_pd_item(key, dedup_key)])
        writer.write([job])
        assert job.outcome is not None and job.outcome.status == w.OK, job.outcome
        return job

    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps({"sites": [{"code": "ACME-MYS", "name": "Mysuru", "client": "INITECH"}]}))
    try:
        send("carry-1")
        previous = writer.runs[key]
        assert previous.ingest is not None and "ACME-MYS" in previous.ingest.units
        nocctl(db_url, "org", "import", str(moved))
        previous.until = 0  # the run is over: the next group begins another
        send("carry-2")
        assert writer.runs[key] is not previous and writer.runs[key].units == ["ACME-MYS"]
    finally:
        engine.dispose()
    clients = dict(rows(db_url, "SELECT a.dedup_key, c.code FROM alert a JOIN business_unit c ON c.id = a.client_id"
                                " WHERE a.dedup_key LIKE 'carry-%'"))
    assert clients == {"carry-1": "ACME", "carry-2": "INITECH"}
