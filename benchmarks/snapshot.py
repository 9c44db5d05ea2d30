"""Snapshot-pass benchmark (issue #8): `nocctl snapshot run` end to end over 1M feed records.

Setup (not measured): `nocctl db upgrade`, `init`, `org import` of 1,000 clients × 10 sites
(200 cities in 25 states, 500 people who own the clients and are in charge of the sites),
10 clients (100 sites, 1%) under a suppress-all maintenance window, then 1,000,000 feed
records bulk-loaded with plain driver SQL (PostgreSQL `COPY`, SQLite `executemany` in
100k-row transactions) and ANALYZE of every table. Per site 100 records: 30 tickets, 20
work orders, 20 attendance shifts (8 of the previous shift, 8 of the current one, 4 of the
next; each site's shifts start at its own minute), 15 devices, 10 geofence and 5 security
events (the events over the last 7 days), stored in a scattered order (not grouped by site
or kind; `--layout by-kind`: one kind after the other), 2% of the tickets and work orders
client-level. About 2% of the records hold a derived-alert condition at --now (see
`census`): 20% of tickets open, 8% of those overdue and 3% escalated; 23% of work orders
pending, 7% of those overdue; 2.5% of devices offline, 2% under the sync-health threshold;
3% of the current shifts without a check-in, 5% late.

Measured, on each backend, on a fresh copy of that database per repeat (PostgreSQL: CREATE
DATABASE … TEMPLATE; SQLite: the backup API; the feed table read once first, as the pass five
minutes earlier would have), `nocctl snapshot run --now T --json` as a subprocess with the
default configuration, interpreter start-up included:
  1. first run at T — writes 11,000 snapshots and raises the derived alerts through ingest;
  2. re-run of the same window — must write nothing (checked in the JSON and by a census of
     the tables the pass writes);
  3. 1% of the tickets (3,000 open ones) closed in the feed (bulk UPDATE, setup; on
     PostgreSQL also ANALYZE of the tables the first run filled, standing in for autovacuum,
     which is off on the bench server), then the next window (T + 5m) — 11,000 snapshots, the
     closed tickets' alerts resolved, and what the clock changed (tickets falling due, shifts
     changing).

    python benchmarks/snapshot.py [--records N] [--clients N] [--sites-per-client N]
                                  [--only sqlite|postgresql] [--layout scattered|by-kind]
                                  [--repeat N] [--profile DIR]
                                  [--statements DIR] [--keep] [--baseline DIR]
                                  [--pg postgresql://postgres@127.0.0.1:5432/postgres]

--baseline DIR (repeatable) also measures the nocctl of another code tree (DIR holds its `nocctl` package,
e.g. `git archive OLD nocctl | tar -x -C DIR`) in the same run: each repeat runs the three
steps for both trees, each on its own fresh copy, in alternating order, and the summary gives
the medians and ranges of both, with the load average seen at each step. The trees run with
PYTHONPATH set to them and a working directory outside any checkout.

--profile DIR runs every measured subprocess under cProfile (DIR/BACKEND-STEP-N.prof; the
times printed then include the profiler's overhead). --statements DIR (PostgreSQL) then runs
steps 1 and 3 once more in-process on a copy, timing every SQL statement and the pass's
phases (nocctl's functions wrapped in this process, its code unchanged), and again on another
copy taking EXPLAIN (ANALYZE, BUFFERS) of the slowest statements, each in a savepoint rolled
back just before the statement runs (so in the state it meets): DIR/postgresql-STEP-statements.txt.
Prints one line per measurement, then medians and ranges; drops every database it made
(unless --keep).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loading import NOCCTL, Database, bulk_load, directory, large_organisation, nocctl, prepare

NOW = datetime(2026, 3, 2, 11, 7, 30, tzinfo=UTC)  # window [11:00, 11:05)
NEXT = NOW + timedelta(minutes=5)  # window [11:05, 11:10)
CLOSED_AT = NOW + timedelta(minutes=2)
TARGET_PG = 5.0
PEOPLE = 500
MAINTENANCE_CLIENTS = 10  # C0007, C0107, …: one in a hundred

FEED_COLUMNS = ("tenant_id", "kind", "external_id", "client_id", "site_id", "updated_at", "received_at", "status",
                "priority", "title", "opened_at", "due_at", "closed_at", "escalated", "person", "people_group",
                "shift_start", "shift_end", "checked_in_at", "last_seen_at", "offline_after", "sync_health",
                "occurred_at", "event_type", "severity")
# Share of each site's records by kind (cumulative bounds).
KINDS = (("ticket", 0.30), ("work_order", 0.50), ("attendance", 0.70), ("device", 0.85), ("geofence", 0.95),
         ("security", 1.00))
PRIORITIES, PRIORITY_WEIGHTS = ("P1", "P2", "P3", "P4"), (5, 15, 50, 30)
SLA_HOURS = {"P1": 4, "P2": 8, "P3": 24, "P4": 72}
TICKET_TITLES = ("AC not cooling", "Lift stuck between floors", "CCTV camera down", "Water leakage in basement",
                 "Access card reader fault", "Guard absent at gate 2", "DG set not starting", "Housekeeping complaint")
WORK_ORDER_TITLES = ("PPM: DG set", "PPM: HVAC filters", "Fire extinguisher refill", "Pest control",
                     "Deep cleaning", "UPS battery check")
GROUPS, GROUP_WEIGHTS = ("guards", "housekeeping", "technicians"), (60, 25, 15)
SECURITY_EVENTS = ("DOOR_FORCED", "TAILGATING", "BADGE_REJECTED", "CAMERA_TAMPER", "INTRUSION_ALARM")
SECURITY_SEVERITIES, SECURITY_WEIGHTS = ("LOW", "MEDIUM", "HIGH", "CRITICAL"), (50, 30, 15, 5)
SHIFT = timedelta(hours=8)
MINUTE = timedelta(minutes=1)


def _coprime_step(n: int) -> int:
    step = 7_919_993  # any step coprime to n makes i -> i·step mod n a permutation
    while math.gcd(step, n) != 1:
        step += 2
    return step


def _kind(slot: int, per_site: int) -> tuple[str, int, int]:
    """The kind of a site's record number `slot`, its number among the site's records of that
    kind, and how many of that kind a site has."""
    low = 0
    for kind, bound in KINDS:
        high = round(bound * per_site)
        if slot < high:
            return kind, slot - low, high - low
        low = high
    raise AssertionError(slot)


def feed_rows(records: int, tenant_id: int, sites: list[tuple[int, int]], layout: str = "scattered",
              seed: int = 42) -> Iterator[tuple]:
    """`records` feed rows (tuples in FEED_COLUMNS order, aware datetimes), deterministic.
    Position `pos` (0..records-1) is site pos % sites, record pos // sites of that site; the
    rows are stored in the order of a permutation of the positions ("scattered": every kind
    and site spread over the whole table) or in position order ("by-kind": one kind after the
    other, as feed-by-feed bulk ingests would first store them). Everything is as the feeds
    stood at NOW."""
    rng = random.Random(seed)
    rand, choices = rng.random, rng.choices
    n_sites = len(sites)
    per_site = records // n_sites
    if per_site * n_sites != records or per_site < 20:
        raise SystemExit(f"--records must be a multiple of the sites ({n_sites:,}), at least 20 per site")
    step = _coprime_step(records) if layout == "scattered" else 1
    now = NOW.replace(second=0)  # 11:07
    for i in range(records):
        pos = (i * step) % records
        rng.seed(seed * 1_000_000_007 + pos)  # a row's values depend on its position only, not on the layout
        s, slot = pos % n_sites, pos // n_sites
        client_id, site_id = sites[s]
        kind, k, of_kind = _kind(slot, per_site)
        status = priority = title = opened = due = closed = escalated = person = group = None
        start = end = checked = seen = offline_after = health = occurred = event = severity = None
        if kind in ("ticket", "work_order") and rand() < 0.02:
            site_id = None  # a client-level ticket or work order
        if kind == "ticket":
            external = f"TKT-{pos:07d}"
            priority = choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
            title = TICKET_TITLES[pos % len(TICKET_TITLES)]
            if rand() < 0.20:  # open
                r = rand()
                status = "OPEN" if r < 0.50 else "IN_PROGRESS" if r < 0.85 else "ON_HOLD"
                age = timedelta(minutes=10 + rand() * 5 * 24 * 60)
                opened = NOW - age
                if rand() < 0.08:
                    due = opened + age * (0.1 + 0.8 * rand())  # overdue
                else:
                    due = NOW + timedelta(minutes=1 + rand() * 3 * 24 * 60)
                escalated = rand() < 0.03
                updated = opened + (NOW - opened) * rand()
            else:
                status = "CLOSED" if rand() < 0.75 else "RESOLVED"
                opened = NOW - timedelta(hours=1 + rand() * 30 * 24)
                due = opened + timedelta(hours=SLA_HOURS[priority])
                closed = opened + (NOW - opened) * min(1.0, rand() * 0.3)
                escalated = rand() < 0.04
                updated = closed
        elif kind == "work_order":
            external = f"WO-{pos:07d}"
            title = WORK_ORDER_TITLES[pos % len(WORK_ORDER_TITLES)]
            r = rand()
            if r < 0.23:
                status = "OPEN" if r < 0.08 else "ASSIGNED" if r < 0.15 else "IN_PROGRESS"
                due = NOW - timedelta(minutes=5 + rand() * 3 * 24 * 60) if rand() < 0.07 else \
                    NOW + timedelta(minutes=10 + rand() * 7 * 24 * 60)
                updated = NOW - timedelta(minutes=rand() * 3 * 24 * 60)
            else:
                status = "COMPLETED" if r < 0.95 else "CANCELLED"
                due = NOW - timedelta(hours=1 + rand() * 60 * 24)
                closed = due - timedelta(hours=rand() * 48 - 12)
                closed = min(closed, NOW - MINUTE)
                updated = closed
        elif kind == "attendance":
            external = f"ATT-{pos:07d}"
            current_start = now - ((s * 37) % 480) * MINUTE  # this site's current shift started then
            previous, upcoming = of_kind * 2 // 5, of_kind - of_kind // 5  # 40% previous, 40% current, 20% next
            start = current_start - SHIFT if k < previous else current_start if k < upcoming else current_start + SHIFT
            end = start + SHIFT
            person = f"guard-{s:05d}-{k:02d}"
            group = choices(GROUPS, GROUP_WEIGHTS)[0]
            r = rand()
            if r < 0.03:
                checked = None  # no check-in
            elif r < 0.08:
                checked = start + timedelta(minutes=16 + rand() * 44)  # late
            else:
                checked = start + timedelta(minutes=rand() * 20 - 10)
            if checked is not None and checked > NOW:
                checked = None  # not yet
            updated = max(checked or start - SHIFT, start - SHIFT)
        elif kind == "device":
            external = f"DEV-{pos:07d}"
            r = rand()
            if r < 0.015:
                status, seen = "OFFLINE", NOW - timedelta(minutes=20 + rand() * 2 * 24 * 60)
            elif r < 0.025:
                status, seen = "ONLINE", NOW - timedelta(minutes=20 + rand() * 2 * 24 * 60)  # unseen: offline by age
            else:
                status, seen = "ONLINE", NOW - timedelta(seconds=rand() * 300)
            offline_after = 1800 if rand() < 0.10 else None
            if rand() < 0.95:
                health = round(30 + rand() * 49.9, 1) if rand() < 0.02 else round(85 + rand() * 15, 1)
            updated = seen
        else:
            occurred = NOW - timedelta(seconds=rand() * 7 * 24 * 3600)
            updated = occurred
            if kind == "geofence":
                external = f"GEO-{pos:07d}"
                r = rand()
                event = "ENTER" if r < 0.45 else "EXIT" if r < 0.90 else "BREACH"
                person = f"guard-{s:05d}-{int(rand() * 8):02d}"
            else:
                external = f"SEC-{pos:07d}"
                event = SECURITY_EVENTS[int(rand() * len(SECURITY_EVENTS))]
                severity = choices(SECURITY_SEVERITIES, SECURITY_WEIGHTS)[0]
        updated = updated.replace(microsecond=0)
        yield (tenant_id, kind, external, client_id, site_id, updated, updated, status, priority, title, _s(opened),
               _s(due), _s(closed), escalated, person, group, _s(start), _s(end), _s(checked), _s(seen), offline_after,
               health, _s(occurred), event, severity)


def _s(value: datetime | None) -> datetime | None:
    """Feeds report whole seconds."""
    return None if value is None else value.replace(microsecond=0)


# ---------------------------------------------------------------- the database, plainly

class Plain:
    """A plain driver connection to a benchmark database (SQLite instants as nocctl stores them)."""

    def __init__(self, url: str):
        self.pg = not url.startswith("sqlite")
        if self.pg:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
        else:
            import sqlite3

            self.conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)

    def ts(self, value: datetime):
        return value if self.pg else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def q(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not self.pg:
            sql = sql.replace("%s", "?")
        cur = self.conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()


def census(url: str) -> dict[str, int]:
    """What the loaded feeds hold at NOW's window end, counted plainly (each condition as
    services/snapshot.py defines it, thresholds at their defaults)."""
    db = Plain(url)
    end, start = NOW.replace(minute=5, second=0), NOW.replace(minute=0, second=0)
    e, st, g = db.ts(end), db.ts(start), db.ts(end - timedelta(minutes=15))
    open_ticket = "kind = 'ticket' AND status NOT IN ('RESOLVED', 'CLOSED')"
    rows = {
        "records": "SELECT count(*) FROM feed_record",
        "tickets open": f"SELECT count(*) FROM feed_record WHERE {open_ticket}",
        "SLA_BREACH": f"SELECT count(*) FROM feed_record WHERE {open_ticket} AND due_at < %s",
        "TICKET_ESCALATED": f"SELECT count(*) FROM feed_record WHERE {open_ticket} AND escalated",
        "work orders pending": "SELECT count(*) FROM feed_record WHERE kind = 'work_order'"
                               " AND status NOT IN ('COMPLETED', 'CANCELLED')",
        "WORK_ORDER_OVERDUE": "SELECT count(*) FROM feed_record WHERE kind = 'work_order'"
                              " AND status NOT IN ('COMPLETED', 'CANCELLED') AND due_at < %s",
        "shifts expected": "SELECT count(*) FROM feed_record WHERE kind = 'attendance' AND shift_start < %s"
                           " AND shift_end > %s",
        "ATTENDANCE_MISSING": "SELECT count(*) FROM feed_record WHERE kind = 'attendance' AND shift_start < %s"
                              " AND shift_end > %s AND (checked_in_at IS NULL OR checked_in_at >= %s)"
                              " AND shift_start <= %s",
        "devices": "SELECT count(*) FROM feed_record WHERE kind = 'device'",
        "SYNC_DEGRADED": "SELECT count(*) FROM feed_record WHERE kind = 'device' AND sync_health < 80",
        "events in the window": "SELECT count(*) FROM feed_record WHERE kind IN ('geofence', 'security')"
                                " AND occurred_at >= %s AND occurred_at < %s",
    }
    binds = {"SLA_BREACH": (e,), "WORK_ORDER_OVERDUE": (e,), "shifts expected": (e, st),
             "ATTENDANCE_MISSING": (e, st, e, g), "events in the window": (st, e)}
    out = {name: db.q(sql, binds.get(name, ()))[0][0] for name, sql in rows.items()}
    # DEVICE_OFFLINE: OFFLINE, or last seen + threshold before the window end (threshold in Python:
    # the same on both backends).
    out["DEVICE_OFFLINE"] = sum(
        1 for status, seen, after in db.q("SELECT status, last_seen_at, offline_after FROM feed_record"
                                          " WHERE kind = 'device'")
        if status == "OFFLINE" or (seen is not None and _instant(seen) + timedelta(seconds=after or 900) < end))
    # ATTENDANCE_ANOMALY: sites whose late check-ins exceed 25% of at least 4 check-ins.
    tally: dict[int, list[int]] = {}
    for site, begun, checked in db.q("SELECT site_id, shift_start, checked_in_at FROM feed_record"
                                     " WHERE kind = 'attendance' AND shift_start < %s AND shift_end > %s"
                                     " AND checked_in_at < %s", (e, st, e)):
        counts = tally.setdefault(site, [0, 0])
        counts[0] += 1
        counts[1] += _instant(checked) > _instant(begun) + timedelta(minutes=15)
    out["ATTENDANCE_ANOMALY"] = sum(1 for present, lates in tally.values() if present >= 4 and lates > 0.25 * present)
    db.close()
    return out


def _instant(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def written(url: str) -> dict[str, object]:
    """A fingerprint of everything the pass writes: a re-run must leave it unchanged."""
    db = Plain(url)
    out = {
        "snapshots": db.q("SELECT count(*), coalesce(max(id), 0) FROM snapshot")[0],
        "alerts": db.q("SELECT count(*), coalesce(max(id), 0), coalesce(sum(duplicate_count), 0),"
                       " max(last_seen_at), sum(CASE WHEN status = 'RESOLVED' THEN 1 ELSE 0 END) FROM alert")[0],
        "event keys": db.q("SELECT count(*) FROM ingest_event")[0],
        "incidents": db.q("SELECT count(*) FROM incident")[0],
        "incident links": db.q("SELECT count(*) FROM incident_alert")[0],
        "audit rows": db.q("SELECT count(*) FROM audit_log")[0],
        "notifications": db.q("SELECT count(*) FROM notification")[0],
        "rejects": db.q("SELECT count(*) FROM ingest_reject")[0],
    }
    db.close()
    return {k: tuple(str(x) for x in v) for k, v in out.items()}


def close_tickets(url: str, share: float = 0.01) -> tuple[int, int, int]:
    """Close `share` of all tickets (open ones, lowest ids: a scattered sample) in the feed at
    CLOSED_AT, as a feed update would. Returns (closed, of them overdue at NEXT's window
    end, of them escalated)."""
    db = Plain(url)
    total = db.q("SELECT count(*) FROM feed_record WHERE kind = 'ticket'")[0][0]
    n = round(total * share)
    end = db.ts(NEXT.replace(minute=10, second=0))
    ids = [r[0] for r in db.q("SELECT id FROM feed_record WHERE kind = 'ticket'"
                              f" AND status NOT IN ('RESOLVED', 'CLOSED') ORDER BY id LIMIT {n}")]
    marks = ", ".join(str(i) for i in ids)
    overdue, escalated = db.q(f"SELECT sum(CASE WHEN due_at < %s THEN 1 ELSE 0 END),"
                              f" sum(CASE WHEN escalated THEN 1 ELSE 0 END) FROM feed_record WHERE id IN ({marks})",
                              (end,))[0]
    at = db.ts(CLOSED_AT)
    if not db.pg:
        db.q("BEGIN")
    db.q(f"UPDATE feed_record SET status = 'CLOSED', closed_at = %s, updated_at = %s, received_at = %s"
         f" WHERE id IN ({marks})", (at, at, at))
    if not db.pg:
        db.q("COMMIT")
    db.close()
    return len(ids), int(overdue or 0), int(escalated or 0)


def analyze(url: str, tables: tuple[str, ...] = ()) -> None:
    """ANALYZE (the given tables, else all) — on PostgreSQL; SQLite's statistics are left as a
    running system has them (nocctl never runs ANALYZE; bulk_load ran it once after the load)."""
    if url.startswith("sqlite"):
        return
    db = Plain(url)
    db.q("ANALYZE " + ", ".join(tables))
    db.close()


def add_maintenance(url: str, env: dict, clients: int) -> None:
    """A suppress-all window over 10 clients (1% of the sites at 1,000 clients), covering both
    windows measured."""
    for c in range(MAINTENANCE_CLIENTS):
        client = f"C{c * (clients // MAINTENANCE_CLIENTS) + 7:04d}"
        done = nocctl(url, env, "-q", "maintenance", "add", "--client", client,
                      "--start", (NOW - timedelta(hours=1)).isoformat(), "--duration", "4h", "--suppress-all",
                      "--reason", "benchmark: DG set replacement")
        if done.returncode != 0:
            raise SystemExit(f"maintenance add failed ({done.returncode}): {done.stderr[-2000:]}")


# ---------------------------------------------------------------- measuring

ROOT = Path(__file__).resolve().parents[1]  # the code tree this script belongs to


def snapshot_run(url: str, env: dict, now: datetime, profile: Path | None = None, tree: Path = ROOT
                 ) -> tuple[float, dict]:
    """One `nocctl snapshot run --now NOW --json` of the code in `tree` as a subprocess:
    (seconds end to end, the JSON summary it printed)."""
    command = NOCCTL if profile is None else [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "nocctl"]
    started = time.perf_counter()
    # Outside any checkout: `python -m nocctl` imports ./nocctl first.
    done = subprocess.run(command + ["--db", url, "--log-format", "json", "snapshot", "run", "--now",
                                     now.isoformat().replace("+00:00", "Z"), "--json"],
                          env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          cwd=env.get("NOC_BENCH_CWD", "/"))
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"snapshot run failed ({done.returncode}): {done.stderr[-3000:]}")
    return elapsed, json.loads(done.stdout)


def describe(elapsed: float, s: dict) -> str:
    raised = s["alerts_created"] + s["alerts_suppressed"]
    return (f"{elapsed:.2f} s end to end (pass {s['duration_ms'] / 1000:.2f} s); snapshots written"
            f" {s['snapshots_created']:,} (kept {s['snapshots_unchanged']:,}); conditions {s['conditions']:,},"
            f" derived alerts raised {raised:,} ({s['alerts_suppressed']:,} suppressed), resolved"
            f" {s['alerts_resolved']:,}, re-sent {s['alerts_deduplicated']:,}, replayed {s['events_replayed']:,},"
            f" rejected {s['rejected']}")


def warm(url: str) -> None:
    """Read the feed table and its indexes once, as the previous pass five minutes earlier
    would have (the copy's files are then in the OS cache, as a running system's are)."""
    db = Plain(url)
    db.q("SELECT count(*), max(updated_at) FROM feed_record")
    db.q("SELECT kind, count(site_id) FROM feed_record WHERE tenant_id = 1 GROUP BY kind")
    db.close()


AUTOANALYZED = ("alert", "snapshot", "ingest_event", "incident", "incident_alert", "audit_log")
STEPS = ("first run", "re-run, same window", "next window, 1% of tickets closed")


def measure(backend: str, template: str, dbs: Database, env: dict, args, results: dict) -> None:
    trees = [("this tree", ROOT)] + [(f"baseline {tree.name}" if len(args.baseline) > 1 else "baseline", tree)
                                      for tree in args.baseline]
    for attempt in range(1, args.repeat + 1):
        for tree_name, tree in (trees if attempt % 2 else trees[::-1]):  # alternating: neither always first
            key = backend if len(trees) == 1 else f"{backend} [{tree_name}]"
            results.setdefault(key, {step: [] for step in STEPS})
            measure_once(backend, template, dbs, env, args, results[key], attempt, tree_name, tree, len(trees) > 1)


def measure_once(backend: str, template: str, dbs: Database, env: dict, args, results: dict, attempt: int,
                 tree_name: str, tree: Path, several: bool) -> None:
    url = dbs.clone(template)
    try:
        warm(url)
        tag = f"{backend} #{attempt}" + (f" [{tree_name}]" if several else "")

        def prof(step: str) -> Path | None:
            suffix = "-" + tree_name.replace(" ", "-") if several else ""
            return args.profile / f"{backend}-{step}-{attempt}{suffix}.prof" if args.profile else None

        def load() -> str:
            return f"; load {os.getloadavg()[0]:.2f}"

        elapsed, s = snapshot_run(url, env, NOW, prof("first"), tree)
        results[STEPS[0]].append((elapsed, s, os.getloadavg()[0]))
        print(f"{tag} {STEPS[0]} (--now {NOW:%H:%M:%S}): {describe(elapsed, s)}{load()}", flush=True)
        units = s["clients"] + s["sites"]
        if s["snapshots_created"] != units or s["rejected"]:
            raise SystemExit(f"{tag}: expected {units:,} snapshots and no rejects")

        before = written(url)
        elapsed, s = snapshot_run(url, env, NOW, prof("rerun"), tree)
        after = written(url)
        results[STEPS[1]].append((elapsed, s, os.getloadavg()[0]))
        same = before == after and s["snapshots_created"] == 0 and s["alerts_created"] == 0 \
            and s["alerts_suppressed"] == 0 and s["alerts_resolved"] == 0 and s["alerts_deduplicated"] == 0
        print(f"{tag} {STEPS[1]}: {describe(elapsed, s)} [{'wrote nothing' if same else 'WROTE SOMETHING'}]{load()}",
              flush=True)
        if not same:
            raise SystemExit(f"{tag}: the re-run changed the database: {before} -> {after}")

        started = time.perf_counter()
        closed, overdue, escalated = close_tickets(url)
        # What autovacuum would have done in the five minutes (it is off on the bench
        # server): analyze the tables the first run filled past the autoanalyze threshold.
        analyze(url, AUTOANALYZED)
        took = time.perf_counter() - started
        elapsed, s = snapshot_run(url, env, NEXT, prof("next"), tree)
        results[STEPS[2]].append((elapsed, s, os.getloadavg()[0]))
        print(f"{tag} {STEPS[2]} (--now {NEXT:%H:%M:%S}; {closed:,} tickets closed ({overdue} overdue,"
              f" {escalated} escalated){' and the written tables analyzed' if dbs.backend == 'postgresql' else ''}"
              f" in {took:.1f} s): {describe(elapsed, s)}{load()}", flush=True)
        if s["snapshots_created"] != units:
            raise SystemExit(f"{tag}: expected {units:,} snapshots in the next window")
    finally:
        if not args.keep:
            dbs.drop(url)
        else:
            print(f"kept {url}")


# ---------------------------------------------------------------- statement timings (in-process)

def _key(query) -> str:
    text = query if isinstance(query, str) else bytes(query).decode() if isinstance(query, (bytes, bytearray)) \
        else str(query)
    return " ".join(text.split())


class StatementLog:
    """Times every statement run through psycopg cursors in this process (PostgreSQL only:
    psycopg's execute fetches the whole result, so its time is the statement's). Statements
    whose text is in `explain` are first run as EXPLAIN (ANALYZE, BUFFERS) inside a savepoint
    that is rolled back, then for real."""

    def __init__(self, explain: set[str] | None = None):
        self.times: dict[str, list[float]] = {}
        self.explain = explain or set()
        self.plans: list[tuple[str, float, str]] = []
        self.stack: list[str] = []  # the phase of the pass running now (see in_process)
        self.phase_total: dict[str, float] = {}
        self.phase_sql: dict[str, float] = {}

    def sql(self, seconds: float) -> None:
        phase = self.stack[-1] if self.stack else "other"
        self.phase_sql[phase] = self.phase_sql.get(phase, 0.0) + seconds

    def phase(self, name: str, fn, server: bool = False):
        """`fn`, timed as phase `name` (statements inside count to it; phases do not nest);
        `server`: all of its time is the database's (a commit)."""
        def timed(*args, **kwargs):
            self.stack.append(name)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                self.phase_total[name] = self.phase_total.get(name, 0.0) + took
                if server:
                    self.sql(took)
                self.stack.pop()
        return timed

    def __enter__(self):
        import psycopg
        from psycopg import pq

        self.cls = psycopg.Cursor
        self.saved = (self.cls.execute, self.cls.executemany)
        execute, executemany = self.saved
        log = self

        def timed_execute(cur, query, params=None, **kw):
            key = _key(query)
            if key in log.explain and cur.connection.info.transaction_status == pq.TransactionStatus.INTRANS \
                    and sum(k == key for k, _, _ in log.plans) < 2:  # the first two runs of a statement
                execute(cur, "SAVEPOINT bench_explain")
                started = time.perf_counter()
                execute(cur, "EXPLAIN (ANALYZE, BUFFERS) " + (query if isinstance(query, str) else _key(query)),
                        params, **kw)
                plan = "\n".join(r[0] for r in cur.fetchall())
                log.plans.append((key, time.perf_counter() - started, plan))
                execute(cur, "ROLLBACK TO SAVEPOINT bench_explain")
            started = time.perf_counter()
            try:
                return execute(cur, query, params, **kw)
            finally:
                took = time.perf_counter() - started
                log.times.setdefault(key, []).append(took)
                log.sql(took)

        def timed_executemany(cur, query, params_seq, **kw):
            started = time.perf_counter()
            try:
                return executemany(cur, query, params_seq, **kw)
            finally:
                took = time.perf_counter() - started
                log.times.setdefault("MANY " + _key(query), []).append(took)
                log.sql(took)

        self.cls.execute, self.cls.executemany = timed_execute, timed_executemany
        return self

    def __exit__(self, *exc):
        self.cls.execute, self.cls.executemany = self.saved

    def slowest(self, n: int) -> list[tuple[str, float, int]]:
        ranked = sorted(((k, sum(v), len(v)) for k, v in self.times.items()), key=lambda r: -r[1])
        return ranked[:n]


