"""Row-level security benchmark (issue 14): `nocctl alert list` and `nocctl report mttr` over
1M alerts as a client-scoped person's login role, against the owner role.

    python benchmarks/bench_rls.py [--alerts N] [--incidents N] [--repeat N] [--client CODE]
                                   [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

Setup (timed for information only): a PostgreSQL database with `db upgrade`, `init`, `org
import` (50 clients × 20 sites), then the alerts and incidents of benchmarks/reports.py
(COPY, then VACUUM ANALYZE), then `nocctl db secure`, a person `scoped` holding
noc:view_client and noc:ack_alerts over one client (`--client`, default C00) mapped with
`nocctl user db-role` to a login role, and a login that is a member of the owner group.

Subjects, each a database login (the OS login, the tenant admin, stays the same):
- `superuser` and `superuser --as scoped`: the benchmark's login (RLS does not apply at all:
  nocctl as before `db secure`), acting as the admin and as `scoped`;
- `owner`: the owner group's login, acting as the admin (tenant-wide: every client);
- `owner --as scoped`: the same login impersonating `scoped`: the application's own filter
  for the client, and the owner's all-rows policy (RLS costs one `true`) — the baseline;
- `scoped role`: `scoped`'s own login: the same filter plus the persons' policies.
The last two must print the same rows (checked). Each command is timed end to end as a
subprocess (interpreter start-up included, median of --repeat), then in-process (the service
call after the imports, warm connection), then bare: the alert-list statement nocctl sends,
run with psycopg as each login, beside EXPLAIN ANALYZE of it under RLS (its InitPlans).
Prints one line per measurement and the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from loading import NOCCTL, Database, prepare
from reports import DAYS, NOW, NOW_TEXT, ZONE, census, load

LIST = ("alert", "list", "--format", "json")
MTTR = ("report", "mttr", "--days", str(DAYS), "--tz", ZONE, "--format", "json")
COMMANDS = {"alert list": LIST, "report mttr": MTTR}


def as_login(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def nocctl(url: str, env: dict, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(NOCCTL + ["--db", url, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nocctl {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def setup(url: str, workdir: Path, env: dict, args) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Load, secure, make the person and the logins; returns the subjects: name -> (URL, global options)."""
    import psycopg

    started = time.perf_counter()
    prepare(url, workdir, env)
    seconds = load(url, args.alerts, args.incidents, "chronological")
    print(f"setup: {args.alerts:,} alerts + {args.incidents:,} incidents loaded in {seconds:.1f} s;"
          f" {census(url)}", flush=True)
    database = url.rsplit("/", 1)[1]
    person_login, owner_login = f"{database}_scoped", f"{database}_dba"
    for command in (("db", "secure"), ("user", "add", "scoped"),
                    ("user", "grant", "scoped", "noc:view_client", "--client", args.client),
                    ("user", "grant", "scoped", "noc:ack_alerts", "--client", args.client),
                    ("user", "db-role", "scoped", person_login)):
        nocctl(url, env, "-q", *command)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{owner_login}" LOGIN IN ROLE "{database}_owner"')
        conn.execute("VACUUM ANALYZE")
        share = conn.execute("SELECT count(*) FILTER (WHERE client_id = (SELECT id FROM business_unit"
                             " WHERE code = %s)), count(*) FROM alert", (args.client,)).fetchone()
    print(f"setup: secured, person `scoped` (client {args.client}: {share[0]:,} of {share[1]:,} alerts) mapped to"
          f" {person_login}, owner login {owner_login}; {time.perf_counter() - started:.1f} s in all", flush=True)
    return {"superuser": (url, ()), "superuser --as scoped": (url, ("--as", "scoped")),
            "owner": (as_login(url, owner_login), ()),
            "owner --as scoped": (as_login(url, owner_login), ("--as", "scoped")),
            "scoped role": (as_login(url, person_login), ())}


def end_to_end(subjects: dict, env: dict, repeat: int) -> dict[str, dict[str, float]]:
    medians: dict[str, dict[str, float]] = {}
    outputs: dict[tuple[str, str], str] = {}
    for command, argv in COMMANDS.items():
        for _ in range(repeat):  # alternate the subjects, so the load of the VM falls on all alike
            for subject, (url, options) in subjects.items():
                elapsed, out = nocctl(url, env, *options, *argv)
                medians.setdefault(command, {}).setdefault(subject, []).append(elapsed)  # type: ignore[attr-defined]
                outputs[(command, subject)] = out
        for subject, times in medians[command].items():
            median = statistics.median(times)  # type: ignore[arg-type]
            document = json.loads(outputs[(command, subject)])
            what = (f"{len(document)} alerts, clients {sorted({r['client'] for r in document})[:3]}"
                    if command == "alert list" else
                    f"overall n={document['overall']['count']}, by client {len(document.get('by_client') or [])}")
            print(f"{subject:<21} {command:<12} {median:.3f} s end to end (median of {repeat}: "
                  f"{' '.join(f'{t:.3f}' for t in times)}); {what}; load {os.getloadavg()[0]:.1f}",  # type: ignore[union-attr]
                  flush=True)
            medians[command][subject] = median
        same = (outputs[(command, "scoped role")] == outputs[(command, "owner --as scoped")]
                == outputs[(command, "superuser --as scoped")])
        print(f"{command}: scoped role, owner --as scoped and superuser --as scoped print the same output: {same}",
              flush=True)
        if not same:
            raise SystemExit(f"{command}: the scoped role's output differs from the application's filter")
    return medians


