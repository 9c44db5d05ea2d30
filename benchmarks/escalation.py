"""Escalation-pass benchmark (DESIGN §8): `nocctl escalate run` end to end, 1M alerts stored.

`nocctl escalate run --now T --json` as a subprocess with 1,000,000 alerts stored and 10,000
due (target ≤ 3 s), and the same with 100,000 stored / 10,000 due and 1,000,000 stored / 1,000
due to show that the cost follows the due alerts, not the stored ones — on SQLite and on
PostgreSQL, without notification channels and with one command channel. Each measurement is
followed by a re-run at the same --now (must escalate nothing).

    python benchmarks/escalation.py [--stored N --due M] [--only sqlite|postgresql]
                                    [--layout spread|recent] [--repeat N] [--profile DIR]
                                    [--baseline DIR]
                                    [--pg postgresql://postgres@127.0.0.1:5432/postgres]

--baseline DIR (repeatable) also times the nocctl of another code tree (DIR holds its `nocctl` package,
e.g. `git archive OLD nocctl | tar -x -C DIR`) on the same database in the same run: each
repeat runs both trees one after the other, in alternating order, and the medians and ranges
of both are printed at the end, with the load average seen during each measurement. The
trees run with PYTHONPATH set to them and a working directory outside any checkout.

Without --stored/--due it runs the three combinations above. The alerts are loaded with bulk
SQL (sqlite3 `executemany` in large transactions, PostgreSQL `COPY`), not through ingest;
that load is setup and is timed only for information. Prints one line per measurement; copy
the results into benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loading import COLUMNS, NOCCTL, TYPES, Database, bulk_load, directory, prepare

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-26T12:00:00Z"
CHANNEL_CONFIG = '[notify.channels.log]\ntype = "command"\ncommand = "cat > /dev/null"\n'
DEFAULT_COMBINATIONS = [(1_000_000, 10_000), (100_000, 10_000), (1_000_000, 1_000)]
SHARE_ACTIVE_NOT_DUE = 0.04  # NEW/ESCALATED whose look is not due (or never: NULL)
SHARE_ACKED = 0.05  # ACKNOWLEDGED / ASSIGNED


def _coprime_step(n: int) -> int:
    step = 7_919_993  # a prime; any step coprime to n makes i -> i·step mod n a permutation
    while math.gcd(step, n) != 1:
        step += 2
    return step


def alert_rows(stored: int, due: int, tenant_id: int, sites: list[tuple[int, int]], people: list[int],
               layout: str = "spread") -> Iterator[tuple]:
    """`stored` alert rows (tuples in COLUMNS order, aware datetimes), deterministic. Each row's
    kind comes from its position in a permutation of 0..stored-1. With layout "spread" (the
    default, the worst case for page locality) every kind is scattered over the whole table, so
    each due alert sits on a page of its own; with "recent" the rows come roughly in first-seen
    order, as ingest stores them (resolved first, the due alerts last, on adjacent pages):
      · `due` exactly: NEW, CRITICAL/HIGH, level 0, first seen 35 min – 6 h ago, next look =
        first seen (as ingest leaves it) — the built-in policy escalates each to level 1;
      · 4%: NEW/ESCALATED not due — CRITICAL/HIGH seen minutes ago or escalated 5 min ago
        (next look in the future), MEDIUM/LOW/INFO with no next look (NULL);
      · 5%: ACKNOWLEDGED (3/5) or ASSIGNED (2/5), no next look;
      · the rest (≈ 90% at 1M): RESOLVED over the last 90 days."""
    step = _coprime_step(stored)
    recent = layout == "recent"
    active_end = due + int(stored * SHARE_ACTIVE_NOT_DUE)
    acked_end = active_end + int(stored * SHARE_ACKED)
    if acked_end > stored:
        raise SystemExit(f"--due {due:,} is too many for --stored {stored:,} (at most {stored - (acked_end - due):,})")
    span = timedelta(days=90).total_seconds()
    minute = timedelta(minutes=1)
    for i in range(stored):
        pos = stored - 1 - i if recent else (i * step) % stored
        client_id, site_id = sites[(i * 31 + pos) % len(sites)]
        alert_type = TYPES[pos % len(TYPES)]
        entity = f"dev-{i % 200_000:06d}"
        key = hashlib.md5(f"{alert_type}|{site_id}|device|dev-{i}".encode()).hexdigest()
        dup = pos % 7
        ack_at = ack_by = asg_at = asg_to = esc_at = esc_to = nxt = res_at = res_by = tta = ttr = None
        level = 0
        if pos < due:
            status, severity = "NEW", ("CRITICAL", "HIGH")[pos % 2]
            first = NOW - timedelta(minutes=35 + pos % 325)
            nxt = first
        elif pos < active_end:
            r = pos - due
            if r % 2 == 0:  # CRITICAL/HIGH, look planned for later
                severity = ("CRITICAL", "HIGH")[(r // 2) % 2]
                delay = 15 if severity == "CRITICAL" else 30
                if r % 4 == 0:
                    status, first = "NEW", NOW - timedelta(minutes=r % 10)
                    nxt = first + delay * minute
                else:
                    status, level, first = "ESCALATED", 1, NOW - timedelta(hours=2)
                    esc_at, esc_to = NOW - 5 * minute, people[r % len(people)]
                    nxt = esc_at + delay * minute
            else:  # never escalated at this severity: the pass cleared the look
                status, severity = "NEW", ("MEDIUM", "LOW", "INFO")[(r // 2) % 3]
                first = NOW - timedelta(minutes=10 + r % (30 * 24 * 60))
        elif pos < acked_end:
            r = pos - active_end
            severity = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")[r % 5]
            first = NOW - timedelta(minutes=20 + r % (7 * 24 * 60))
            ack_at, ack_by = first + timedelta(minutes=3 + r % 20), people[r % len(people)]
            tta = int((ack_at - first).total_seconds())
            status = "ACKNOWLEDGED"
            if r % 5 >= 3:
                status, asg_at, asg_to = "ASSIGNED", ack_at + minute, people[(r + 1) % len(people)]
        else:
            severity = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")[pos % 5]
            status = "RESOLVED"
            first = NOW - timedelta(days=90) + timedelta(seconds=span * i / stored)
            res_at, res_by = first + timedelta(minutes=5 + pos % 240), people[pos % len(people)]
            ttr = int((res_at - first).total_seconds())
            if pos % 2:
                ack_at, ack_by = first + timedelta(minutes=2 + pos % 3), res_by
                tta = int((ack_at - first).total_seconds())
        last = res_at or ack_at or first
        yield (tenant_id, client_id, site_id, alert_type, severity, status, f"{alert_type} on {entity}", "device",
               entity, key, "bench", first, last, first, dup, ack_at, ack_by, asg_at, asg_to, esc_at, esc_to, level,
               nxt, res_at, res_by, tta, ttr)


def load(url: str, stored: int, due: int, layout: str = "spread") -> float:
    """Bulk-load the alerts, then ANALYZE. Returns the seconds taken (setup, not measured)."""
    started = time.perf_counter()
    tenant_id, sites, people = directory(url)
    bulk_load(url, [("alert", COLUMNS, alert_rows(stored, due, tenant_id, sites, people, layout))])
    return time.perf_counter() - started


def count_due(url: str) -> int:
    """Through SQLAlchemy and the model's types (so SQLite's stored text is compared with the
    bound instant exactly as the pass does)."""
    from sqlalchemy import func, select

    from nocctl.db import make_engine
    from nocctl.models import Alert

    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(Alert).where(
            Alert.status.in_(("NEW", "ESCALATED")), Alert.next_escalation_at <= NOW)).scalar_one()
    engine.dispose()
    return n


def restore(url: str) -> int:
    """Put the alerts the last pass escalated (escalated_at = NOW exactly) back as they were
    before it, so the next measurement has the same due alerts. Setup, not measured."""
    from sqlalchemy import update

    from nocctl.db import make_engine
    from nocctl.models import Alert

    engine = make_engine(url)
    with engine.begin() as conn:
        n = conn.execute(update(Alert).where(Alert.escalated_at == NOW).values(
            status="NEW", escalation_level=0, escalated_at=None, escalated_to=None,
            next_escalation_at=Alert.first_seen_at)).rowcount
    engine.dispose()
    return n


ROOT = Path(__file__).resolve().parents[1]  # the code tree this script belongs to


def escalate(url: str, env: dict, profile: Path | None = None, tree: Path = ROOT) -> tuple[float, int, dict]:
    """One `nocctl escalate run --now NOW --json` of the code in `tree` as a subprocess:
    (seconds end to end, escalations in the JSON on stdout, the summary line from stderr)."""
    command = NOCCTL if profile is None else [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "nocctl"]
    started = time.perf_counter()
    # Outside any checkout: `python -m nocctl` imports ./nocctl first.
    done = subprocess.run(command + ["--db", url, "--log-format", "json", "escalate", "run", "--now", NOW_TEXT,
                                     "--json"], env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          cwd=env.get("NOC_BENCH_CWD", "/"))
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"escalate run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = next((json.loads(line) for line in done.stderr.splitlines() if '"escalate summary"' in line), {})
    return elapsed, len(json.loads(done.stdout)), summary


def bench(backend: str, stored: int, due: int, args, workdir: Path, plain_env: dict, channel_env: dict,
          results: dict) -> None:
    label = f"{backend} {stored:,} stored / {due:,} due" + (f" ({args.layout})" if args.layout != "spread" else "")
    dbs = Database(backend, args.pg, workdir)
    try:
        url = dbs.new()
        prepare(url, workdir, plain_env)
        seconds = load(url, stored, due, args.layout)
        found = count_due(url)
        print(f"{label}: setup load of {stored:,} alerts + ANALYZE in {seconds:.1f} s; due at --now: {found:,}",
              flush=True)
        if found != due:
            raise SystemExit(f"{label}: expected {due:,} due alerts, found {found:,}")
        trees = [("this tree", ROOT)] + [(f"baseline {tree.name}" if len(args.baseline) > 1 else "baseline", tree)
                                      for tree in args.baseline]
        for name, env in (("no channels", plain_env), ("1 command channel", channel_env)):
            for attempt in range(1, args.repeat + 1):
                order = trees if attempt % 2 else trees[::-1]  # alternating: none always goes first
                for tree_name, tree in order:
                    tag = name.replace(" ", "-") + (f"-{attempt}" if args.repeat > 1 else "")
                    if len(trees) > 1:
                        tag += "-" + tree_name.replace(" ", "-")
                    profile = args.profile / f"{backend}-{stored}-{due}-{tag}.prof" if args.profile else None
                    elapsed, made, summary = escalate(url, env, profile, tree)
                    loadavg = os.getloadavg()[0]
                    again, made_again, summary_again = escalate(url, env, None, tree)
                    queued = due if env is channel_env else 0
                    ok = made == due and made_again == 0 and summary.get("notifications") == queued
                    run = f" #{attempt}" if args.repeat > 1 else ""
                    who = f" [{tree_name}]" if len(trees) > 1 else ""
                    print(f"{label}, {name}{run}{who}: escalate run {elapsed:.2f} s end to end"
                          f" (pass {summary.get('duration_ms')} ms), escalated {made:,}"
                          f" (unrouted {summary.get('unrouted')}),"
                          f" notifications queued {summary.get('notifications')};"
                          f" re-run at the same --now {again:.2f} s (pass {summary_again.get('duration_ms')} ms),"
                          f" escalated {made_again:,} [{'ok' if ok else 'WRONG COUNT'}]; load {loadavg:.2f}",
                          flush=True)
                    if not ok:
                        raise SystemExit(f"{label}: expected {due:,} escalations ({queued:,} notifications), then none")
                    results.setdefault((label, name, tree_name), []).append(
                        (elapsed, summary.get("duration_ms", 0) / 1000, again, loadavg))
                    restored = restore(url)  # the same due alerts for the next measurement
                    if restored != due:
                        raise SystemExit(f"{label}: restored {restored:,} alerts, expected {due:,}")
    finally:
        dbs.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, help="Alerts stored  [default: the three combinations]")
    parser.add_argument("--due", type=int, help="Alerts due at --now  [default: the three combinations]")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="One backend  [default: both]")
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        metavar="URL", help="Server to create the benchmark databases on (dropped at the end)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="Measure each configuration N times (the due alerts restored in between)")
    parser.add_argument("--layout", choices=["spread", "recent"], default="spread",
                        help="Where the due alerts sit in the table: scattered over it, or the newest rows  "
                             "[default: spread]")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="Run each first pass under cProfile, writing DIR/BACKEND-STORED-DUE-CONFIG.prof")
    parser.add_argument("--baseline", type=Path, metavar="DIR", action="append", default=[],
                        help="Also time the nocctl package in DIR, interleaved with this tree's, (repeatable)")
    args = parser.parse_args()
    args.baseline = [d.resolve() for d in args.baseline]
    for tree in args.baseline:
        if not (tree / "nocctl" / "__main__.py").is_file():
            raise SystemExit(f"--baseline {tree}: no nocctl package there")
    if args.stored is None and args.due is None:
        combinations = DEFAULT_COMBINATIONS
    else:
        combinations = [(args.stored or 1_000_000, args.due if args.due is not None else 10_000)]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        empty, channel = workdir / "empty.toml", workdir / "channel.toml"
        empty.write_text("")
        channel.write_text(CHANNEL_CONFIG)
        base = {k: v for k, v in os.environ.items() if k not in ("NOC_DATABASE_URL", "NOC_NOW", "NOC_TENANT")}
        base["NOC_BENCH_CWD"] = str(workdir)
        plain_env, channel_env = {**base, "NOC_CONFIG": str(empty)}, {**base, "NOC_CONFIG": str(channel)}
        results: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
        for backend in [args.only] if args.only else ["sqlite", "postgresql"]:
            for stored, due in combinations:
                bench(backend, stored, due, args, workdir, plain_env, channel_env, results)
    summarise(results)


def summarise(results: dict) -> None:
    print("\nmedians [ranges] of end-to-end seconds (pass; re-run; load average):")
    def stat(runs: list, i: int) -> str:
        values = [r[i] for r in runs]
        return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"

    for (label, config, tree), runs in results.items():
        print(f"  {label}, {config:17s} {tree:9s}: {stat(runs, 0)} s (pass {stat(runs, 1)} s;"
              f" re-run {stat(runs, 2)} s; load {stat(runs, 3)}), n={len(runs)}", flush=True)


if __name__ == "__main__":
    main()
