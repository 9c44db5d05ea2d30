"""Reports benchmark (DESIGN §8): each `nocctl report` over 1M alerts and 100k incidents.

`nocctl report mttr|mtta|frequency|sla|noisy|weekly --days 30 --tz Asia/Kolkata --format json`
(and `weekly --format html -o FILE`) as a subprocess, interpreter start-up included, with
NOC_NOW at the end of the data, on SQLite and PostgreSQL (target: each report ≤ 2 s on
PostgreSQL; SQLite reported, no target). Then the same reports in-process —
`services.reports.build()` after the imports, on a warm connection — with the time of each
SQL statement, to separate start-up from SQL.

    python benchmarks/reports.py [--alerts N] [--incidents N] [--only sqlite|postgresql]
                                 [--layout chronological|shuffled] [--repeat N]
                                 [--explain DIR] [--candidates] [--keep] [--reuse URL]…
                                 [--baseline DIR]
                                 [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Data (deterministic, seed 42), spread over the 90 days before NOC_NOW: 1,000,000 alerts —
≈ 87% RESOLVED (7 in 10 acknowledged first; time_to_ack / time_to_resolve consistent with
the instants), 5% ACKNOWLEDGED/ASSIGNED, 4% NEW/ESCALATED, 4% SUPPRESSED by one maintenance
window; duplicate_count skewed (most 0–5, 1% up to 500); 8 types, 5 severities; 50 clients ×
20 sites with a skewed share per site — and 100,000 incidents (sla_target = created_at + 4 h
CRITICAL, 8 h HIGH, 24 h MEDIUM, 72 h LOW, none for INFO; resolved on time, late, or open).
Loaded with bulk SQL (sqlite3 `executemany` / PostgreSQL `COPY`) after `nocctl init` and
`org import`, then ANALYZE: setup, timed only for information. By default the rows are
stored in first-seen order, as ingest writes them; `--layout shuffled` scatters them.

--explain DIR writes, per report, every statement it runs with its parameters and plan
(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS), one line per statement printed; SQLite: EXPLAIN
QUERY PLAN). The in-process weekly report includes its key figures against the previous
period (`kpis`), timed as the `kpis …` statements.
--candidates then creates the indexes of CANDIDATE_STAGES by hand in the benchmark database,
stage by stage (nocctl's schema is not changed), and measures everything again after each.
--keep leaves the databases in place (their URLs are printed) instead of dropping them;
--reuse URL measures such a database again instead of building one (once per backend).
--baseline DIR measures a second nocctl tree (a checkout of another commit) on the same
database: each end-to-end run of a report alternates between the trees (PYTHONPATH=DIR and
this one, each from a directory that is not a checkout), and the in-process measurements run
in child processes importing each tree, taking turns; the JSON of both must be identical.
Every end-to-end line has the process's peak RSS (the largest of the runs).
Prints one line per measurement.
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
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loading import COLUMNS, NOCCTL, TYPES, Database, bulk_load, directory, prepare

THIS = str(Path(__file__).resolve().parent.parent)  # the nocctl tree measured (PYTHONPATH)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-26T12:00:00Z"
SPAN = timedelta(days=90)
DAYS, ZONE = 30, "Asia/Kolkata"
REPORTS = ("mttr", "mtta", "frequency", "sla", "noisy", "weekly")
TARGET_PG = 2.0

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
ALERT_SEVERITY_WEIGHTS = (0.08, 0.17, 0.35, 0.25, 0.15)
TYPE_WEIGHTS = (0.22, 0.18, 0.14, 0.12, 0.10, 0.10, 0.08, 0.06)
# Median minutes to acknowledge / from acknowledgement (or first seen) to resolve, per severity.
ACK_MINUTES = {"CRITICAL": 4, "HIGH": 10, "MEDIUM": 30, "LOW": 90, "INFO": 240}
FIX_MINUTES = {"CRITICAL": 45, "HIGH": 120, "MEDIUM": 360, "LOW": 1440, "INFO": 2880}
ALERT_COLUMNS = (*COLUMNS, "maintenance_window_id")

INCIDENT_SEVERITY_WEIGHTS = (0.15, 0.25, 0.35, 0.15, 0.10)
SLA_HOURS = {"CRITICAL": 4, "HIGH": 8, "MEDIUM": 24, "LOW": 72, "INFO": None}
INCIDENT_COLUMNS = ("tenant_id", "title", "severity", "status", "client_id", "site_id", "created_at", "sla_target",
                    "acknowledged_at", "acknowledged_by", "assigned_at", "assigned_to", "started_at", "resolved_at",
                    "resolved_by", "closed_at", "time_to_resolve")

# What --candidates creates by hand in the benchmark database, stage after stage (each stage
# measured on top of the ones before): (what, PostgreSQL statements, SQLite statements).
# nocctl's own schema is not changed. See benchmarks/RESULTS.md for the findings behind them.
CANDIDATE_STAGES: list[tuple[str, list[str], list[str]]] = [
    ("plain first-seen index (tenant_id, first_seen_at)",
     ["CREATE INDEX bench_alert_tenant_first_seen ON alert (tenant_id, first_seen_at)"],
     ["CREATE INDEX bench_alert_tenant_first_seen ON alert (tenant_id, first_seen_at)"]),
    (("covering first-seen index instead of the plain one (carries alert_type, severity, duplicate_count, "
      "site_id, client_id, maintenance_window_id)"),
     ["DROP INDEX bench_alert_tenant_first_seen",
      ("CREATE INDEX bench_alert_tenant_first_seen ON alert (tenant_id, first_seen_at) "
       "INCLUDE (alert_type, severity, duplicate_count, site_id, client_id, maintenance_window_id)")],
     ["DROP INDEX bench_alert_tenant_first_seen",
      ("CREATE INDEX bench_alert_tenant_first_seen ON alert (tenant_id, first_seen_at, alert_type, severity, "
       "duplicate_count, site_id, client_id, maintenance_window_id)")]),
]


# ---------------------------------------------------------------- data

def _site_weights(count: int, rng: random.Random) -> list[float]:
    """A skewed share per site (weight 1/√rank, ranks shuffled over the sites): the noisiest
    site has ≈ 1.6% of the alerts, the quietest ≈ 0.05%."""
    ranks = list(range(1, count + 1))
    rng.shuffle(ranks)
    cumulative, total = [], 0.0
    for rank in ranks:
        total += 1 / math.sqrt(rank)
        cumulative.append(total)
    return cumulative


def _order(count: int, layout: str) -> Iterator[int]:
    """The time slot of each stored row: 0, 1, … (first-seen order, as ingest stores alerts)
    or a permutation that scatters them over the table."""
    if layout == "chronological":
        yield from range(count)
        return
    step = 7_919_993
    while math.gcd(step, count) != 1:
        step += 2
    for i in range(count):
        yield (i * step) % count


def alert_rows(count: int, tenant_id: int, sites: list[tuple[int, int]], people: list[int], window_id: int,
               layout: str = "chronological") -> Iterator[tuple]:
    """`count` alerts over the 90 days before NOW (tuples in ALERT_COLUMNS order)."""
    rng = random.Random(42)
    cumulative = _site_weights(len(sites), rng)
    start, span = NOW - SPAN, SPAN.total_seconds()
    second = timedelta(seconds=1)
    for i, slot in enumerate(_order(count, layout)):
        first = start + timedelta(seconds=span * (slot + rng.random()) / count)
        client_id, site_id = rng.choices(sites, cum_weights=cumulative)[0]
        alert_type = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        severity = rng.choices(SEVERITIES, ALERT_SEVERITY_WEIGHTS)[0]
        d = rng.random()
        dup = int(rng.expovariate(1 / 2.5)) if d < 0.99 else rng.randint(50, 500)
        entity = f"dev-{i % 200_000:06d}"
        ack_at = ack_by = asg_at = asg_to = esc_at = esc_to = res_at = res_by = tta = ttr = window = None
        level = 0
        tta_s = max(30, int(60 * rng.lognormvariate(math.log(ACK_MINUTES[severity]), 0.8)))
        fix_s = max(60, int(60 * rng.lognormvariate(math.log(FIX_MINUTES[severity]), 0.9)))
        u = rng.random()
        if u < 0.04:
            status, window = "SUPPRESSED", window_id
        elif u < 0.07:
            status = "NEW"
        elif u < 0.08:
            status, level = "ESCALATED", 1
            esc_at, esc_to = first + timedelta(minutes=15), people[i % len(people)]
        elif u < 0.13:
            status = "ACKNOWLEDGED" if u < 0.12 else "ASSIGNED"
        else:
            status = "RESOLVED"
        if status in ("ACKNOWLEDGED", "ASSIGNED") or (status == "RESOLVED" and rng.random() < 0.7):
            ack_at, ack_by, tta = first + tta_s * second, people[(i * 7) % len(people)], tta_s
            if status == "ASSIGNED":
                asg_at, asg_to = ack_at + 60 * second, people[(i * 5) % len(people)]
        if status == "RESOLVED":
            ttr = (tta or 0) + fix_s
            res_at, res_by = first + ttr * second, ack_by or people[i % len(people)]
        if res_at is not None and res_at > NOW:  # not resolved yet at the end of the data
            status, res_at, res_by, ttr = ("ACKNOWLEDGED" if ack_at is not None else "NEW"), None, None, None
        if ack_at is not None and ack_at > NOW:
            status, ack_at, ack_by, tta, asg_at, asg_to = "NEW", None, None, None, None, None
        last = min(NOW, (res_at or ack_at or first) + dup * second)
        key = f"{alert_type}|{site_id}|device|{entity}|{i}"
        yield (tenant_id, client_id, site_id, alert_type, severity, status, f"{alert_type} on {entity}", "device",
               entity, key, "bench", first, last, first, dup, ack_at, ack_by, asg_at, asg_to, esc_at, esc_to, level,
               None, res_at, res_by, tta, ttr, window)


def incident_rows(count: int, tenant_id: int, sites: list[tuple[int, int]], people: list[int],
                  layout: str = "chronological") -> Iterator[tuple]:
    """`count` incidents created over the 90 days before NOW (tuples in INCIDENT_COLUMNS order):
    ≈ 6% still open (half of those created in the last 3 days), of the resolved ones 3 in 4
    on time."""
    rng = random.Random(4242)
    start, span = NOW - SPAN, SPAN.total_seconds()
    hour = timedelta(hours=1)
    for i, slot in enumerate(_order(count, layout)):
        created = start + timedelta(seconds=span * (slot + rng.random()) / count)
        client_id, site_id = sites[rng.randrange(len(sites))]
        severity = rng.choices(SEVERITIES, INCIDENT_SEVERITY_WEIGHTS)[0]
        sla_hours = SLA_HOURS[severity]
        target = created + sla_hours * hour if sla_hours else None
        person = people[i % len(people)]
        u = rng.random()
        open_ = u < 0.06 or (created > NOW - timedelta(days=3) and u < 0.5)
        if sla_hours is None:
            took = rng.uniform(0.5, 48) * hour
        elif rng.random() < 0.75:
            took = rng.uniform(0.05, 0.95) * sla_hours * hour
        else:
            took = rng.uniform(1.05, 4.0) * sla_hours * hour
        resolved = None if open_ or created + took > NOW else created + took
        ack_at = created + timedelta(minutes=rng.uniform(2, 30))
        if ack_at > NOW or (resolved is None and i % 4 == 0):
            ack_at = None
        closed = asg_at = asg_to = started = res_by = ttr = None
        if resolved is not None:
            status, res_by, ttr = "RESOLVED", person, int((resolved - created).total_seconds())
            if ack_at is not None and ack_at > resolved:
                ack_at = None
            closed = resolved + rng.uniform(0.5, 24) * hour
            if closed > NOW or i % 2:
                closed = None
            else:
                status = "CLOSED"
        else:
            status = "NEW" if ack_at is None else ("ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS")[i % 3]
            if status in ("ASSIGNED", "IN_PROGRESS"):
                asg_at, asg_to = ack_at + timedelta(minutes=1), people[(i + 1) % len(people)]
            if status == "IN_PROGRESS":
                started = asg_at + timedelta(minutes=1)
        yield (tenant_id, f"{severity} incident {i}", severity, status, client_id, site_id, created, target, ack_at,
               person if ack_at else None, asg_at, asg_to, started, resolved, res_by, closed, ttr)


def maintenance_window(url: str, tenant_id: int) -> int:
    """The one tenant-wide window the SUPPRESSED alerts point at."""
    from sqlalchemy import insert

    from nocctl.db import make_engine
    from nocctl.models import MaintenanceWindow

    engine = make_engine(url)
    with engine.begin() as conn:
        window_id = conn.execute(insert(MaintenanceWindow).values(
            tenant_id=tenant_id, scope_kind="TENANT", suppress_all=True, starts_at=NOW - SPAN, ends_at=NOW,
            recurrence="NONE", timezone="UTC", reason="benchmark: everything suppressed", created_at=NOW - SPAN,
        ).returning(MaintenanceWindow.id)).scalar_one()
    engine.dispose()
    return window_id


def load(url: str, alerts: int, incidents: int, layout: str) -> float:
    started = time.perf_counter()
    tenant_id, sites, people = directory(url)
    window_id = maintenance_window(url, tenant_id)
    bulk_load(url, [("alert", ALERT_COLUMNS, alert_rows(alerts, tenant_id, sites, people, window_id, layout)),
                    ("incident", INCIDENT_COLUMNS, incident_rows(incidents, tenant_id, sites, people, layout))])
    return time.perf_counter() - started


def census(url: str) -> str:
    """What was loaded, and what the 30-day window holds (for the record)."""
    from sqlalchemy import create_engine, text

    from nocctl.db import normalise_url

    since = NOW - timedelta(days=DAYS)
    sql = {
        "alerts": "SELECT count(*) FROM alert",
        "incidents": "SELECT count(*) FROM incident",
        "first seen in window": "SELECT count(*) FROM alert WHERE first_seen_at >= :s",
        "resolved in window": "SELECT count(*) FROM alert WHERE resolved_at >= :s",
        "acknowledged in window": "SELECT count(*) FROM alert WHERE acknowledged_at >= :s",
        "incidents in window": "SELECT count(*) FROM incident WHERE created_at >= :s",
    }
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        since_value = since.strftime("%Y-%m-%d %H:%M:%S.%f") if url.startswith("sqlite") else since
        counts = {k: conn.execute(text(q), {"s": since_value}).scalar_one() for k, q in sql.items()}
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM alert GROUP BY status")).all())
    engine.dispose()
    return (", ".join(f"{k} {v:,}" for k, v in counts.items())
            + "; alert statuses " + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())))


# ---------------------------------------------------------------- measuring

def report_args(kind: str, fmt: str, out: Path | None) -> list[str]:
    args = ["report", kind, "--days", str(DAYS), "--tz", ZONE, "--format", fmt]
    return args + (["-o", str(out)] if out else [])


PEAK_MB: dict[tuple[str, str, str], float] = {}  # (database, tree, report) → the largest peak RSS, MB


def run_report(url: str, env: dict, kind: str, fmt: str = "json", out: Path | None = None) -> tuple[float, str]:
    """One `nocctl report …` as a subprocess: (seconds end to end, stdout). Its peak RSS
    goes to PEAK_MB."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(NOCCTL + ["--db", url, *report_args(kind, fmt, out)], env=env, stdout=stdout,
                                 stderr=stderr, cwd=tempfile.gettempdir())  # not ./nocctl: the tree's
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        output, errors = stdout.read().decode(), stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"report {kind} failed ({child.returncode}): {errors[-2000:]}")
    key = (url, env.get("PYTHONPATH", ""), kind if fmt == "json" else f"{kind} {fmt}")
    PEAK_MB[key] = max(PEAK_MB.get(key, 0.0), usage.ru_maxrss / 1024)
    return elapsed, output


