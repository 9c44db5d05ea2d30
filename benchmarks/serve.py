"""`nocctl serve` benchmark (DESIGN §8): a real server process, real HTTP clients.

On SQLite and on PostgreSQL, a `nocctl serve` process (default settings: 16 request threads,
group commit by one writer) on a fresh database with 20 clients × 10 sites and two
tenant-wide integrations, then, each measurement `--repeat` times (medians printed):

- single-event PagerDuty Events v2 requests (`POST /v2/enqueue`) from 8 client processes at
  once, each on one keep-alive `http.client` connection, closed loop: requests/s, p50/p99;
- Alertmanager webhooks of 100 alerts (`POST /api/v1/alertmanager`), 8 clients the same way:
  events/s, p50/p99 of a webhook;
- open loop at a fixed 500 requests/s (single events; 8 client processes of 4 keep-alive
  connections each, every connection sends at its scheduled instants and latency is measured
  from the scheduled instant, so a late answer also delays, and is charged to, the requests
  behind it on that connection): p50/p99;

and beside them, in the same run: `nocctl ingest FILE --json` of the same events (the same
PagerDuty documents without their routing_key, the same webhook documents) into a fresh
database with the same organisation, as a subprocess, interpreter start-up included; and
`GET /-/healthy` from 8 clients (the HTTP layer alone: waitress, the app's routing, the
metrics and the log line, no database).

Events (deterministic, seed 42): a dedup key for every 5 events (80% duplicates), spread
over the 200 sites, mixed severities (CRITICAL ones open incidents: the default config),
triggers only, each event with its own timestamp (so each has an event key and is applied
once, never a replay). Afterwards the database is checked to hold exactly the events that
were answered 2xx — per measurement, the alerts of its keys and the sum of their
occurrences (duplicate_count + 1) — so the numbers count stored events only.

    python benchmarks/serve.py [--backends sqlite,postgresql] [--pg URL] [--repeat 3]
                               [--requests 20000] [--webhooks 400] [--alerts 100]
                               [--rate 500] [--rate-seconds 20] [--clients 8] [--open-connections 4]
                               [--profile DIR] [--no-analyze] [--server-args ARG ...]

Prints one line per measurement and a table per database; copy the results into
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import pickle
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOCCTL = [sys.executable, "-m", "nocctl"]
TYPES = ["DEVICE_OFFLINE", "SYNC_DEGRADED", "GEOFENCE_BREACH", "ATTENDANCE_MISSING", "SECURITY_ANOMALY",
         "WORK_ORDER_OVERDUE", "SLA_BREACH", "TICKET_ESCALATED"]
PD_SEVERITIES = ["critical", "error", "warning", "warning", "info"]  # CRITICAL, HIGH, MEDIUM ×2, INFO
AM_SEVERITIES = ["critical", "high", "warning", "warning", "info"]
DISTINCT = 5  # events per dedup key
SPACING = 0.5  # seconds between the timestamps of consecutive events of a measurement
# `--profile`: the server under cProfile, every thread its own profile, dumped as it ends
# (`python profiled.py DIR serve …` in place of `python -m nocctl serve …`).
PROFILE_WRAPPER = """\
import cProfile, os, runpy, sys, threading, time
out = sys.argv.pop(1)
original = threading.Thread.run
def run(self):
    # The writer on the wall clock (its waits for the database are what bounds a group); the
    # request threads on their CPU time (they spend most of it waiting for their group).
    profile = cProfile.Profile(time.perf_counter if self.name == "nocctl-writer" else time.thread_time)
    profile.enable()
    try:
        original(self)
    finally:
        profile.disable()
        profile.dump_stats(os.path.join(out, f"{self.name}-{threading.get_ident()}.pstats"))
threading.Thread.run = run
profile = cProfile.Profile(time.thread_time)
profile.enable()
try:
    runpy.run_module("nocctl", run_name="__main__", alter_sys=True)
finally:
    profile.disable()
    profile.dump_stats(os.path.join(out, f"main-{os.getpid()}.pstats"))
