"""`nocctl ingest` keeps each key's events in their order inside a batch (the pipeline's
rounds): a key resolved and triggered again in one batch re-opens, acknowledge then trigger
is a duplicate of the acknowledged alert, other keys are neither reordered nor lost, many
batches end as one record at a time would, two processes on the same keys make one alert
per key, and a maintenance window that starts mid-batch holds only what fired inside it."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest_helpers import ORG, alert, ndjson, rows

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SITES = ["ACME-BLR-WF", "ACME-MYS", "GLOBEX-PNQ", "INITECH-HYD"]


@pytest.fixture
def noc(admin_cli):
    """An initialised database with the example organisation."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def at(seconds: int) -> str:
    """The record time `seconds` after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def instant(value) -> datetime:
    """A stored instant as an aware UTC datetime (SQLite gives text without an offset)."""
    value = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def trigger(key: str, seconds: int, site: str = "ACME-BLR-WF", **extra) -> dict:
    return alert(dedup_key=key, entity=key, site=site, at=at(seconds), **extra)


def close(action: str, key: str, seconds: int) -> dict:
    """An acknowledge or resolve event naming its key alone."""
    return {"action": action, "dedup_key": key, "occurred_at": at(seconds)}


def ingest(noc, *records: dict, batch_size: int | None = None) -> dict:
    args = ("--batch-size", str(batch_size)) if batch_size else ()
    result = noc("ingest", "--json", *args, input=ndjson(*records))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def history(db_url: str) -> dict[str, list[tuple]]:
    """dedup key -> its alerts in the order they were opened: (status, duplicate_count,
    first_seen_at, last_seen_at, resolved_at), the instants as aware datetimes."""
    found: dict[str, list[tuple]] = {}
    for key, status, count, first, last, resolved in rows(
            db_url, "SELECT dedup_key, status, duplicate_count, first_seen_at, last_seen_at, resolved_at FROM alert"
                    " ORDER BY dedup_key, id"):
        found.setdefault(key, []).append(
            (status, count, instant(first), instant(last), None if resolved is None else instant(resolved)))
    return found


def t(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---------------------------------------------------------------- one key re-opening inside one batch

def test_resolve_then_trigger_in_one_batch_opens_a_second_alert(noc, db_url):
    """A device that recovers and fails again within one batch is two alerts, the second
    active: the failure after the recovery must not be swallowed by the resolved alert."""
    summary = ingest(noc, trigger("pump-7", 0), trigger("pump-7", 60), close("resolve", "pump-7", 120),
                     trigger("pump-7", 180), trigger("pump-7", 240))
    assert summary == {"received": 5, "created": 2, "deduplicated": 2, "suppressed": 0, "resolved": 1,
                       "acknowledged": 0, "replayed": 0, "unmatched": 0, "rejected": 0}
    assert history(db_url) == {"pump-7": [("RESOLVED", 1, t(0), t(60), t(120)), ("NEW", 1, t(180), t(240), None)]}
    assert rows(db_url, "SELECT time_to_resolve FROM alert ORDER BY id") == [(120,), (None,)]


def test_three_openings_of_one_key_amid_other_keys_in_one_batch(noc, db_url):
    """Trigger, resolve, trigger, resolve, trigger of one key, with other keys firing between
    them: three alerts for the key (two resolved), and every other key one alert with all its
    occurrences counted, not reordered into another key's round or lost."""
    summary = ingest(noc,
                     trigger("door-1", 0), trigger("fan-2", 5, site="ACME-MYS"),
                     trigger("door-1", 10), trigger("ups-3", 15, site="GLOBEX-PNQ"),
                     close("resolve", "door-1", 20), trigger("fan-2", 25, site="ACME-MYS"),
                     trigger("door-1", 30), trigger("ups-3", 35, site="GLOBEX-PNQ"),
                     close("resolve", "door-1", 40), trigger("fan-2", 45, site="ACME-MYS"),
                     trigger("door-1", 50), trigger("door-1", 55), trigger("fan-2", 60, site="ACME-MYS"),
                     trigger("link-4", 65), close("resolve", "link-4", 70))
    assert summary == {"received": 15, "created": 6, "deduplicated": 6, "suppressed": 0, "resolved": 3,
                       "acknowledged": 0, "replayed": 0, "unmatched": 0, "rejected": 0}
    assert history(db_url) == {
        "door-1": [("RESOLVED", 1, t(0), t(10), t(20)), ("RESOLVED", 0, t(30), t(30), t(40)),
                   ("NEW", 1, t(50), t(55), None)],
        "fan-2": [("NEW", 3, t(5), t(60), None)],
        "ups-3": [("NEW", 1, t(15), t(35), None)],
        "link-4": [("RESOLVED", 0, t(65), t(65), t(70))],
    }