def check(kind: str, document: dict) -> str:
    """A short account of the report's numbers (and a sanity check of its shape)."""
    if kind in ("mttr", "mtta"):
        o = document["overall"]
        assert o["count"] > 0 and len(document["by_severity"]) == 5 and len(document["by_client"]) == 50, document
        return (f"count {o['count']:,}, mean {o['mean_seconds']:.0f} s, p50 {o['p50_seconds']:.0f} s,"
                f" p90 {o['p90_seconds']:.0f} s")
    if kind == "frequency":
        alerts = sum(v["alerts"] for v in document["by_type"].values())
        assert len(document["by_type"]) == 8 and len(document["by_day"]) in (30, 31), document
        return f"{alerts:,} alerts, {sum(v['events'] for v in document['by_type'].values()):,} events, " \
               f"{len(document['by_day'])} local days"
    if kind == "sla":
        assert document["met"] > 0 and document["breached"] > 0 and document["pending"] > 0, document
        return f"met {document['met']:,}, breached {document['breached']:,}, pending {document['pending']:,}, " \
               f"compliance {document['compliance']}"
    if kind == "noisy":
        assert len(document["sites"]) == 10, document
        top = document["sites"][0]
        return f"top site {top['site']} {top['alerts']:,} alerts ({top['share']:.2%}), {top['suppressed']:,} suppressed"
    assert set(document["sections"]) == {"mttr", "mtta", "frequency", "sla", "noisy"}, document
    return "5 sections"


