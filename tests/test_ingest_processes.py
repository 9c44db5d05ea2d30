"""Ingest under real concurrency and real crashes: separate processes, not threads."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ingest_helpers import ORG, alert, rows, state

pytestmark = pytest.mark.slow
NOCCTL = [sys.executable, "-m", "nocctl"]


def run(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env["NOC_CONFIG"] = os.devnull
    done = subprocess.run([*NOCCTL, "--db", db_url, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def setup_org(db_url: str) -> None:
    run(db_url, "init")
    run(db_url, "org", "import", str(ORG))


def spawn(db_url: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env["NOC_CONFIG"] = os.devnull
    return subprocess.Popen([*NOCCTL, "--db", db_url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


SITES = ["ACME-BLR-WF", "ACME-MYS", "GLOBEX-PNQ", "INITECH-HYD"]


def events(count: int, keys: int, timed: bool) -> str:
    out = []
    for i in range(count):
        record = alert(site=SITES[i % len(SITES)], entity=f"dev-{i % keys}",
                       at=f"2026-03-01T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
        if not timed:
            record.pop("occurred_at")
        out.append(json.dumps(record))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("timed", [True, False], ids=["with-event-keys", "without-event-keys"])
def test_eight_processes_ingesting_the_same_events(db_url, tmp_path, timed):
    """8 processes pipe the same 1,000 events at once: one active alert per key, and counts
    that add up exactly (each event once when it carries an event key; every copy otherwise)."""
    setup_org(db_url)
    data = tmp_path / "events.ndjson"
    data.write_text(events(1000, 100, timed))
    procs = [spawn(db_url, "ingest", str(data), "--json", "--batch-size", "250") for _ in range(8)]
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    summaries = [json.loads(out) for _, out, _ in results]
    keys = rows(db_url, "SELECT count(*), count(DISTINCT dedup_key) FROM alert WHERE status <> 'RESOLVED'")
    assert keys == [(100, 100)]
    total = sum(s["created"] for s in summaries)
    assert total == 100
    per_key = 10 if timed else 80  # events applied per key
    assert rows(db_url, "SELECT DISTINCT duplicate_count FROM alert") == [(per_key - 1,)]
    assert sum(s["deduplicated"] for s in summaries) == 100 * (per_key - 1)
    assert sum(s["replayed"] for s in summaries) == (7000 if timed else 0)


def _status(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return handle.read()
    except FileNotFoundError:
        return "zombie"


def test_kill_9_in_the_middle_then_rerun_equals_one_clean_run(db_url, empty_db_url, tmp_path):
    setup_org(db_url)
    data = tmp_path / "big.ndjson"
    lines = []
    for i in range(40_000):
        record = alert(site=SITES[i % len(SITES)], entity=f"dev-{i % 3000}", event_id=f"e-{i}",
                       at=f"2026-03-0{1 + i // 20000}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
        if i % 97 == 0:
            record = {
                "action": "resolve", "alert_type": record["alert_type"], "site": record["site"],
                "entity_type": "device", "entity_id": record["entity_id"], "event_id": f"e-{i}",
                "occurred_at": record["occurred_at"]}
        lines.append(json.dumps(record))
    data.write_text("\n".join(lines) + "\n")

    victim = spawn(db_url, "ingest", str(data), "--batch-size", "200")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if rows(db_url, "SELECT count(*) FROM alert")[0][0] > 0:
            break
        time.sleep(0.02)
    time.sleep(0.2)
    helpers = subprocess.run(["pgrep", "-P", str(victim.pid)], capture_output=True, text=True).stdout.split()
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL, "ingest finished before it could be killed"
    # Its reader process must not outlive it (it would keep the database connection open).
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{pid}") and "zombie" not in _status(pid) for pid in helpers):
        assert time.monotonic() < deadline, f"reader process {helpers} outlived the killed ingest"
        time.sleep(0.05)
    partial = rows(db_url, "SELECT count(*) FROM ingest_event")[0][0]
    assert 0 < partial < 40_000

    again = run(db_url, "ingest", str(data), "--json")
    assert json.loads(again.stdout)["replayed"] == partial

    setup_org(empty_db_url)
    run(empty_db_url, "ingest", str(data))
    assert state(db_url) == state(empty_db_url)
    assert rows(db_url, "SELECT count(*) FROM ingest_event") == rows(empty_db_url, "SELECT count(*) FROM ingest_event")