def test_acknowledge_then_trigger_in_one_batch_is_a_duplicate_of_the_acknowledged_alert(noc, db_url):
    """Someone acknowledged the alert and it fires again: still the one alert, still
    ACKNOWLEDGED, the repeat counted. lifecycle: ACKNOWLEDGED is active (only RESOLVED is
    not), so the trigger meets it in the upsert; the upsert moves only SUPPRESSED → NEW
    (ALERT_SURFACE) or a sender-muted unacknowledged alert → SUPPRESSED (ALERT_HOLD), so the
    engineer's acknowledgement stays, as it does when the repeat comes in a later run."""
    summary = ingest(noc, trigger("cam-9", 0), close("acknowledge", "cam-9", 60), trigger("cam-9", 120),
                     trigger("other", 130))
    assert summary == {"received": 4, "created": 2, "deduplicated": 1, "suppressed": 0, "resolved": 0,
                       "acknowledged": 1, "replayed": 0, "unmatched": 0, "rejected": 0}
    assert history(db_url) == {"cam-9": [("ACKNOWLEDGED", 1, t(0), t(120), None)],
                               "other": [("NEW", 0, t(130), t(130), None)]}
    assert rows(db_url, "SELECT time_to_ack FROM alert WHERE dedup_key = 'cam-9'") == [(60,)]
    # Then acknowledge, resolve and trigger again in one batch: the acknowledged alert is
    # resolved (its acknowledgement kept) and the trigger opens a fresh NEW one.
    summary = ingest(noc, close("acknowledge", "cam-9", 150), close("resolve", "cam-9", 180), trigger("cam-9", 200))
    assert (summary["created"], summary["resolved"], summary["unmatched"]) == (1, 1, 1)  # already acknowledged
    assert history(db_url)["cam-9"] == [("RESOLVED", 1, t(0), t(120), t(180)), ("NEW", 0, t(200), t(200), None)]
    assert rows(db_url, "SELECT time_to_ack, time_to_resolve FROM alert WHERE dedup_key = 'cam-9' ORDER BY id") == [
        (60, 180), (None, None)]


# ---------------------------------------------------------------- many keys, many batches

ACKABLE = ("NEW", "ESCALATED", "ASSIGNED")


def reference(records: list[dict]) -> tuple[dict[str, list[tuple]], dict[str, int]]:
    """What applying the records one at a time gives: per key its alerts (as `history`),
    and the summary's counts."""
    alerts: dict[str, list[list]] = {}
    counts = dict.fromkeys(("created", "deduplicated", "resolved", "acknowledged", "unmatched"), 0)
    for record in records:
        key, when = record["dedup_key"], datetime.fromisoformat(record["occurred_at"])
        mine = alerts.setdefault(key, [])
        active = mine[-1] if mine and mine[-1][0] != "RESOLVED" else None
        action = record.get("action", "trigger")
        if action == "trigger":
            if active is None:
                mine.append(["NEW", 0, when, when, None])
                counts["created"] += 1
            else:
                active[1] += 1
                active[3] = max(active[3], when)
                counts["deduplicated"] += 1
        elif action == "acknowledge" and active is not None and active[0] in ACKABLE:
            active[0] = "ACKNOWLEDGED"
            counts["acknowledged"] += 1
        elif action == "resolve" and active is not None:
            active[0], active[4] = "RESOLVED", when
            counts["resolved"] += 1
        else:
            counts["unmatched"] += 1
    return {key: [tuple(a) for a in mine] for key, mine in alerts.items() if mine}, counts