def end_to_end(backend: str, url: str, trees: dict[str, dict], repeat: int, workdir: Path, label: str,
               results: dict) -> dict[str, dict[str, float]]:
    """Each report `repeat` times per tree (`trees`: name → environment), the trees taking
    turns run by run, so that each compares with the others under the same load."""
    medians: dict[str, dict[str, float]] = {tree: {} for tree in trees}
    html = workdir / "weekly.html"
    for kind, fmt in [(kind, "json") for kind in REPORTS] + [("weekly", "html")]:
        times: dict[str, list[float]] = {tree: [] for tree in trees}
        stdout = {}
        for _ in range(repeat):
            for tree, env in trees.items():
                elapsed, stdout[tree] = run_report(url, env, kind, fmt, html if fmt == "html" else None)
                times[tree].append(elapsed)
        name = kind if fmt == "json" else "weekly html"
        for tree, env in trees.items():
            medians[tree][name] = statistics.median(times[tree])
            verdict = ""
            if backend == "postgresql":
                verdict = " [target ≤ 2 s: " + ("met" if medians[tree][name] <= TARGET_PG else "MISSED") + "]"
            if fmt == "json":
                document = json.loads(stdout[tree])
                if tree == THIS:
                    results[kind] = document
                account = check(kind, document)
                what = f"report {kind} --format json"
            else:
                text = html.read_text(encoding="utf-8")
                assert text.lstrip().lower().startswith("<!doctype html") and "<svg" in text, text[:200]
                account = f"{len(text.encode()):,} bytes, EXPORT_DATA audited"
                what = "report weekly --format html -o FILE"
            peak = PEAK_MB[(url, env.get("PYTHONPATH", ""), name)]
            print(f"{label}{'' if tree == THIS else ' ' + tree} {what}: {medians[tree][name]:.2f} s end to end "
                  f"(median of {repeat}: {' '.join(f'{t:.2f}' for t in times[tree])}){verdict}; {account};"
                  f" peak RSS {peak:.0f} MB; load {os.getloadavg()[0]:.1f}", flush=True)
        if fmt == "json" and len(trees) > 1:
            documents = [json.loads(stdout[tree]) for tree in trees]
            for document in documents:
                document.pop("generated_at", None)
            same = all(json.dumps(d, sort_keys=True) == json.dumps(documents[0], sort_keys=True) for d in documents)
            print(f"{label} report {kind}: the trees' JSON identical: {'yes' if same else 'NO'}", flush=True)
    return medians


