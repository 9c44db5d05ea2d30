"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager 0.25, with amtool) in
front of a real `nocctl serve` process: alerts pushed through Alertmanager's API reach
nocctl by its webhook (fire, repeats without twins, resolve), and `nocctl alertmanager
sync` does what the webhook cannot (silence → SUPPRESSED, silence expired → NEW, an alert
that ended while silenced → RESOLVED). Both databases.

The binary is looked for at /usr/bin/prometheus-alertmanager (`.ci/run` installs the
package): under CI=true a missing binary fails these tests, elsewhere they are skipped."""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest_helpers import ORG, rows
from nocctl.services.ingest.formats import am_fingerprint
from serve_helpers import NOCCTL, Server, clean_env, free_port

pytestmark = pytest.mark.slow

BINARY = Path("/usr/bin/prometheus-alertmanager")
AMTOOL = Path("/usr/bin/amtool")
IN_CI = os.environ.get("CI") == "true"
CONFIG = """\
route:
  receiver: nocctl
  group_by: [alertname, instance]  # one group per alert: each is notified on its own
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: nocctl
    webhook_configs:
      - url: {url}/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {key}
"""


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s still waiting for {what}")
        time.sleep(0.1)


class Alertmanager:
    """prometheus-alertmanager on a free loopback port, clustering off, its own storage."""

    def __init__(self, tmp: Path, config: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "alertmanager.yml").write_text(config)
        self.log_path = tmp / "alertmanager.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(BINARY), f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for("Alertmanager to be ready", self._ready, timeout=30)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Alertmanager exited {self.process.returncode}: {self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def push(self, *alerts: dict[str, Any]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        self.call("POST", "/api/v2/alerts", list(alerts))

    def amtool(self, *args: str) -> str:
        done = subprocess.run([str(AMTOOL), f"--alertmanager.url={self.url}", *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def webhook_notifications(self) -> tuple[int, int]:
        """(notifications sent, failed) to the webhook, from Alertmanager's own /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        sent = failed = 0.0
        for line in text.splitlines():
            if 'integration="webhook"' not in line:
                continue
            if line.startswith("alertmanager_notifications_total"):
                sent += float(line.rsplit(" ", 1)[1])
            elif line.startswith("alertmanager_notifications_failed_total"):
                failed += float(line.rsplit(" ", 1)[1])
        return int(sent), int(failed)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def binaries() -> None:
    missing = [str(p) for p in (BINARY, AMTOOL) if not p.exists()]
    if missing:
        message = (f"{', '.join(missing)} not installed: these tests run a real Alertmanager"
                   " (apt-get install prometheus-alertmanager; .ci/run does)")
        if IN_CI:
            pytest.fail(message + " (CI=true: this must not be skipped)")
        pytest.skip(message)


def nocctl(db_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOCCTL, "--db", db_url, *args], capture_output=True, text=True, env=clean_env(tmp),
                          timeout=60)