def test_many_keys_reopening_across_many_batches_end_as_one_record_at_a_time(noc, db_url):
    """400 records of 25 keys that flap (trigger, acknowledge, resolve, trigger again) in
    batches of 50: every key's alerts, statuses and counts are those of applying the records
    one at a time, and so is the summary."""
    chance = random.Random(20260301)
    keys = [f"flap-{n:02d}" for n in range(25)]
    site = {key: SITES[n % len(SITES)] for n, key in enumerate(keys)}
    records = []
    for i in range(400):
        key = chance.choice(keys)
        action = chance.choices(["trigger", "resolve", "acknowledge"], weights=[6, 3, 1])[0]
        records.append(trigger(key, 7 * i, site=site[key]) if action == "trigger" else close(action, key, 7 * i))
    # The input must exercise what is under test: keys re-opened inside one batch.
    reopened = 0
    for start in range(0, len(records), 50):
        closed: set[str] = set()
        for record in records[start:start + 50]:
            if record.get("action") == "resolve":
                closed.add(record["dedup_key"])
            elif "action" not in record and record["dedup_key"] in closed:
                closed.discard(record["dedup_key"])
                reopened += 1
    assert reopened >= 40

    summary = ingest(noc, *records, batch_size=50)
    expected, counts = reference(records)
    assert summary == counts | {"received": 400, "suppressed": 0, "replayed": 0, "rejected": 0}
    found = history(db_url)
    assert {k: len(v) for k, v in found.items()} == {k: len(v) for k, v in expected.items()}
    assert found == expected
    assert max(len(v) for v in found.values()) >= 5  # keys re-opened many times


# ---------------------------------------------------------------- the same keys in two processes at once

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env["NOC_CONFIG"] = os.devnull
    return env