class Recorder:
    """Times every statement an engine runs (SQLAlchemy cursor events)."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.statements: list[tuple[float, str, object]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((time.perf_counter() - conn.info.pop("bench_started"), statement, parameters))


def _what(statement: str) -> str:
    """A short name for a report statement."""
    s = " ".join(statement.split())
    if "avg(CASE WHEN (alert." in s:
        return f"kpis {'mttr' if 'alert.resolved_at' in s else 'mtta'}"
    if "CASE WHEN (alert.first_seen_at >=" in s:
        return "kpis alerts"
    if "CASE WHEN (incident.created_at >=" in s:
        return "kpis sla"
    if "percentile_cont" in s or "row_number() OVER" in s or "array_agg(" in s or "group_concat(" in s:
        value = "time_to_resolve" if "time_to_resolve" in s else "time_to_ack"
        group = "cells" if "BY alert.severity, alert.client_id" in s else "severity" if "BY alert.severity" in s \
            else "client" if "BY alert.client_id" in s else "overall"
        return f"{'mttr' if value == 'time_to_resolve' else 'mtta'} {group}"
    if "FROM incident" in s:
        return "sla"
    if "GROUP BY alert.alert_type, alert.severity" in s or "GROUP BY anon_1.alert_type, anon_1.severity" in s:
        return "frequency"
    if "GROUP BY alert.alert_type" in s:
        return "frequency by type"
    if "GROUP BY alert.severity" in s:
        return "frequency by severity"
    if "CASE WHEN (alert.first_seen_at <" in s:
        return "frequency by day"
    if "GROUP BY alert.site_id" in s:
        return "noisy by site" if "OVER ()" not in s else "noisy"
    if s.startswith("SELECT count(*)") and "FROM alert" in s:
        return "noisy total"
    return "other"


def in_process(url: str, repeat: int, label: str, explain_dir: Path | None) -> dict[str, float]:
    """reports.build() for each report after the imports, on a warm connection: median of
    `repeat`, with the statements of the last run timed."""
    from nocctl import clock
    from nocctl.db import make_engine, make_sessionmaker
    from nocctl.reporting import sections_of
    from nocctl.services import reports
    from nocctl.services.rbac import Caller

    clock.set_now(NOW)
    engine = make_engine(url)
    recorder = Recorder(engine)
    session_maker = make_sessionmaker(engine)
    caller = Caller.from_process("default")
    since, until = NOW - timedelta(days=DAYS), NOW
    with session_maker() as session:  # connect and warm up
        reports.build(session, caller, ("sla",), since, until, ZONE)
    medians = {}
    for kind in REPORTS:
        times = []
        for _ in range(repeat):
            recorder.statements.clear()
            with session_maker() as session:
                started = time.perf_counter()
                reports.build(session, caller, sections_of(kind), since, until, ZONE, compare=kind == "weekly")
                times.append(time.perf_counter() - started)
        medians[kind] = statistics.median(times)
        heavy = [(t, _what(s)) for t, s, _ in recorder.statements if _what(s) != "other"]
        sql = sum(t for t, _ in heavy)
        print(f"{label} in-process reports.build({kind}): {medians[kind]:.2f} s (median of {repeat}: "
              f"{' '.join(f'{t:.2f}' for t in times)}); report SQL {sql:.2f} s in {len(heavy)} statements: "
              + ", ".join(f"{what} {t:.2f}" for t, what in heavy), flush=True)
        if explain_dir is not None and kind != "weekly":
            explain(url, engine, [(s, p) for _, s, p in recorder.statements if _what(s) != "other"],
                    explain_dir / f"{label.split()[0]}-{kind}.txt", label, kind)
    clock.set_now(None)
    engine.dispose()
    return medians


def explain(url: str, engine, statements: list[tuple[str, object]], path: Path, label: str, kind: str) -> None:
    """Each statement with its parameters and plan (PostgreSQL: EXPLAIN (ANALYZE, BUFFERS);
    SQLite: EXPLAIN QUERY PLAN) into `path`; one line per statement with its execution time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    postgres = not url.startswith("sqlite")
    parts = []
    for statement, parameters in statements:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if postgres:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
            raw.rollback()
        finally:
            raw.close()
        parts.append(f"-- {_what(statement)}\n{statement}\n-- parameters: {parameters!r}\n{plan}\n")
        summary = next((line for line in plan.splitlines() if "Execution Time" in line), "")
        if postgres:
            print(f"{label} EXPLAIN ANALYZE {kind} / {_what(statement)}: {summary.strip()}", flush=True)
    path.write_text("\n".join(parts))