def in_process(url: str, now: datetime, explain: set[str] | None = None) -> tuple[float, dict, StatementLog]:
    """`services.snapshot.run` in this process (imports done, engine made), statements logged."""
    import psycopg

    from nocctl.config import Settings
    from nocctl.db import make_engine
    from nocctl.services import derived
    from nocctl.services import snapshot as service
    from nocctl.services.ingest.pipeline import Ingest
    from nocctl.services.rbac import Caller

    engine = make_engine(url)
    defaults = Settings(url, "default", None, None)  # no config file: the documented defaults, typed
    config = defaults.snapshot
    caller = Caller.from_process("default")
    with StatementLog(explain) as log:
        # The pass's steps timed by wrapping them in this process (nocctl's code is unchanged).
        wrapped = [(service, "load_units", "units"), (service, "compute", "metrics (6 GROUP BY queries)"),
                   (service, "write", "snapshot insert"), (derived, "conditions", "derived: condition queries"),
                   (derived, "_derived", "derived: active-alert lookups"),
                   (derived, "_active", "derived: active-alert lookups"),
                   (Ingest, "run", "derived: ingest"), (psycopg.Connection, "commit", "commit (WAL flush)")]
        saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in wrapped]
        for owner, attr, name in wrapped:
            setattr(owner, attr, log.phase(name, getattr(owner, attr), server=attr == "commit"))
        try:
            started = time.perf_counter()
            summary = service.run(engine, config, caller, now, False, defaults.correlation_window,
                                  defaults.auto_incidents)
            elapsed = time.perf_counter() - started
        finally:
            for owner, attr, fn in saved:
                setattr(owner, attr, fn)
    log.phase_total["other"] = elapsed - sum(log.phase_total.values())
    engine.dispose()
    return elapsed, summary.as_dict(), log


