"""The one way a cron pass runs (DESIGN §6): under its pass lock (a second runner exits 75),
over every tenant in id order, with the pass's clock given once and its duration measured.

Escalation and the snapshot do their work inside one transaction per tenant, which a dry
run rolls back (`Pass.each_tenant`); retention and notification delivery write in many
short transactions of their own, so they take the tenant list, the lock and the clock from
here and run their loop themselves (`Pass.tenants`, `Pass.now`).

Everything a pass writes is stamped with `Pass.now`, handed down explicitly (audit rows
too: `audit.record_many(..., at=now)`); nothing here touches the process clock.

A pass that finishes (not a dry run) is recorded in `pass_run`, one row per tenant it
covered: its name and clock (`last_runs`, read by `nocctl doctor`). A pass that fails is not
recorded, and a run at an earlier --now (a replay) never moves the record back."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from nocctl.db import make_sessionmaker
from nocctl.models import PassRun, Tenant
from nocctl.services import passlock

T = TypeVar("T")


@dataclass(frozen=True)
class TenantRef:
    id: int
    slug: str


@dataclass
class Pass:
    """A pass in progress: its engine, clock and mode, the tenants it covers."""

    engine: Engine
    name: str
    now: datetime
    dry_run: bool
    tenants: list[TenantRef] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def writer(self) -> Engine:
        """The engine for writes: SQLite transactions take the write lock at BEGIN, so a
        pass never fails half-way on a lock it could not upgrade."""
        return self.engine.execution_options(sqlite_begin="IMMEDIATE")

    def each_tenant(self, work: Callable[[Session, TenantRef], T]) -> list[T]:
        """`work(session, tenant)` for every tenant, each in one transaction: committed when
        it returns, rolled back on a dry run, rolled back and re-raised when it fails.
        Returns what `work` returned, in tenant order."""
        results: list[T] = []
        with make_sessionmaker(self.writer)() as session:
            for tenant in self.tenants:
                with session.begin() as transaction:
                    results.append(work(session, tenant))
                    if self.dry_run:
                        transaction.rollback()
        return results

    @property
    def duration_ms(self) -> int:
        """Milliseconds since the pass began (before it took its lock)."""
        return int((time.monotonic() - self.started) * 1000)


def tenants(engine: Engine) -> list[TenantRef]:
    """Every tenant, in id order."""
    with engine.connect() as conn:
        return [TenantRef(row.id, row.slug) for row in conn.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id))]


@contextmanager
def running(engine: Engine, name: str, now: datetime, dry_run: bool = False, lock: bool = True) -> Iterator[Pass]:
    """Hold pass `name`'s lock (unless `lock` is False: a dry run that only counts cannot
    collide with a real run) and yield the pass over every tenant, listed under the lock."""
    started = time.monotonic()
    if not lock:
        job = Pass(engine, name, now, dry_run, tenants(engine), started)
        yield job
        _record(job)
        return
    with passlock.hold(engine, name):
        job = Pass(engine, name, now, dry_run, tenants(engine), started)
        yield job
        _record(job)  # under the lock: no other runner of this pass writes its rows


def _record(job: Pass) -> None:
    """Write down that `job` finished, for each of its tenants (not for a dry run). The
    latest clock is kept: a replay at an earlier --now does not make the pass look stale."""
    if job.dry_run or not job.tenants:
        return
    table = PassRun.__table__
    duration = job.duration_ms
    # Never later than the wall clock: one `--now +2d` would otherwise hide a dead cron for
    # two days. (An earlier --now is kept: it is when the pass last covered.)
    ran_at = min(job.now, datetime.now(UTC))
    with job.writer.begin() as conn:
        for tenant in job.tenants:
            here = (table.c.tenant_id == tenant.id) & (table.c.name == job.name)
            last = conn.scalar(select(table.c.ran_at).where(here))
            if last is None:
                conn.execute(insert(table).values(tenant_id=tenant.id, name=job.name, ran_at=ran_at,
                                                  duration_ms=duration))
            elif last <= ran_at:
                conn.execute(update(table).where(here).values(ran_at=ran_at, duration_ms=duration))


def last_runs(engine: Engine, tenant_id: int) -> dict[str, datetime]:
    """The clock of the last finished run of each pass that ever ran for the tenant."""
    table = PassRun.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.name, table.c.ran_at).where(table.c.tenant_id == tenant_id))
        return {row.name: row.ran_at for row in rows}
