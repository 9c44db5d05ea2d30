"""What the benchmarks that need a big database share: the organisation they import, running
`nocctl` as a subprocess, the tenant's directory (sites, people), bulk loading with plain
driver SQL (sqlite3 `executemany` in large transactions / PostgreSQL `COPY`, then ANALYZE),
and throw-away databases. Setup only: nothing here is measured against a target.

Used by benchmarks/escalation.py, benchmarks/reports.py and benchmarks/snapshot.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

CLIENTS, SITES_PER_CLIENT, PEOPLE = 50, 20, 12
TYPES = ["DEVICE_OFFLINE", "SYNC_DEGRADED", "GEOFENCE_BREACH", "ATTENDANCE_MISSING", "SECURITY_ANOMALY",
         "WORK_ORDER_OVERDUE", "SLA_BREACH", "TICKET_ESCALATED"]
NOCCTL = [sys.executable, "-m", "nocctl"]
# The alert columns the escalation benchmark fills (reports.py adds maintenance_window_id).
COLUMNS = ("tenant_id", "client_id", "site_id", "alert_type", "severity", "status", "message", "entity_type",
           "entity_id", "dedup_key", "source", "first_seen_at", "last_seen_at", "created_at", "duplicate_count",
           "acknowledged_at", "acknowledged_by", "assigned_at", "assigned_to", "escalated_at", "escalated_to",
           "escalation_level", "next_escalation_at", "resolved_at", "resolved_by", "time_to_ack", "time_to_resolve")


def organisation() -> dict:
    """50 clients × 20 sites; every client has an owner and every site an in-charge, so each
    escalation resolves to a person (no on-call schedule: level 1 falls through to the site)."""
    people = [f"eng{p:02d}" for p in range(PEOPLE)]
    return {
        "people": [{"username": u, "name": f"Engineer {u}", "email": f"{u}@noc.example", "phone": f"+9100000{i:05d}"}
                   for i, u in enumerate(people)],
        "clients": [{"code": f"C{c:02d}", "name": f"Client {c}", "owner": people[c % PEOPLE]} for c in range(CLIENTS)],
        "sites": [{"code": f"C{c:02d}-S{s:02d}", "name": f"Site {c}/{s}", "client": f"C{c:02d}",
                   "city": f"City{s % 4}", "state": f"State{c % 5}", "in_charge": people[(c + s) % PEOPLE]}
                  for c in range(CLIENTS) for s in range(SITES_PER_CLIENT)],
    }


def large_organisation(clients: int, sites_per_client: int, people: int, cities: int = 200,
                       states: int = 25) -> dict:
    """`clients` × `sites_per_client` sites (codes C0000, C0000-S00, … so code order is client
    order), `people` people eng000… who own the clients and are in charge of the sites (each
    site an in-charge, each client an owner), the sites spread over `cities` cities, each city
    in one of `states` states (a site's state is its city's)."""
    names = [f"eng{p:03d}" for p in range(people)]
    sites = []
    for c in range(clients):
        for s in range(sites_per_client):
            city = (c * 7 + s * 13) % cities
            sites.append({"code": f"C{c:04d}-S{s:02d}", "name": f"Site {c}/{s}", "client": f"C{c:04d}",
                          "city": f"City{city:03d}", "state": f"State{city % states:02d}",
                          "in_charge": names[(c * sites_per_client + s) % people]})
    return {
        "people": [{"username": u, "name": f"Engineer {u}", "email": f"{u}@noc.example", "phone": f"+9100000{i:05d}"}
                   for i, u in enumerate(names)],
        "clients": [{"code": f"C{c:04d}", "name": f"Client {c}", "owner": names[c % people]} for c in range(clients)],
        "sites": sites,
    }


def nocctl(url: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(NOCCTL + ["--db", url, *args], env=env, capture_output=True, text=True)


def prepare(url: str, workdir: Path, env: dict, org_document: dict | None = None) -> None:
    """`db upgrade`, `init` (the invoking login becomes the admin, tenant-wide grants) and
    `org import` of `org_document` (default: organisation())."""
    org = workdir / "org.json"
    org.write_text(json.dumps(organisation() if org_document is None else org_document))
    for args in (["db", "upgrade"], ["init"], ["org", "import", str(org)]):
        done = nocctl(url, env, "-q", *args)
        if done.returncode != 0:
            raise SystemExit(f"nocctl {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")


def sqlite_text(value):
    """How SQLAlchemy's DateTime (under nocctl's UTCDateTime) stores an instant in SQLite."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def directory(url: str) -> tuple[int, list[tuple[int, int]], list[int]]:
    """The default tenant's id, its sites as (client id, site id) in code order, and the
    ids of the imported people (eng00…) in username order."""
    from sqlalchemy import create_engine, text

    from nocctl.db import normalise_url

    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenant WHERE slug = 'default'")).scalar_one()
        sites = [tuple(r) for r in conn.execute(text(
            "SELECT client_id, id FROM business_unit WHERE tenant_id = :t AND kind = 'SITE' ORDER BY code"),
            {"t": tenant_id})]
        people = [r[0] for r in conn.execute(text(
            "SELECT id FROM person WHERE tenant_id = :t AND username LIKE 'eng%' ORDER BY username"), {"t": tenant_id})]
    engine.dispose()
    return tenant_id, sites, people