def in_process(subjects: dict, repeat: int) -> tuple[dict[str, dict[str, float]], dict[str, tuple[str, dict]]]:
    """The service calls on a warm connection per subject; returns the medians and the
    alert-list statement of each subject (for the bare runs)."""
    from sqlalchemy import event

    from nocctl import clock
    from nocctl.db import make_engine, make_sessionmaker
    from nocctl.reporting import sections_of
    from nocctl.services import alerts, reports
    from nocctl.services.rbac import Caller

    clock.set_now(NOW)
    since, until = NOW - timedelta(days=DAYS), NOW
    medians: dict[str, dict[str, float]] = {}
    statements: dict[str, tuple[str, dict]] = {}
    for subject, (url, options) in subjects.items():
        engine = make_engine(url)
        seen: list[tuple[str, dict]] = []

        def note(conn, cursor, statement, parameters, context, many, seen=seen):
            seen.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", note)
        factory = make_sessionmaker(engine)
        caller = Caller.from_process("default", options[1] if options else None)
        calls = {"alert list": lambda s, c=caller: alerts.list_alerts(s, c),
                 "report mttr": lambda s, c=caller: reports.build(s, c, sections_of("mttr"), since, until, ZONE)}
        for command, call in calls.items():
            with factory() as session:  # connect, warm up
                call(session)
            times = []
            for _ in range(repeat):
                seen.clear()
                with factory() as session:
                    started = time.perf_counter()
                    call(session)
                    times.append(time.perf_counter() - started)
            if command == "alert list":
                statements[subject] = next((s, p) for s, p in seen if "FROM alert" in s and "LIMIT" in s)
            medians.setdefault(command, {})[subject] = statistics.median(times)
            print(f"{subject:<21} {command:<12} {statistics.median(times):.3f} s in-process (median of {repeat}: "
                  f"{' '.join(f'{t:.3f}' for t in times)})", flush=True)
        engine.dispose()
    clock.set_now(None)
    return medians, statements


def bare(subjects: dict, statements: dict[str, tuple[str, dict]], repeat: int) -> dict[str, float]:
    """The alert-list statement as nocctl sends it, with psycopg as each login; EXPLAIN
    ANALYZE of the scoped role's."""
    import psycopg
    from sqlalchemy.engine import make_url

    medians = {}
    for subject, (url, _) in subjects.items():
        statement, parameters = statements[subject]
        parsed = make_url(url)
        with psycopg.connect(host=parsed.host, port=parsed.port or 5432, dbname=parsed.database,
                             user=parsed.username) as conn:
            conn.execute(statement, parameters).fetchall()  # warm
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                rows = conn.execute(statement, parameters).fetchall()
                times.append(time.perf_counter() - started)
            medians[subject] = statistics.median(times)
            print(f"{subject:<21} alert list   {medians[subject] * 1000:.1f} ms bare SQL (psycopg, median of {repeat});"
                  f" {len(rows)} rows", flush=True)
            if subject == "scoped role":
                plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)]
                scans = sorted({line.strip().split("  (")[0].removeprefix("->  ") for line in plan
                                if " on alert" in line and "Scan" in line})
                print(f"scoped role EXPLAIN ANALYZE of the alert-list statement: {sum('InitPlan' in p for p in plan)}"
                      f" InitPlans, {sum('SubPlan' in p for p in plan)} SubPlans; alert read by {'; '.join(scans)};"
                      f" {next(p.strip() for p in plan if 'Execution Time' in p)}", flush=True)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000, help="Alerts stored  [default: 1,000,000]")
    parser.add_argument("--incidents", type=int, default=100_000, help="Incidents stored  [default: 100,000]")
    parser.add_argument("--client", default="C00", help="The scoped person's client  [default: C00]")
    parser.add_argument("--repeat", type=int, default=5, metavar="N", help="Runs per measurement (median)")
    parser.add_argument("--pg", default=os.environ.get("NOC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        metavar="URL", help="Server to create the benchmark database on (dropped at the end)")
    parser.add_argument("--keep", action="store_true", help="Keep the database and its roles (print the URL)")
    args = parser.parse_args()

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "empty.toml"
        config.write_text("")
        base = {k: v for k, v in os.environ.items() if k not in ("NOC_DATABASE_URL", "NOC_NOW", "NOC_TENANT",
                                                                "NOC_ACTOR")}
        env = {**base, "NOC_CONFIG": str(config), "NOC_NOW": NOW_TEXT}
        dbs = Database("postgresql", args.pg, workdir)
        url = dbs.new()
        database = url.rsplit("/", 1)[1]
        try:
            subjects = setup(url, workdir, env, args)
            e2e = end_to_end(subjects, env, args.repeat)
            inproc, statements = in_process(subjects, args.repeat)
            sql = bare(subjects, statements, args.repeat)
            print("ratios: scoped role / owner --as scoped; scoped role / superuser --as scoped;"
                  " owner / superuser (the admin's view)")
            for command in COMMANDS:
                for label, row in (("end to end", e2e[command]), ("in-process", inproc[command]),
                                   *((("bare SQL", sql),) if command == "alert list" else ())):
                    print(f"  {command:<12} {label:<11} {row['scoped role'] / row['owner --as scoped']:.2f};"
                          f" {row['scoped role'] / row['superuser --as scoped']:.2f};"
                          f" {row['owner'] / row['superuser']:.2f}")
        finally:
            if args.keep:
                print(f"kept {url}")
            else:
                dbs.drop_all()
                import psycopg

                with psycopg.connect(args.pg, autocommit=True) as conn:
                    for (role,) in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)"
                                                " ORDER BY rolname DESC", (database,)).fetchall():
                        conn.execute(f'DROP ROLE "{role}"')


if __name__ == "__main__":
    main()
