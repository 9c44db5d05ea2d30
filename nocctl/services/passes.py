"""The one way a cron pass runs (DESIGN §6): under its pass lock (a second runner exits 75),
over every tenant in id order, each tenant in one transaction of its own that a dry run
rolls back, with the pass's clock given once and its duration measured.

Escalation and the snapshot do their work inside the tenant's transaction
(`Pass.each_tenant`); retention and notification delivery write in many short
transactions of their own, so they take the tenant list and the lock from here and run
their loop themselves (`Pass.tenants`)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from nocctl.models import Tenant
from nocctl.services import passlock


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

    def each_tenant(self, work: Callable[[Session, TenantRef], None]) -> None:
        """`work(session, tenant)` for every tenant, each in one transaction: committed when
        it returns, rolled back on a dry run, rolled back and re-raised when it fails."""
        from nocctl.db import make_sessionmaker

        with make_sessionmaker(self.writer)() as session:
            for tenant in self.tenants:
                with session.begin() as transaction:
                    work(session, tenant)
                    if self.dry_run:
                        transaction.rollback()

    @property
    def duration_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


def tenants(engine: Engine) -> list[TenantRef]:
    with engine.connect() as conn:
        return [TenantRef(row.id, row.slug) for row in conn.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id))]


@contextmanager
def running(engine: Engine, name: str, now: datetime, dry_run: bool = False, lock: bool = True) -> Iterator[Pass]:
    """Hold pass `name`'s lock (unless `lock` is False: a dry run that only counts cannot
    collide with a real run) and yield the pass over every tenant."""
    started = time.monotonic()
    if not lock:
        yield Pass(engine, name, now, dry_run, tenants(engine), started)
        return
    with passlock.hold(engine, name):
        yield Pass(engine, name, now, dry_run, tenants(engine), started)