def create_candidates(url: str, label: str, stage: int) -> None:
    """One stage of CANDIDATE_STAGES by hand in the benchmark database, then ANALYZE (setup)."""
    postgres = not url.startswith("sqlite")
    what, pg_sql, sqlite_sql = CANDIDATE_STAGES[stage]
    if postgres:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
    else:
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    started = time.perf_counter()
    for sql in pg_sql if postgres else sqlite_sql:
        conn.execute(sql)
    if postgres:
        conn.execute("VACUUM ANALYZE alert")
        conn.execute("CHECKPOINT")
        size = conn.execute("SELECT pg_size_pretty(sum(pg_relation_size(indexrelid))) FROM pg_index "
                            "WHERE indrelid = 'alert'::regclass").fetchone()[0]
    else:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = f"{os.path.getsize(url.split('///', 1)[1]) / 2**20:.0f} MB database file"
    conn.close()
    os.sync()
    print(f"{label} setup: candidate stage {stage + 1}: {what} — created in {time.perf_counter() - started:.1f} s "
          f"(alert indexes now {size})", flush=True)


def compare(results: dict[str, dict[str, dict]]) -> None:
    """The same data on both databases must give the same numbers."""
    if len(results) != 2:
        return
    (a, ra), (b, rb) = results.items()
    differ = []
    for kind in REPORTS:
        x, y = dict(ra.get(kind, {})), dict(rb.get(kind, {}))
        if kind == "weekly":
            x.pop("generated_at", None), y.pop("generated_at", None)
        if json.dumps(x, sort_keys=True) != json.dumps(y, sort_keys=True):
            differ.append(kind)
    print(f"{a} and {b} reports identical: {'yes' if not differ else 'NO, differ: ' + ', '.join(differ)}", flush=True)