"""
TARGETS = {"single": 2_000, "webhook": 20_000, "open_p99_ms": 100}


# ---------------------------------------------------------------- the client processes

def client_main(spec_path: str) -> None:
    """One load client: `python serve.py --client SPEC` where SPEC is a pickle of {url,
    requests: [(method, path, headers, body)], offsets: None or [seconds after the start],
    connections}. Each of its `connections` keep-alive connections (a thread each) sends
    every connections-th request. Prints `ready`, reads the start instant (time.time())
    from stdin, then sends; writes a pickle of [(status, sent, done, scheduled)] per
    request to stdout, then exits."""
    import threading

    with open(spec_path, "rb") as handle:
        spec = pickle.load(handle)
    host, port = spec["url"].removeprefix("http://").split(":")
    requests, offsets, connections = spec["requests"], spec.get("offsets"), spec.get("connections", 1)
    conns = [http.client.HTTPConnection(host, int(port), timeout=60) for _ in range(connections)]
    for conn in conns:
        conn.connect()
    results: list[tuple | None] = [None] * len(requests)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    start = float(sys.stdin.readline())
    wall, clock = time.time, time.perf_counter
    now = wall()
    if start > now:
        time.sleep(start - now)
    base_wall, base_clock = wall(), clock()  # perf_counter for the intervals, placed on the wall clock

    def send(n: int) -> None:
        conn = conns[n]
        for i in range(n, len(requests), connections):
            method, path, headers, body = requests[i]
            scheduled = None
            if offsets is not None:
                scheduled = start + offsets[i]
                delay = scheduled - (base_wall + clock() - base_clock)
                if delay > 0:
                    time.sleep(delay)
            sent = base_wall + clock() - base_clock
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            results[i] = (status, sent, base_wall + clock() - base_clock, scheduled)

    if connections == 1:
        send(0)
    else:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    sys.stdout.buffer.write(b"RESULTS\n" + pickle.dumps(results))
    sys.stdout.flush()


def run_clients(url: str, per_client: list[list[tuple]], workdir: Path, offsets: list[list[float]] | None = None,
                connections: int = 1) -> tuple[float, list[list[tuple]]]:
    """Start one process per list of requests, release them at once; (start, results per client)."""
    procs = []
    for n, requests in enumerate(per_client):
        spec = workdir / f"client-{n}.pickle"
        with spec.open("wb") as handle:
            pickle.dump({"url": url, "requests": requests, "offsets": offsets[n] if offsets else None,
                         "connections": connections}, handle)
        procs.append(subprocess.Popen([sys.executable, __file__, "--client", str(spec)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE))
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            raise SystemExit(f"a load client did not start: {line!r}")
    start = time.time() + 0.3
    for proc in procs:
        proc.stdin.write(f"{start!r}\n".encode())
        proc.stdin.close()
    results = []
    for proc in procs:
        out = proc.stdout.read()
        proc.wait()
        if proc.returncode != 0 or not out.startswith(b"RESULTS\n"):
            raise SystemExit(f"a load client failed ({proc.returncode})")
        results.append(pickle.loads(out[len(b"RESULTS\n"):]))
    return start, results


# ---------------------------------------------------------------- events

def organisation() -> dict:
    from ingest import organisation as ingest_org

    return ingest_org()


SITES = [f"C{c:02d}-S{s:02d}" for c in range(20) for s in range(10)]


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def key_defs(rng: random.Random, keys: int) -> list[tuple[str, str, str, int]]:
    """(alert type, site, entity, severity index) of each dedup key."""
    return [(rng.choice(TYPES), rng.choice(SITES), f"dev-{k:06d}", rng.randrange(len(PD_SEVERITIES)))
            for k in range(keys)]


def key_sequence(rng: random.Random, events: int) -> list[int]:
    """Which key each event has: every key once in the first fifth, then at random."""
    keys = max(1, events // DISTINCT)
    return [i if i < keys else rng.randrange(keys) for i in range(events)]


def pd_events(tag: str, events: int, base: datetime, seed: int) -> list[dict]:
    """PagerDuty trigger events (without routing_key) of keys `TAG-NNNNNN`."""
    rng = random.Random(seed)
    defs = key_defs(rng, max(1, events // DISTINCT))
    out = []
    for i, k in enumerate(key_sequence(rng, events)):
        alert_type, site, entity, sev = defs[k]
        out.append({"event_action": "trigger", "dedup_key": f"{tag}-{k:06d}",
                    "payload": {"summary": f"{alert_type} on {entity}", "severity": PD_SEVERITIES[sev],
                                "source": entity, "group": site, "class": alert_type,
                                "timestamp": iso(base + timedelta(seconds=i * SPACING))}})
    return out


def am_webhooks(tag: str, webhooks: int, per: int, base: datetime, seed: int) -> list[dict]:
    """Alertmanager webhook payloads (version 4) of `per` firing alerts each; fingerprints
    `TAG-NNNNNN` (dedup keys `am:TAG-NNNNNN`), each alert with its own startsAt."""
    rng = random.Random(seed)
    events = webhooks * per
    defs = key_defs(rng, max(1, events // DISTINCT))
    sequence = key_sequence(rng, events)
    rng.shuffle(sequence)  # a webhook's alerts are of many keys and sites
    first_index: dict[int, int] = {}
    for i, k in enumerate(sequence):
        first_index.setdefault(k, i)
    out = []
    for w in range(webhooks):
        alerts = []
        for i in range(w * per, (w + 1) * per):
            k = sequence[i]
            alert_type, site, entity, sev = defs[k]
            labels = {"alertname": alert_type, "instance": entity, "site": site, "severity": AM_SEVERITIES[sev]}
            alerts.append({"status": "firing", "labels": labels,
                           "annotations": {"summary": f"{alert_type} on {entity}"},
                           "startsAt": iso(base + timedelta(seconds=i * SPACING)), "endsAt": "0001-01-01T00:00:00Z",
                           "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{tag}-{k:06d}"})
        out.append({"version": "4", "groupKey": f'{{}}:{{bench="{tag}",n="{w}"}}', "truncatedAlerts": 0,
                    "status": "firing", "receiver": "nocctl", "groupLabels": {}, "commonLabels": {},
                    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts})
    return out


def pd_request(event: dict, key: str) -> tuple:
    return ("POST", "/v2/enqueue", {"Content-Type": "application/json"},
            json.dumps({"routing_key": key, **event}).encode())


def am_request(webhook: dict, key: str) -> tuple:
    return ("POST", "/api/v1/alertmanager", {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            json.dumps(webhook).encode())


def deal(items: list, clients: int) -> list[list]:
    return [items[n::clients] for n in range(clients)]


# ---------------------------------------------------------------- measuring

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds of process `pid` (or of its thread `thread`)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of `pid`, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
            out[int(task.name)] = cpu_seconds(pid, int(task.name))
    return out


def split_cpu(pid: int, before: dict[int, float], after: dict[int, float]) -> tuple[float, float, float]:
    """(event loop, writer, request threads) CPU seconds between two `thread_cpu` samples.
    The event loop is the main thread; the writer is the thread started last (`server.serve`
    starts it after waitress's request threads), so the highest thread id."""
    delta = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    writer = max(delta)
    loop = delta.pop(pid, 0.0)
    return loop, delta.pop(writer, 0.0), sum(delta.values())


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


@dataclass
class Measured:
    name: str
    requests: int
    events_per_request: int
    seconds: float
    ok: int  # requests answered 2xx
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    server_cpu: float  # seconds of the server process
    loop_cpu: float  # of its main thread: waitress's event loop
    writer_cpu: float  # of the writer thread
    request_cpu: float  # of the request threads
    busy_cores: float  # of the whole machine, on average
    accepted: list[int] = field(default_factory=list)  # indexes of the requests answered 2xx

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def event_rate(self) -> float:
        return self.requests * self.events_per_request / self.seconds

    def line(self, backend: str) -> str:
        other = {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        return (f"{backend}: {self.name}: {self.requests:,} requests × {self.events_per_request}"
                f" in {self.seconds:.2f} s = {self.rate:,.0f} requests/s ({self.event_rate:,.0f} events/s),"
                f" p50 {self.p50_ms:.1f} ms,"
                f" p99 {self.p99_ms:.1f} ms; {self.ok:,} answered 2xx"
                + (f", others {other}" if other else "")
                + f"; server CPU {self.server_cpu:.1f} s ({self.server_cpu / self.seconds:.2f} cores,"
                  f" {self.server_cpu / self.requests * 1e3:.2f} ms a request: event loop {self.ms(self.loop_cpu)},"
                  f" request threads {self.ms(self.request_cpu)}, writer {self.ms(self.writer_cpu)});"
                  f" machine {self.busy_cores:.2f} cores busy")

    def ms(self, seconds: float) -> str:
        return f"{seconds / self.requests * 1e3:.2f}"


def measure(name: str, server, per_client: list[list[tuple]], events_per_request: int, workdir: Path,
            offsets: list[list[float]] | None = None, connections: int = 1) -> Measured:
    pid = server.process.pid
    cpu_before, threads_before, (busy_before, total_before) = cpu_seconds(pid), thread_cpu(pid), machine_busy()
    start, results = run_clients(server.url, per_client, workdir, offsets, connections)
    cpu_after, threads_after, (busy_after, total_after) = cpu_seconds(pid), thread_cpu(pid), machine_busy()
    latencies, statuses, accepted = [], {}, []
    end = start
    for n, rows in enumerate(results):
        for j, (status, sent, done, scheduled) in enumerate(rows):
            latencies.append((done - (scheduled if scheduled is not None else sent)) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            end = max(end, done)
            if 200 <= status < 300:
                accepted.append(j * len(results) + n)  # the index `deal` took it from
    count = sum(len(rows) for rows in results)
    cores = (busy_after - busy_before) / max(1, total_after - total_before) * (os.cpu_count() or 1)
    return Measured(name, count, events_per_request, end - start, len(accepted), statuses,
                    percentile(latencies, 50), percentile(latencies, 99), cpu_after - cpu_before,
                    *split_cpu(pid, threads_before, threads_after), cores, accepted)


def open_loop_offsets(requests: int, clients: int, rate: float) -> list[list[float]]:
    """Request i of the whole schedule at i / rate seconds; dealt round-robin like `deal`."""
    return [[i / rate for i in range(n, requests, clients)] for n in range(clients)]


# ---------------------------------------------------------------- the database

class Databases:
    def __init__(self, backend: str, pg: str, workdir: Path):
        from ingest import Database

        self.inner = Database(backend, pg, workdir)

    def new(self, env: dict) -> tuple[str, dict[str, str]]:
        """A fresh database with the organisation and the two integrations; (url, keys)."""
        url = self.inner.new()
        org = self.inner.workdir / "org.json"
        org.write_text(json.dumps(organisation()))
        for args in (["init"], ["org", "import", str(org)]):
            subprocess.run(NOCCTL + ["--db", url, "-q", *args], check=True, env=env, stdout=subprocess.DEVNULL)
        keys = {}
        for name, fmt in (("bench-pd", "pagerduty"), ("bench-am", "alertmanager")):
            keys[fmt] = subprocess.run(NOCCTL + ["--db", url, "-q", "integration", "add", name, "--format", fmt],
                                       check=True, env=env, capture_output=True, text=True).stdout.strip()
        return url, keys

    def drop_all(self) -> None:
        self.inner.drop_all()


def query(url: str, sql: str, params: tuple) -> list[tuple]:
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql.replace("?", "%s"), params).fetchall()


def stored(url: str, like: str) -> tuple[int, int]:
    """(alerts with a dedup key LIKE `like`, their occurrences: duplicate_count + 1 summed)."""
    [(alerts, occurrences)] = query(url, "SELECT count(*), coalesce(sum(duplicate_count + 1), 0) FROM alert"
                                         " WHERE dedup_key LIKE ?", (like,))
    return int(alerts), int(occurrences)


def analyse_if_autovacuum_is_off(url: str, enabled: bool) -> None:
    """ANALYZE, as a default PostgreSQL server's autovacuum would have by now. A server with
    autovacuum off (this machine's) keeps the statistics of the empty tables the migrations
    made, and the planner then reads every active alert of the tenant for each batch's key
    lookup, ever more slowly as they grow (`--no-analyze` measures that)."""
    if not enabled or url.startswith("sqlite"):
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        [(autovacuum,)] = conn.execute("SHOW autovacuum").fetchall()
        if autovacuum == "off":
            conn.execute("ANALYZE")


def expected(accepted_events: list[dict], key_of) -> tuple[int, int]:
    return len({key_of(e) for e in accepted_events}), len(accepted_events)


def run_ingest(url: str, path: Path, fmt: str, env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(NOCCTL + ["--db", url, "-q", "ingest", str(path), "--format", fmt, "--json"], env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout)


# ---------------------------------------------------------------- one backend

def bench_backend(backend: str, args: argparse.Namespace, workdir: Path, env: dict) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from serve_helpers import Server

    dbs = Databases(backend, args.pg, workdir)
    results: dict[str, list] = {k: [] for k in ("single", "webhook", "open", "healthy", "ingest_pd", "ingest_am",
                                                "ingest_pd_net", "ingest_am_net", "ingest_fixed")}
    problems: list[str] = []
    server = None
    try:
        url, keys = dbs.new(env)
        server_tmp = workdir / f"server-{backend}"
        server_tmp.mkdir()
        server = Server(url, server_tmp, *args.server_args)
        if args.profile:
            import serve_helpers

            out = Path(args.profile).resolve() / backend
            out.mkdir(parents=True, exist_ok=True)
            wrapper = workdir / "profiled.py"
            wrapper.write_text(PROFILE_WRAPPER)
            serve_helpers.NOCCTL = [sys.executable, str(wrapper), str(out)]
        server.start()
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)

        # Warm-up (not measured; checked with the rest): the integrations' runs, the caches.
        warm_pd = pd_events("warm", 400, base - timedelta(days=3), seed=1)
        warm_am = am_webhooks("warm", 16, args.alerts, base - timedelta(days=3), seed=2)
        m = measure("warm-up", server, deal([pd_request(e, keys["pagerduty"]) for e in warm_pd], args.clients),
                    1, workdir)
        checks = [("warm PagerDuty", "warm-%", [warm_pd[i] for i in m.accepted], lambda e: e["dedup_key"])]
        m = measure("warm-up", server, deal([am_request(w, keys["alertmanager"]) for w in warm_am], args.clients),
                    args.alerts, workdir)
        checks.append(("warm Alertmanager", "am:warm-%", [a for i in m.accepted for a in warm_am[i]["alerts"]],
                       lambda a: a["fingerprint"]))

        for r in range(args.repeat):
            at = base + timedelta(hours=12 * r)
            analyse_if_autovacuum_is_off(url, args.analyze)
            # (a) single events, closed loop
            events = pd_events(f"pd{r}", args.requests, at, seed=42 + r)
            m = measure("single-event /v2/enqueue, closed loop", server,
                        deal([pd_request(e, keys["pagerduty"]) for e in events], args.clients), 1, workdir)
            print(m.line(backend), flush=True)
            results["single"].append(m)
            checks.append((f"single #{r + 1}", f"pd{r}-%", [events[i] for i in m.accepted], lambda e: e["dedup_key"]))
            # (b) webhooks of 100 alerts, closed loop
            analyse_if_autovacuum_is_off(url, args.analyze)
            hooks = am_webhooks(f"am{r}", args.webhooks, args.alerts, at, seed=142 + r)
            m = measure(f"Alertmanager webhooks of {args.alerts}, closed loop", server,
                        deal([am_request(w, keys["alertmanager"]) for w in hooks], args.clients), args.alerts,
                        workdir)
            print(m.line(backend), flush=True)
            results["webhook"].append(m)
            checks.append((f"webhook #{r + 1}", f"am:am{r}-%", [a for i in m.accepted for a in hooks[i]["alerts"]],
                           lambda a: a["fingerprint"]))
            # (c) open loop at a fixed rate
            analyse_if_autovacuum_is_off(url, args.analyze)
            count = int(args.rate * args.rate_seconds)
            open_events = pd_events(f"open{r}", count, at + timedelta(hours=6), seed=242 + r)
            m = measure(f"single-event /v2/enqueue, open loop at {args.rate:g}/s over"
                        f" {args.clients * args.open_connections} connections", server,
                        deal([pd_request(e, keys["pagerduty"]) for e in open_events], args.clients), 1, workdir,
                        open_loop_offsets(count, args.clients, args.rate), args.open_connections)
            print(m.line(backend), flush=True)
            results["open"].append(m)
            checks.append((f"open loop #{r + 1}", f"open{r}-%", [open_events[i] for i in m.accepted],
                           lambda e: e["dedup_key"]))
            # the HTTP layer alone
            m = measure("GET /-/healthy, closed loop", server,
                        deal([("GET", "/-/healthy", {}, None)] * args.requests, args.clients), 0, workdir)
            print(m.line(backend), flush=True)
            results["healthy"].append(m)
            # the baseline: the same events through `nocctl ingest` from a file
            plain, _ = dbs.new(env)
            pd_file, am_file = workdir / f"pd-{backend}-{r}.ndjson", workdir / f"am-{backend}-{r}.ndjson"
            pd_file.write_text("".join(json.dumps(e) + "\n" for e in events))
            am_file.write_text("".join(json.dumps(w) + "\n" for w in hooks))
            empty = workdir / "empty.ndjson"
            empty.write_text("")
            fixed, _ = run_ingest(plain, empty, "pagerduty", env)  # start-up, imports, authentication
            results["ingest_fixed"].append(fixed)
            for label, path, fmt, n in (("ingest_pd", pd_file, "pagerduty", len(events)),
                                        ("ingest_am", am_file, "alertmanager", args.webhooks * args.alerts)):
                elapsed, summary = run_ingest(plain, path, fmt, env)
                print(f"{backend}: nocctl ingest --format {fmt} of the same {n:,} events: {elapsed:.2f} s ="
                      f" {n / elapsed:,.0f} events/s ({n / max(0.05, elapsed - fixed):,.0f}/s without the"
                      f" {fixed:.2f} s of an empty input); {json.dumps(summary)}", flush=True)
                results[label].append(n / elapsed)
                results[label + "_net"].append(n / max(0.05, elapsed - fixed))
                if summary["received"] != n or summary["rejected"] or summary["replayed"]:
                    problems.append(f"ingest {fmt}: {summary}")

        server.stop()
        rc = server.process.returncode
        if rc != 0:
            problems.append(f"the server exited {rc}")
        for what, like, accepted, key_of in checks:
            want, got = expected(accepted, key_of), stored(url, like)
            verdict = "ok" if want == got else "MISMATCH"
            print(f"{backend}: check {what}: answered 2xx {want[1]:,} events of {want[0]:,} keys;"
                  f" stored {got[1]:,} occurrences in {got[0]:,} alerts: {verdict}")
            if want != got:
                problems.append(f"{what}: answered {want}, stored {got}")
    finally:
        if server is not None:
            server.stop()
        dbs.drop_all()
    results["problems"] = problems
    return results


def median_of(values: list[float]) -> float:
    return statistics.median(values)


def span(values: list[float], fmt: str = ",.0f") -> str:
    return f"[{min(values):{fmt}}–{max(values):{fmt}}]" if len(values) > 1 else ""


def table(backend: str, r: dict, args: argparse.Namespace) -> str:
    """The Markdown table of one backend: medians of the repeats, their range in brackets."""
    single, hooks, opened, healthy = r["single"], r["webhook"], r["open"], r["healthy"]

    def verdict(value: float, target: float, higher: bool = True) -> str:
        if (value >= target) if higher else (value <= target):
            return "met"
        return f"**missed by {target / value if higher else value / target:.1f}×**"

    def ms(runs: list[Measured]) -> str:
        return f"{median_of([m.p50_ms for m in runs]):.1f} / {median_of([m.p99_ms for m in runs]):.1f} ms"

    def cpu(runs: list[Measured]) -> str:
        per = [(m.server_cpu, m.loop_cpu, m.request_cpu, m.writer_cpu) for m in runs]
        total, loop, request, writer = (median_of([p[i] / m.requests * 1e3 for p, m in zip(per, runs, strict=True)])
                                        for i in range(4))
        return f"{total:.2f} ms ({loop:.2f} / {request:.2f} / {writer:.2f})"

    s_rate = median_of([m.rate for m in single])
    h_rate = median_of([m.event_rate for m in hooks])
    o_p99 = median_of([m.p99_ms for m in opened])
    rows = [
        [f"{backend} (median of {len(single)})", "nocctl serve", "p50 / p99", "baseline in the same run", "target",
         "server CPU a request (event loop / request threads / writer)"],
        ["---"] * 6,
        [f"single-event `/v2/enqueue`, {args.clients} clients",
         f"**{s_rate:,.0f} requests/s** {span([m.rate for m in single])}", ms(single),
         (f"`nocctl ingest` of the same events: {median_of(r['ingest_pd']):,.0f} events/s"
          f" ({median_of(r['ingest_pd_net']):,.0f}/s without start-up)"),
         f"≥ {TARGETS['single']:,}/s — {verdict(s_rate, TARGETS['single'])}", cpu(single)],
        [f"Alertmanager webhooks of {args.alerts}, {args.clients} clients",
         (f"**{h_rate:,.0f} events/s** {span([m.event_rate for m in hooks])}"
          f" ({median_of([m.rate for m in hooks]):,.0f} webhooks/s)"), ms(hooks),
         (f"`nocctl ingest` of the same webhooks: {median_of(r['ingest_am']):,.0f} events/s"
          f" ({median_of(r['ingest_am_net']):,.0f}/s without start-up)"),
         f"≥ {TARGETS['webhook']:,}/s — {verdict(h_rate, TARGETS['webhook'])}", cpu(hooks)],
        [f"open loop at {args.rate:g} requests/s ({median_of([m.rate for m in opened]):,.0f}/s achieved)",
         f"p99 **{o_p99:.1f} ms** {span([m.p99_ms for m in opened], '.1f')}", ms(opened), "",
         f"p99 ≤ {TARGETS['open_p99_ms']} ms — {verdict(o_p99, TARGETS['open_p99_ms'], higher=False)}", cpu(opened)],
        [f"`GET /-/healthy`, {args.clients} clients (the HTTP layer alone)",
         f"{median_of([m.rate for m in healthy]):,.0f} requests/s {span([m.rate for m in healthy])}", ms(healthy),
         "", "", cpu(healthy)],
        ["`nocctl ingest` of an empty input (start-up, imports, authentication)",
         f"{median_of(r['ingest_fixed']):.2f} s", "", "", "", ""],
    ]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20_000, help="single-event requests (and healthy GETs)")
    parser.add_argument("--webhooks", type=int, default=400)
    parser.add_argument("--alerts", type=int, default=100, help="alerts per webhook")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--open-connections", type=int, default=4,
                        help="keep-alive connections of each client process in the open loop")
    parser.add_argument("--profile", metavar="DIR",
                        help="run the server under cProfile, every thread (stats per thread in DIR/BACKEND; the"
                             " writer's on the wall clock, the others' on their CPU time)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="on a PostgreSQL server with autovacuum off, do not ANALYZE before each measurement")
    parser.add_argument("--server-args", nargs="*", default=[], help="extra arguments of `nocctl serve`")
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return
    sys.path.insert(0, str(HERE))
    env = {**os.environ, "NOC_CONFIG": os.devnull}
    env.pop("NOC_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
          f", load [{Path('/proc/loadavg').read_text().strip()}]", flush=True)
    tables, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            workdir = Path(tmp) / backend
            workdir.mkdir()
            r = bench_backend(backend, args, workdir, env)
            tables.append(table(backend, r, args))
            failed += [f"{backend}: {p}" for p in r["problems"]]
    print(f"load after: [{Path('/proc/loadavg').read_text().strip()}]")
    print("\n\n".join(tables))
    if failed:
        raise SystemExit("FAILED: " + "; ".join(failed))


if __name__ == "__main__":
    main()