def statements(backend: str, template: str, dbs: Database, args, top: int = 10) -> None:
    """The first pass and the next-window pass in-process on a copy, every SQL statement timed;
    then again on another copy with EXPLAIN (ANALYZE, BUFFERS) of the slowest `top` of each,
    taken in a savepoint just before the statement runs (so in the state it meets)."""
    if backend != "postgresql":
        print(f"{backend}: --statements times PostgreSQL only (see --profile for SQLite)")
        return
    timed: dict[str, tuple[float, dict, StatementLog]] = {}
    for _phase, explain in (("timed", None), ("explained", True)):
        url = dbs.clone(template)
        try:
            warm(url)
            for step, now in (("first", NOW), ("next", NEXT)):
                if step == "next":
                    close_tickets(url)
                    analyze(url, AUTOANALYZED)
                keys = {k for k, _, _ in timed[step][2].slowest(top)} if explain else None
                elapsed, summary, log = in_process(url, now, keys)
                if not explain:
                    timed[step] = (elapsed, summary, log)
                    continue
                first_elapsed, first_summary, first_log = timed[step]
                sql_total = sum(sum(v) for v in first_log.times.values())
                count = sum(len(v) for v in first_log.times.values())
                path = args.statements / f"{backend}-{step}-statements.txt"
                lines = [(f"{backend} {step} pass in-process: {first_elapsed:.2f} s; {count} statements,"
                          f" {sql_total:.2f} s in psycopg execute (the rest: Python); summary {first_summary}"), "",
                         "phase: seconds (of which in psycopg execute / the rest)"]
                for name, seconds in first_log.phase_total.items():
                    in_sql = first_log.phase_sql.get(name, 0.0)
                    lines.append(f"  {name:34s} {seconds:6.2f} s ({in_sql:.2f} SQL / {seconds - in_sql:.2f} Python)")
                repeated = [(k, v) for k, v in first_log.times.items() if len(v) > 10]
                if repeated:
                    lines += ["", ("statements run more than 10 times (psycopg prepares from the 6th; PostgreSQL may"
                                   " switch to a generic plan from the 11th): mean ms, runs 1-10 / 11+")]
                    lines += [f"  {1000 * sum(v[:10]) / 10:7.1f} / {1000 * sum(v[10:]) / len(v[10:]):7.1f} ms"
                              f" ×{len(v)} {k[:200]}" for k, v in repeated]
                lines.append("")
                for key, seconds, n in first_log.slowest(40):
                    lines.append(f"{seconds:8.3f} s  ×{n:<5d} {key[:400]}")
                lines.append("")
                for key, seconds, plan in log.plans:
                    lines += ["=" * 100, f"EXPLAIN (ANALYZE, BUFFERS) — {seconds:.3f} s with EXPLAIN", key[:2000], "",
                              plan, ""]
                path.write_text("\n".join(lines))
                print(f"{backend} in-process {step} pass: {first_elapsed:.2f} s, {count} statements taking"
                      f" {sql_total:.2f} s (Python and the rest {first_elapsed - sql_total:.2f} s); by phase:",
                      flush=True)
                for name, seconds in first_log.phase_total.items():
                    in_sql = first_log.phase_sql.get(name, 0.0)
                    print(f"    {name:34s} {seconds:6.2f} s ({in_sql:.2f} SQL / {seconds - in_sql:.2f} Python)",
                          flush=True)
                print("  slowest statements:", flush=True)
                for key, seconds, n in first_log.slowest(6):
                    print(f"    {seconds:6.3f} s ×{n:<4d} {key[:150]}", flush=True)
                print(f"    statements and plans: {path}", flush=True)
        finally:
            if not args.keep:
                dbs.drop(url)