def bulk_load(url: str, tables: Sequence[tuple[str, Sequence[str], Iterable[tuple]]]) -> float:
    """Insert each (table, columns, rows) with plain driver SQL — rows are tuples in column
    order, instants as aware datetimes — then ANALYZE (PostgreSQL: VACUUM ANALYZE of the
    tables and a CHECKPOINT) and sync the disks. Returns the seconds taken (setup)."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1048576")  # 1 GB: the nine alert indexes stay in memory while loading
        for table, columns, rows in tables:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            chunk: list[tuple] = []
            for row in rows:
                chunk.append(tuple(sqlite_text(v) for v in row))
                if len(chunk) == 100_000:
                    conn.execute("BEGIN")
                    conn.executemany(sql, chunk)
                    conn.execute("COMMIT")
                    chunk = []
            if chunk:
                conn.execute("BEGIN")
                conn.executemany(sql, chunk)
                conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for table, columns, rows in tables:
                with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.execute(f"VACUUM ANALYZE {', '.join(table for table, _, _ in tables)}")
            conn.execute("CHECKPOINT")
    os.sync()  # the load's writes reach the disk now, not during the measurement
    return time.perf_counter() - started


class Database:
    """Throw-away benchmark databases: SQLite files in `workdir`, or databases created on the
    PostgreSQL server `pg`; `drop_all` removes every one this object created."""

    def __init__(self, backend: str, pg: str, workdir: Path):
        self.backend, self.pg, self.workdir = backend, pg, workdir
        self.created: list[str] = []

    def new(self) -> str:
        if self.backend == "sqlite":
            path = self.workdir / (uuid.uuid4().hex[:8] + ".db")
            self.created.append(str(path))
            return f"sqlite:///{path}"
        import psycopg

        name = f"nocbench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.pg.rsplit("/", 1)[0] + "/" + name

    def clone(self, url: str) -> str:
        """A new database with the contents of `url` (one this object created, with no
        connection open to it), written to disk before returning. PostgreSQL: CREATE
        DATABASE … TEMPLATE (file copy); SQLite: the sqlite3 backup API."""
        if self.backend == "sqlite":
            import sqlite3

            copy = self.new()
            source = sqlite3.connect(url.split("///", 1)[1])
            target = sqlite3.connect(copy.split("///", 1)[1])
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
            target.close()
            source.close()
        else:
            import psycopg

            name = f"nocbench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self.pg, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}" STRATEGY FILE_COPY')
                conn.execute("CHECKPOINT")
            self.created.append(name)
            copy = self.pg.rsplit("/", 1)[0] + "/" + name
        os.sync()
        return copy

    def drop(self, url: str) -> None:
        """Remove one database this object created (before drop_all)."""
        if self.backend == "sqlite":
            path = url.split("///", 1)[1]
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            for lock in Path(path).parent.glob(Path(path).name + ".*.lock"):  # the passes' lock files
                lock.unlink(missing_ok=True)
            name = path
        else:
            import psycopg

            name = url.rsplit("/", 1)[1]
            with psycopg.connect(self.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        if self.backend == "sqlite":
            for path in self.created:
                for suffix in ("", "-wal", "-shm"):
                    Path(path + suffix).unlink(missing_ok=True)
        else:
            import psycopg

            with psycopg.connect(self.pg, autocommit=True) as conn:
                for name in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
