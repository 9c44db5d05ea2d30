"""Ingest benchmark (DESIGN §8): 100k native records — 20k distinct keys, 5% inside a
maintenance window, 2% resolves — end to end through `nocctl ingest`, on SQLite and on
PostgreSQL, beside a bare-driver upsert of the same rows (timed alone, and with the json.loads and
key computation the product also pays: the fair baseline); then peak memory at 1M records:
with a file argument (getrusage: the largest single process), and piped on stdin from a
separate producer, the whole process tree of the ingest (nocctl and its forked reader)
sampled from /proc every 50 ms on each backend, beside a bare interpreter as the floor.

    python benchmarks/ingest.py [--records 100000] [--memory-records 1000000]
                                [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                [--backends sqlite,postgresql] [--repeat 1] [--skip-speed] [--skip-memory]
                                [--skip-memory-pipe] [--memory-pipe] [--sample-interval 0.05]

`--memory-pipe` runs only the piped whole-tree measurement (and its baseline).

Prints one line per measurement; copy the results into benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
TYPES = ["DEVICE_OFFLINE", "SYNC_DEGRADED", "GEOFENCE_BREACH", "ATTENDANCE_MISSING", "SECURITY_ANOMALY",
         "WORK_ORDER_OVERDUE", "SLA_BREACH", "TICKET_ESCALATED"]
START = datetime(2026, 3, 1, tzinfo=UTC)
CLIENTS, SITES_PER_CLIENT = 20, 10
MAINTENANCE_SITE = "C00-S00"  # every record of the maintenance sites below falls in the window
NOCCTL = [sys.executable, "-m", "nocctl"]
MEMORY_LIMIT_MB = 150  # the contract: the whole tree, reader included, at 1M records on stdin
# The floor: the interpreter with the CLI and SQLAlchemy imported, no data, no database; it
# waits a moment so that the 50 ms samples see it whole.
BASELINE_CODE = "import nocctl.cli, sqlalchemy"
BASELINE = [sys.executable, "-c", BASELINE_CODE + "; import time; time.sleep(0.3)"]


def organisation() -> dict:
    return {
        "clients": [{"code": f"C{c:02d}", "name": f"Client {c}"} for c in range(CLIENTS)],
        "sites": [{"code": f"C{c:02d}-S{s:02d}", "name": f"Site {c}/{s}", "client": f"C{c:02d}",
                   "city": f"City{s % 4}", "state": f"State{c % 5}"}
                  for c in range(CLIENTS) for s in range(SITES_PER_CLIENT)],
    }


def workload(path: Path, records: int, keys: int, seed: int = 42) -> None:
    """Deterministic NDJSON: `keys` distinct alerts; 5% of records at the sites under
    maintenance (the first 10 sites: 5% of 200), 2% resolves."""
    rng = random.Random(seed)
    sites = [f"C{c:02d}-S{s:02d}" for c in range(CLIENTS) for s in range(SITES_PER_CLIENT)]
    maintenance_sites, other_sites = sites[:10], sites[10:]
    key_defs = []
    for k in range(keys):
        in_maintenance = k < keys // 20
        site = rng.choice(maintenance_sites if in_maintenance else other_sites)
        key_defs.append((rng.choice(TYPES), site, f"dev-{k:06d}", rng.choice(SEVERITIES)))
    with path.open("w") as out:
        for i in range(records):
            alert_type, site, entity, severity = key_defs[i % keys] if i < keys else key_defs[rng.randrange(keys)]
            occurred = START + timedelta(seconds=i * 0.5)
            record = {"alert_type": alert_type, "severity": severity, "message": f"{alert_type} on {entity}",
                      "site": site, "entity_type": "device", "entity_id": entity,
                      "occurred_at": occurred.isoformat().replace("+00:00", "Z"), "event_id": f"e{i}"}
            if rng.random() < 0.02:
                record = {"action": "resolve", "alert_type": alert_type, "site": site, "entity_type": "device",
                          "entity_id": entity, "occurred_at": record["occurred_at"], "event_id": f"e{i}"}
            out.write(json.dumps(record) + "\n")


def prepare(url: str, workdir: Path, env: dict) -> None:
    org = workdir / "org.json"
    org.write_text(json.dumps(organisation()))
    for args in (["init"], ["org", "import", str(org)]):
        subprocess.run(NOCCTL + ["--db", url, "-q", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    # A maintenance window over the first 10 sites' client-level scope would be wider than 5%:
    # one site window each, covering the whole run.
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from nocctl.db import make_engine
    from nocctl.models import BusinessUnit, MaintenanceWindow

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        sites = select(BusinessUnit).where(BusinessUnit.kind == "SITE").order_by(BusinessUnit.code).limit(10)
        for unit in session.scalars(sites):
            session.add(MaintenanceWindow(tenant_id=unit.tenant_id, scope_kind="SITE", client_id=unit.client_id,
                                          site_id=unit.id, suppress_all=True, starts_at=START - timedelta(days=1),
                                          ends_at=START + timedelta(days=30), recurrence="NONE", timezone="UTC",
                                          reason="benchmark", created_at=START))
    engine.dispose()


def run_ingest(url: str, data: Path, env: dict) -> tuple[float, dict, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(NOCCTL + ["--db", url, "-q", "ingest", str(data), "--json"], env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, json.loads(done.stdout), max(peak_kb, before)


def bare_upsert(url: str, data: Path) -> tuple[float, float]:
    """The floor: the same rows (md5 key computed the same way) upserted with the bare driver
    in batches of 2000, no parsing beyond json.loads, no replay keys, no correlation.
    Returns (seconds reading the file with json.loads and computing the keys, seconds of the
    upserts): the product pays both, so the fair baseline is their sum."""
    rows = []
    parse_started = time.perf_counter()
    with data.open() as handle:
        for line in handle:
            r = json.loads(line)
            if r.get("action") == "resolve":
                continue
            key = hashlib.md5(f"{r['alert_type']}|{r['site']}|device|{r['entity_id']}".encode()).hexdigest()
            rows.append((r["alert_type"], r["severity"], r["message"], r["site"], r["entity_id"], key,
                         r["occurred_at"]))
    parsing = time.perf_counter() - parse_started
    started = time.perf_counter()
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, alert_type TEXT, severity TEXT, message TEXT, site TEXT,"
                     " entity_id TEXT, dedup_key TEXT, status TEXT DEFAULT 'NEW', first_seen_at TEXT,"
                     " last_seen_at TEXT, duplicate_count INTEGER DEFAULT 0)")
        conn.execute("CREATE UNIQUE INDEX u ON t (dedup_key) WHERE status <> 'RESOLVED'")
        sql = ("INSERT INTO t (alert_type, severity, message, site, entity_id, dedup_key, first_seen_at, last_seen_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) WHERE status <> 'RESOLVED' DO UPDATE SET"
               " duplicate_count = duplicate_count + 1, last_seen_at = excluded.last_seen_at")
        for i in range(0, len(rows), 2000):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [(*r, r[-1]) for r in rows[i:i + 2000]])
            conn.execute("COMMIT")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, alert_type TEXT, severity TEXT, message TEXT,"
                         " site TEXT, entity_id TEXT, dedup_key TEXT, status TEXT DEFAULT 'NEW',"
                         " first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ, duplicate_count INTEGER DEFAULT 0)")
            conn.execute("CREATE UNIQUE INDEX u ON t (dedup_key) WHERE status <> 'RESOLVED'")
            conn.commit()
            sql = ("INSERT INTO t (alert_type, severity, message, site, entity_id, dedup_key, first_seen_at,"
                   " last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                   " ON CONFLICT (dedup_key) WHERE status <> 'RESOLVED' DO UPDATE"
                   " SET duplicate_count = t.duplicate_count + 1, last_seen_at = excluded.last_seen_at")
            for i in range(0, len(rows), 2000):
                with conn.cursor() as cur:
                    # One key at most once per statement, as ON CONFLICT on PostgreSQL requires.
                    cur.executemany(sql, [(*r, r[-1]) for r in rows[i:i + 2000]])
                conn.commit()
    return parsing, time.perf_counter() - started


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def memory_pipe(backend: str, url: str, data: Path, records: int, env: dict, interval: float) -> None:
    """1M records piped from a separate producer (`cat FILE`) into `nocctl ingest --json`
    on stdin; the ingest's process tree sampled every `interval` s (see proctree). The
    contract is judged on the sum of PSS; the sum of RSS counts the pages the forked reader
    still shares with its parent twice. Not in the tree: the producer, and on PostgreSQL the
    server process that serves the connection."""
    from proctree import run_measured

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        producer = subprocess.Popen(["cat", str(data)], stdout=subprocess.PIPE)
        try:
            m = run_measured(NOCCTL + ["--db", url, "-q", "ingest", "--json"], interval, "nocctl", "reader",
                             env=env, stdin=producer.stdout, stdout=out, stderr=err)
        finally:
            producer.stdout.close()  # the ingest holds the read end; ours goes
            producer.wait()
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if m.returncode != 0:
        raise SystemExit(f"piped ingest failed ({m.returncode}): {stderr[-2000:]}")
    summary = json.loads(stdout)
    received = summary["received"]
    p = m.peaks
    per = "; ".join(f"{q.label} RSS {mb(q.rss)} (VmHWM {mb(q.hwm)}) PSS {mb(q.pss)}"
                    for q in sorted(p.processes.values(), key=lambda q: q.first_seen))
    verdict = "met" if p.pss <= MEMORY_LIMIT_MB * 1024 else "MISSED"
    print(f"memory-pipe: {backend} {records:,} records on stdin in {m.elapsed:.1f} s ({received / m.elapsed:,.0f}/s),"
          f" received {received:,} {'ok' if received == records else f'!= {records:,} FAILED'};"
          f" tree peak sum RSS {mb(p.rss)} (at {p.rss_at:.0f} s), sum PSS {mb(p.pss)} (at {p.pss_at:.0f} s:"
          f" anon {mb(p.pss_anon_at_peak)}, file {mb(p.pss_file_at_peak)}, {p.processes_at_peak} processes)"
          f" vs {MEMORY_LIMIT_MB} MB by PSS: {verdict}; per process: {per};"
          f" getrusage ru_maxrss (largest single process) {mb(m.rusage.ru_maxrss)}; {p.samples} samples")
    print(f"memory-pipe: {backend} load: before [{m.load_before}], after [{m.load_after}], 1-min max {p.load_max:.2f};"
          f" machine busy {m.machine_busy_cores:.2f} of {os.cpu_count()} cores on average, of which the ingest tree"
          f" {m.tree_cpu_seconds / m.elapsed:.2f}")
    print(f"memory-pipe: {backend} summary {json.dumps(summary)}")
    if received != records:
        raise SystemExit(f"piped ingest received {received:,} of {records:,} records")


def memory_baseline(env: dict, interval: float) -> None:
    """The floor a streaming ingest cannot go below: the interpreter with the CLI and
    SQLAlchemy imported (no data held, no database open)."""
    from proctree import run_measured

    m = run_measured(BASELINE, interval, "python", env=env)
    if m.returncode != 0:
        raise SystemExit(f"baseline failed ({m.returncode})")
    p = m.peaks
    hwm = max((q.hwm for q in p.processes.values()), default=0)
    print(f"memory-pipe: baseline `python -c \"{BASELINE_CODE}\"`: peak RSS {mb(hwm)} (VmHWM), PSS {mb(p.pss)};"
          f" getrusage ru_maxrss {mb(m.rusage.ru_maxrss)} (counts the benchmark's own forked copy before the exec)")


class Database:
    def __init__(self, backend: str, pg: str | None, workdir: Path):
        self.backend, self.pg, self.workdir = backend, pg, workdir
        self.created: list[str] = []

    def new(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / (uuid.uuid4().hex[:8] + '.db')}"
        import psycopg

        name = f"nocbench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.pg.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        if self.backend != "postgresql":
            return
        import psycopg

        with psycopg.connect(self.pg, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs per backend (the median is printed)")
    parser.add_argument("--skip-speed", action="store_true", help="skip the 100k throughput runs")
    parser.add_argument("--skip-memory", action="store_true", help="skip both 1M memory measurements")
    parser.add_argument("--skip-memory-pipe", action="store_true", help="skip the piped whole-tree measurement")
    parser.add_argument("--memory-pipe", action="store_true",
                        help="run only the piped whole-tree measurement (--backends) and its baseline")
    parser.add_argument("--sample-interval", type=float, default=0.05, help="seconds between /proc samples")
    args = parser.parse_args()
    if args.memory_pipe:
        args.skip_speed, args.skip_file_memory, args.skip_memory_pipe = True, True, False
    else:
        args.skip_file_memory, args.skip_memory_pipe = args.skip_memory, args.skip_memory or args.skip_memory_pipe
    backends = args.backends.split(",")

    env = {**os.environ, "NOC_CONFIG": os.devnull}
    env.pop("NOC_DATABASE_URL", None)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
          f", load [{Path('/proc/loadavg').read_text().strip()}]")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if not args.skip_speed:
            data = workdir / "alerts.ndjson"
            workload(data, args.records, args.keys)
            print(f"workload: {args.records:,} records, {args.keys:,} keys ({data.stat().st_size / 1e6:.1f} MB)")
        for backend in backends if not args.skip_speed else ():
            runs = []
            for _ in range(args.repeat):  # each repeat: nocctl and the bare upsert, one after the other
                dbs = Database(backend, args.pg, workdir)
                try:
                    url = dbs.new()
                    prepare(url, workdir, env)
                    elapsed, summary, _ = run_ingest(url, data, env)
                    parsing, bare = bare_upsert(dbs.new(), data)
                    fair = parsing + bare
                    runs.append((elapsed, bare, fair))
                    rate = args.records / elapsed
                    print(f"{backend}: nocctl ingest {args.records:,} records in {elapsed:.2f} s"
                          f" = {rate:,.0f} records/s;"
                          f" bare driver upsert {bare:.2f} s = {args.records / bare:,.0f} records/s"
                          f" (with the same json.loads and keys: {fair:.2f} s = {args.records / fair:,.0f} records/s);"
                          f" ratio nocctl/bare = {elapsed / bare:.1f}x ({elapsed / fair:.1f}x with parsing)")
                    print(f"{backend}: summary {json.dumps(summary)}")
                    again, summary2, _ = run_ingest(url, data, env)
                    print(f"{backend}: replay of the same file in {again:.2f} s, replayed={summary2['replayed']:,}")
                finally:
                    dbs.drop_all()
            if len(runs) > 1:
                elapsed, bare, fair = (statistics.median(column) for column in zip(*runs, strict=True))
                print(f"{backend}: median of {len(runs)}: nocctl {elapsed:.2f} s"
                      f" = {args.records / elapsed:,.0f} records/s"
                      f" [{min(r[0] for r in runs):.2f}–{max(r[0] for r in runs):.2f}]; bare {bare:.2f} s, with parsing"
                      f" {fair:.2f} s; ratio {elapsed / bare:.1f}x ({elapsed / fair:.1f}x with parsing); load now"
                      f" [{Path('/proc/loadavg').read_text().strip()}]")
        if args.skip_file_memory and args.skip_memory_pipe:
            return
        big = workdir / "big.ndjson"
        workload(big, args.memory_records, args.keys * 10)
        print(f"memory workload: {args.memory_records:,} records, {args.keys * 10:,} keys"
              f" ({big.stat().st_size / 1e6:.1f} MB)")
        if not args.skip_file_memory:
            dbs = Database("sqlite", None, workdir)
            url = dbs.new()
            prepare(url, workdir, env)
            elapsed, summary, peak_kb = run_ingest(url, big, env)
            print(f"memory: {args.memory_records:,} records on sqlite in {elapsed:.1f} s"
                  f" ({args.memory_records / elapsed:,.0f}/s), peak RSS {peak_kb / 1024:.0f} MB")
        if not args.skip_memory_pipe:
            memory_baseline(env, args.sample_interval)
            for backend in backends:
                dbs = Database(backend, args.pg, workdir)
                try:
                    url = dbs.new()
                    prepare(url, workdir, env)
                    memory_pipe(backend, url, big, args.memory_records, env, args.sample_interval)
                finally:
                    dbs.drop_all()


if __name__ == "__main__":
    main()