def build(backend: str, args, workdir: Path, env: dict) -> tuple[Database, str]:
    dbs = Database(backend, args.pg, workdir)
    try:
        url = dbs.new()
        started = time.perf_counter()
        org = large_organisation(args.clients, args.sites_per_client, PEOPLE)
        prepare(url, workdir, env, org)
        add_maintenance(url, env, args.clients)
        organised = time.perf_counter() - started
        tenant_id, sites, _ = directory(url)
        rows = feed_rows(args.records, tenant_id, sites, args.layout)
        seconds = bulk_load(url, [("feed_record", FEED_COLUMNS, rows)])
        started = time.perf_counter()
        analyze(url)  # every table: bulk_load analyzed the feeds, and autovacuum is off on the bench server
        seconds += time.perf_counter() - started
        counts = census(url)
    except BaseException:
        dbs.drop_all()
        raise
    print(f"{backend}: layout {args.layout}; setup: init + org import of {args.clients:,} clients ×"
          f" {args.sites_per_client} sites +"
          f" {MAINTENANCE_CLIENTS} maintenance windows in {organised:.1f} s; {args.records:,} feed records"
          f" loaded + ANALYZE in {seconds:.1f} s", flush=True)
    print(f"{backend}: feeds at the first window's end: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
          flush=True)
    return dbs, url