@pytest.fixture
def stack(binaries, db_url, tmp_path) -> Iterator[tuple[Alertmanager, Callable[..., Any]]]:
    """The example org, an alertmanager integration for client ACME, `nocctl serve`, and an
    Alertmanager whose webhook posts to it with the integration's key as bearer token.
    Yields the Alertmanager and `sync(*args)` (the summary of `nocctl alertmanager sync`)."""
    for args in (("init",), ("org", "import", str(ORG))):
        assert nocctl(db_url, tmp_path, *args).returncode == 0
    added = nocctl(db_url, tmp_path, "integration", "add", "prom", "--format", "alertmanager", "--client", "ACME")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    server = Server(db_url, tmp_path).start()
    am = Alertmanager(tmp_path, CONFIG.format(url=server.url, key=key))

    def sync(*args: str) -> dict[str, int]:
        done = nocctl(db_url, tmp_path, "alertmanager", "sync", "--url", am.url, "--integration", "prom", "--json",
                      *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    try:
        yield am, sync
    finally:
        am.stop()
        server.stop()


def host(instance: str, name: str = "HostDown") -> dict[str, str]:
    return {"alertname": name, "instance": instance, "client": "ACME", "site": "ACME-BLR-WF", "severity": "critical"}


def firing(labels: dict[str, str], starts: datetime) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": f"{labels['instance']} is down"}, "startsAt": iso(starts)}


def ended(labels: dict[str, str], starts: datetime) -> dict[str, Any]:
    """The alert again, with endsAt in the past: resolved."""
    return firing(labels, starts) | {"endsAt": iso(datetime.now(UTC) - timedelta(seconds=1))}


def alerts_of(db_url: str, labels: dict[str, str]) -> list[tuple]:
    return rows(db_url, "SELECT status, source, duplicate_count, resolved_at, time_to_resolve FROM alert"
                        " WHERE dedup_key = :k ORDER BY id", k="am:" + am_fingerprint(labels))


def status_of(db_url: str, labels: dict[str, str]) -> str | None:
    found = alerts_of(db_url, labels)
    return found[-1][0] if found else None


def test_alertmanagers_webhook_fires_repeats_without_twins_and_resolves(stack, db_url):
    am, _ = stack
    a = host("db1:9100")
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    am.push(firing(a, starts))
    wait_for("the alert to arrive by the webhook", lambda: status_of(db_url, a) == "NEW")
    # Alertmanager repeats the notification every repeat_interval: still one alert.
    sent = wait_for("two repeats", lambda: am.webhook_notifications()[0] >= 3 and am.webhook_notifications())
    assert sent[1] == 0, "the webhook refused a notification"
    am.push(firing(a, starts))  # Prometheus re-sends it: the same alert
    [(status, source, *_)] = alerts_of(db_url, a)
    assert (status, source) == ("NEW", "alertmanager")
    am.push(ended(a, starts))
    wait_for("the resolve to arrive by the webhook", lambda: status_of(db_url, a) == "RESOLVED")
    [(status, _, _, resolved_at, seconds)] = alerts_of(db_url, a)  # resolved at endsAt: about 3 minutes in
    assert 175 <= seconds <= 200, (resolved_at, seconds)
    assert am.webhook_notifications()[1] == 0


def test_sync_suppresses_what_alertmanager_silences_brings_it_back_and_resolves_what_vanished(stack, db_url):
    am, sync = stack
    b, c = host("db2:9100"), host("db3:9100")
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    am.push(firing(b, starts), firing(c, starts))
    wait_for("both alerts by the webhook", lambda: status_of(db_url, b) == status_of(db_url, c) == "NEW")

    silence = am.amtool("silence", "add", "instance=db2:9100", "--duration=1h", "--comment=disk swap",
                        "--author=noc")
    assert sync("--settle", "0") == {"reported": 2, "suppressed": 1, "unsuppressed": 0, "resolved": 0,
                                     "unchanged": 1}
    assert (status_of(db_url, b), status_of(db_url, c)) == ("SUPPRESSED", "NEW")
    (meta,), = rows(db_url, "SELECT metadata FROM alert WHERE dedup_key = :k", k="am:" + am_fingerprint(b))
    meta = meta if isinstance(meta, dict) else json.loads(meta)
    assert meta["status"]["silencedBy"] == [silence] and meta["silencedUntil"] > iso(datetime.now(UTC))

    am.amtool("silence", "expire", silence)
    assert sync("--settle", "0")["unsuppressed"] == 1
    assert status_of(db_url, b) == "NEW"

    # c is silenced, then ends: Alertmanager's webhook never says so (its issue #226).
    am.amtool("silence", "add", "instance=db3:9100", "--duration=1h", "--comment=reboot", "--author=noc")
    assert sync("--settle", "0")["suppressed"] == 1
    am.push(ended(c, starts))
    wait_for("c to leave Alertmanager's array",
             lambda: all(x["labels"]["instance"] != "db3:9100" for x in am.call("GET", "/api/v2/alerts")))
    time.sleep(2.5)  # a few group intervals: a resolved notification, were there one, would be in
    assert status_of(db_url, c) == "SUPPRESSED"
    # Alertmanager has been up for seconds: by default its vanished alerts wait (--settle 5m).
    assert sync()["resolved"] == 0
    assert sync("--settle", "0") == {"reported": 1, "suppressed": 0, "unsuppressed": 0, "resolved": 1,
                                     "unchanged": 1}
    assert (status_of(db_url, b), status_of(db_url, c)) == ("NEW", "RESOLVED")
    audited = rows(db_url, "SELECT action FROM audit_log WHERE target_type = 'alert' AND actor_id IS NULL"
                           " ORDER BY id")
    assert [a for (a,) in audited] == ["SUPPRESS", "UNSUPPRESS", "SUPPRESS", "RESOLVE"]
