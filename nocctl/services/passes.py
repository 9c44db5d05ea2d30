"""The one way a cron pass runs (DESIGN §6): under its pass lock (a second runner exits 75),
over every tenant in id order, with the pass's clock given once and its duration measured.

Escalation and the snapshot do their work inside one transaction per tenant, which a dry
run rolls back (`Pass.each_tenant`); retention and notification delivery write in many
short transactions of their own, so they take the tenant list, the lock and the clock from
here and run their loop themselves (`Pass.tenants`, `Pass.now`).

Everything a pass writes is stamped with `Pass.now`, handed down explicitly (audit rows
too: `audit.record_many(..., at=now)`); nothing here touches the process clock."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from nocctl.db import make_sessionmaker
from nocctl.models import Tenant
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
        yield Pass(engine, name, now, dry_run, tenants(engine), started)
        return
    with passlock.hold(engine, name):
        yield Pass(engine, name, now, dry_run, tenants(engine), started)