def in_process_child(tree: str, url: str, repeat: int, label: str) -> dict[str, float]:
    """in_process() in a child process importing nocctl from `tree`: its lines printed, its
    medians returned."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{Path(__file__).parent}"}
    code = ("import json, reports; from pathlib import Path; "
            f"print('MEDIANS', json.dumps(reports.in_process({url!r}, {repeat}, {label!r}, None)))")
    done = subprocess.run([NOCCTL[0], "-c", code], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"in-process run of {tree} failed: {done.stderr[-2000:]}")
    medians = {}
    for line in done.stdout.splitlines():
        if line.startswith("MEDIANS "):
            medians = json.loads(line.split(" ", 1)[1])
        else:
            print(line, flush=True)
    return medians


def in_process_trees(url: str, repeat: int, label: str, baseline: Path) -> None:
    """in_process() of the baseline tree and of this one, in child processes taking turns
    (one run each per turn), then the medians side by side."""
    runs: dict[str, list[dict[str, float]]] = {str(baseline): [], THIS: []}
    for _ in range(repeat):
        for tree in runs:
            runs[tree].append(in_process_child(tree, url, 1, f"{label}{'' if tree == THIS else ' ' + tree}"))
    for kind in REPORTS:
        before, after = (statistics.median(r[kind] for r in runs[tree]) for tree in runs)
        print(f"{label} in-process {kind}: {before:.2f} s ({baseline}) → {after:.2f} s (this tree), medians of "
              f"{repeat}", flush=True)


def bench(backend: str, args, workdir: Path, env: dict, results: dict) -> None:
    label = backend
    dbs = Database(backend, args.pg, workdir)
    try:
        reused = next((u for u in args.reuse if u.startswith("sqlite") == (backend == "sqlite")), None)
        if reused:
            url = reused
            print(f"{label} setup: reusing {url}; {census(url)}", flush=True)
        else:
            url = dbs.new()
            prepare(url, workdir, env)
            seconds = load(url, args.alerts, args.incidents, args.layout)
            print(f"{label} setup: {args.alerts:,} alerts + {args.incidents:,} incidents loaded and analysed in "
                  f"{seconds:.1f} s ({args.layout}); {census(url)}", flush=True)
        results[backend] = {}
        trees = {THIS: {**env, "PYTHONPATH": THIS}}
        if args.baseline:
            trees = {str(args.baseline): {**env, "PYTHONPATH": str(args.baseline)}, **trees}
        end_to_end(backend, url, trees, args.repeat, workdir, label, results[backend])
        if args.baseline:
            in_process_trees(url, args.repeat, label, args.baseline)
        else:
            in_process(url, args.repeat, label, args.explain)
        if args.candidates:
            for stage in range(len(CANDIDATE_STAGES)):
                create_candidates(url, label, stage)
                label = f"{backend} +stage {stage + 1}"
                end_to_end(backend, url, trees, args.repeat, workdir, label, {})
                in_process(url, args.repeat, label, args.explain / f"stage{stage + 1}" if args.explain else None)
        if args.keep:
            print(f"{backend}: kept {url}", flush=True)
            dbs.created.clear()
    finally:
        dbs.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000, help="Alerts stored  [default: 1,000,000]")
    parser.add_argument("--incidents", type=int, default=100_000, help="Incidents stored  [default: 100,000]")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="One backend  [default: both]")
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        metavar="URL", help="Server to create the benchmark databases on (dropped at the end)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="Runs per measurement (median)")
    parser.add_argument("--layout", choices=["chronological", "shuffled"], default="chronological",
                        help="Rows stored in first-seen order (as ingest writes them) or scattered")
    parser.add_argument("--explain", type=Path, metavar="DIR", help="Write each report's statements and plans here")
    parser.add_argument("--candidates", action="store_true",
                        help="Then create the CANDIDATE_STAGES indexes by hand, stage by stage, measuring each")
    parser.add_argument("--keep", action="store_true", help="Keep the databases (print their URLs)")
    parser.add_argument("--reuse", action="append", default=[], metavar="URL",
                        help="Measure this database (one --keep left) instead of building one; once per backend")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="Also measure the nocctl tree in DIR (PYTHONPATH=DIR), taking turns with this one")
    args = parser.parse_args()

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="nocbench-"))
        config = workdir / "empty.toml"
        config.write_text("")
        base = {k: v for k, v in os.environ.items() if k not in ("NOC_DATABASE_URL", "NOC_NOW", "NOC_TENANT")}
        env = {**base, "NOC_CONFIG": str(config), "NOC_NOW": NOW_TEXT}
        for backend in [args.only] if args.only else ["sqlite", "postgresql"]:
            bench(backend, args, workdir, env, results)
    compare(results)


if __name__ == "__main__":
    main()