def _open_for_writing(path, proc: subprocess.Popen, deadline: float) -> int:
    """The FIFO's write end, once `proc` has opened it for reading (it then waits for data)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "nocctl ingest never opened its input"
            time.sleep(0.01)
            continue
        os.set_blocking(fd, True)
        return fd


@pytest.mark.slow
def test_two_processes_ingesting_events_of_the_same_keys_at_once(noc, db_url, tmp_path):
    """Two senders report the same 20 devices at the same moment, each its own events: one
    active alert per device, every trigger counted once, first and last seen across both."""
    keys = [f"dev-{n:02d}" for n in range(20)]
    inputs = []
    for p in range(2):
        lines = [json.dumps(trigger(keys[i % 20], 2 * i + p, site=SITES[i % 4], event_id=f"p{p}-{i}"))
                 for i in range(200)]
        inputs.append(("\n".join(lines) + "\n").encode())
    # Each process reads a FIFO: both block opening it until the test writes, so both start
    # on their input together, whichever process was quicker to start.
    fifos = [tmp_path / f"in-{p}.ndjson" for p in range(2)]
    procs = []
    for fifo in fifos:
        os.mkfifo(fifo)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "nocctl", "--db", db_url, "ingest", str(fifo), "--json", "--batch-size", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()))
    try:
        deadline = time.monotonic() + 60
        ends = [_open_for_writing(fifo, proc, deadline) for fifo, proc in zip(fifos, procs, strict=True)]
        writers = [threading.Thread(target=lambda fd=fd, data=data: (os.write(fd, data), os.close(fd)))
                   for fd, data in zip(ends, inputs, strict=True)]
        for writer in writers:
            writer.start()
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
        for writer in writers:
            writer.join()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for code, _, err in results:
        assert code == 0, err
        assert "error" not in err.lower(), err
    summaries = [json.loads(out) for _, out, _ in results]
    assert sum(s["created"] for s in summaries) == 20
    assert sum(s["deduplicated"] for s in summaries) == 400 - 20
    assert sum(s["received"] for s in summaries) == 400
    assert all(s["replayed"] == s["rejected"] == s["unmatched"] == 0 for s in summaries)
    # dev-NN: records i = NN, NN+20, … of both inputs, at 2i and 2i+1 seconds
    assert history(db_url) == {key: [("NEW", 19, t(2 * n), t(2 * (n + 180) + 1), None)]
                               for n, key in enumerate(keys)}


# ---------------------------------------------------------------- a maintenance window starting mid-batch

WINDOW_NOW = "2026-03-07T10:30:00Z"


def maintenance_rows(db_url: str) -> dict[str, tuple]:
    """dedup key -> (status, maintenance_window_id, duplicate_count) of its one alert."""
    found = rows(db_url, "SELECT dedup_key, status, maintenance_window_id, duplicate_count FROM alert")
    assert len({r[0] for r in found}) == len(found)
    return {key: (status, window, count) for key, status, window, count in found}


def holds(db_url: str) -> list[tuple]:
    """The SUPPRESS audit rows: (alert id, the window they name)."""
    out = []
    for target, raw in rows(db_url, "SELECT target_id, details FROM audit_log WHERE action = 'SUPPRESS' ORDER BY id"):
        details = json.loads(raw) if isinstance(raw, str) else raw
        out.append((int(target), details["maintenance_window_id"]))
    return out


def alert_id(db_url: str, key: str) -> int:
    ((found,),) = rows(db_url, "SELECT id FROM alert WHERE dedup_key = :key", key=key)
    return found


@pytest.fixture
def window(noc, monkeypatch):
    """The clock at WINDOW_NOW; a window over ACME-BLR-WF from 10:00 to 12:00 of that day."""
    monkeypatch.setenv("NOC_NOW", WINDOW_NOW)
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--start", "2026-03-07T10:00:00Z",
                 "--end", "2026-03-07T12:00:00Z", "--suppress-all", "--reason", "generator swap")
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def on_window_day(key: str, clock: str) -> dict:
    return alert(dedup_key=key, entity=key, at=f"2026-03-07T{clock}:00Z")


def test_a_window_starting_mid_batch_holds_only_alerts_that_fired_inside_it(noc, db_url, window):
    """In one batch with records from before and after the window's start: the alert that
    fired only inside the window is held (SUPPRESSED, audited); one that was already firing
    before the window started stays in front of the NOC (NEW), whichever record came first."""
    summary = ingest(noc, on_window_day("straddle", "09:45"), on_window_day("held", "10:05"),
                     on_window_day("straddle", "10:10"), on_window_day("late-early", "10:12"),
                     on_window_day("held", "10:15"), on_window_day("straddle", "10:20"),
                     on_window_day("late-early", "09:50"))  # arrives last, happened before the start
    assert (summary["created"], summary["suppressed"], summary["deduplicated"]) == (2, 1, 4)
    assert maintenance_rows(db_url) == {"held": ("SUPPRESSED", window, 1), "straddle": ("NEW", None, 2),
                                        "late-early": ("NEW", None, 1)}
    assert holds(db_url) == [(alert_id(db_url, "held"), window)]


def test_an_alert_firing_before_a_window_stays_new_when_it_repeats_inside_it_in_a_later_run(noc, db_url, window):
    """The same records split over two runs: the alert opened before the window started is
    NEW, and its repeats inside the window (next run) count but do not hold it: the NOC
    already has it in front of them. Same end state as one batch."""
    first = ingest(noc, on_window_day("straddle", "09:45"))
    assert (first["created"], first["suppressed"]) == (1, 0)
    assert maintenance_rows(db_url) == {"straddle": ("NEW", None, 0)}
    second = ingest(noc, on_window_day("straddle", "10:10"), on_window_day("straddle", "10:20"))
    assert (second["created"], second["suppressed"], second["deduplicated"]) == (0, 0, 2)
    assert maintenance_rows(db_url) == {"straddle": ("NEW", None, 2)}
    assert holds(db_url) == []