def summarise(results: dict, records: int) -> None:
    print("\nmedians [ranges] of end-to-end seconds:")
    for backend, steps in results.items():
        for step, runs in steps.items():
            if not runs:
                continue
            times = [t for t, _, _ in runs]
            passes = [s["duration_ms"] / 1000 for _, s, _ in runs]
            loads = [load for _, _, load in runs]
            s = runs[0][1]
            target = ""
            if backend.startswith("postgresql") and step != STEPS[1] and records == 1_000_000:
                target = f"; target ≤ {TARGET_PG:g} s: {'met' if statistics.median(times) <= TARGET_PG else 'MISSED'}"
            print(f"  {backend:10s} {step:36s} {statistics.median(times):6.2f} s [{min(times):.2f}–{max(times):.2f}]"
                  f" (pass {statistics.median(passes):.2f} s [{min(passes):.2f}–{max(passes):.2f}]), n={len(runs)};"
                  f" load {min(loads):.2f}–{max(loads):.2f};"
                  f" snapshots {s['snapshots_created']:,}, raised {s['alerts_created'] + s['alerts_suppressed']:,},"
                  f" resolved {s['alerts_resolved']:,}{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="Feed records  [default: 1,000,000]")
    parser.add_argument("--clients", type=int, default=1_000, help="Clients  [default: 1,000]")
    parser.add_argument("--sites-per-client", type=int, default=10, help="Sites per client  [default: 10]")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="One backend  [default: both]")
    parser.add_argument("--layout", choices=["scattered", "by-kind"], default="scattered",
                        help="Physical order of the feed rows  [default: scattered]")
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        metavar="URL", help="Server to create the benchmark databases on (dropped at the end)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="Measure N times, each on a fresh copy of the loaded database  [default: 3]")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="Run each measured pass under cProfile, writing DIR/BACKEND-STEP-N.prof")
    parser.add_argument("--statements", type=Path, metavar="DIR",
                        help="Also time every statement in-process (PostgreSQL: EXPLAIN ANALYZE of the slowest)")
    parser.add_argument("--keep", action="store_true", help="Keep the databases (their URLs are printed)")
    parser.add_argument("--baseline", type=Path, metavar="DIR", action="append", default=[],
                        help="Also measure the nocctl package in DIR, interleaved with this tree's, (repeatable)")
    args = parser.parse_args()
    args.baseline = [d.resolve() for d in args.baseline]
    for tree in args.baseline:
        if not (tree / "nocctl" / "__main__.py").is_file():
            raise SystemExit(f"--baseline {tree}: no nocctl package there")
    for d in (args.profile, args.statements):
        if d:
            d.mkdir(parents=True, exist_ok=True)

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    results: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        empty = workdir / "empty.toml"
        empty.write_text("")
        env = {k: v for k, v in os.environ.items() if k not in ("NOC_DATABASE_URL", "NOC_NOW", "NOC_TENANT")}
        env["NOC_CONFIG"] = str(empty)
        env["NOC_BENCH_CWD"] = str(workdir)
        for backend in [args.only] if args.only else ["sqlite", "postgresql"]:
            dbs, template = build(backend, args, workdir, env)
            try:
                measure(backend, template, dbs, env, args, results)
                if args.statements:
                    statements(backend, template, dbs, args)
            finally:
                if args.keep:
                    print(f"kept {template}")
                else:
                    dbs.drop_all()
    summarise(results, args.records)


if __name__ == "__main__":
    main()
