"""The append-only audit log. Each row's hash covers its content and the previous row's
hash of the same tenant, so an edit anywhere breaks the chain after it."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import NotFound
from nocctl.models import AuditLog, BusinessUnit, Person, Tenant
from nocctl.rawsql import RawSQL
from nocctl.services import access
from nocctl.services.rbac import Actor, Caller

AUDIT_VIEW = "noc:audit_view"
LIST_COLUMNS = ("id", "at", "actor", "os_user", "host", "action", "target_type", "target_id", "client", "site",
                "details")
TABLE_COLUMNS = ("id", "at", "actor", "os_user", "action", "target_type", "target_id", "client", "site", "details")
VERIFY_BATCH = 1000


@dataclass
class Entry:
    action: str
    target_type: str | None = None
    target_id: Any = None
    details: dict[str, Any] | None = None
    client_id: int | None = None  # where the target lives (scoped auditors see only theirs)
    site_id: int | None = None


def row_hash(prev_hash: str | None, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(((prev_hash or "") + canonical).encode()).hexdigest()


def hashed_fields(tenant_id: int, at: datetime, actor_id: int | None, os_user: str | None, host: str | None,
                  action: str, target_type: str | None, target_id: str | None, details: dict[str, Any] | None,
                  client_id: int | None, site_id: int | None) -> dict[str, Any]:
    """What a row's hash covers: the same dict when a row is written and when it is verified."""
    fields = {
        "tenant_id": tenant_id,
        "at": clock.isoformat(at),
        "actor_id": actor_id,
        "os_user": os_user,
        "host": host,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": details,
    }
    # Hashed only when set, so rows written before these columns existed still verify.
    if client_id is not None:
        fields["client_id"] = client_id
    if site_id is not None:
        fields["site_id"] = site_id
    return fields


def _chain_head(session: Session, tid: int) -> str | None:
    """The hash of the tenant's last row, its writers serialised by a lock on the tenant row
    (SQLite is serialised by its write lock). Under `nocctl db secure` a person's login sees
    only the audit rows of its scope, so the lock and the read go through the database's
    `noc_audit_head()`, which reads past row-level security for a login of the tenant."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        secured = connection.info.get("noc_audit_head")  # looked up once per connection
        if secured is None:
            secured = connection.info["noc_audit_head"] = bool(connection.exec_driver_sql(
                "SELECT to_regprocedure('noc_audit_head(bigint)') IS NOT NULL").scalar())
        if secured:
            return connection.exec_driver_sql("SELECT noc_audit_head(%(t)s)", {"t": tid}).scalar()
    session.execute(select(Tenant.id).where(Tenant.id == tid).with_for_update())
    return session.scalar(select(AuditLog.hash).where(AuditLog.tenant_id == tid).order_by(AuditLog.id.desc()).limit(1))


def record_many(session: Session, actor: Actor, entries: Sequence[Entry], *, at: datetime | None = None) -> None:
    """Append audit rows, chained, inside the caller's transaction, stamped `at`: a pass
    gives its own instant; None (interactive commands) reads the clock."""
    if not entries:
        return
    tid = actor.tenant_id
    prev = _chain_head(session, tid)
    if at is None:
        at = clock.now()
    sql = RawSQL(session)  # driver-form values: a pass writes thousands of rows at once
    stamp = sql.ts(at)
    rows = []
    for entry in entries:
        target_id = None if entry.target_id is None else str(entry.target_id)
        details = entry.details or {}
        if actor.impersonated_by:  # both identities (DESIGN §3a); absent otherwise, as in older rows
            details = {**details, "impersonated_by": actor.impersonated_by}
        fields = hashed_fields(tid, at, actor.person_id, actor.os_user, actor.host, entry.action,
                               entry.target_type, target_id, details, entry.client_id, entry.site_id)
        digest = row_hash(prev, fields)
        rows.append((tid, stamp, actor.person_id, actor.os_user, actor.host, entry.action, entry.target_type, target_id,
                     entry.client_id, entry.site_id, sql.json(details), prev, digest))
        prev = digest
    sql.many("INSERT INTO audit_log (tenant_id, at, actor_id, os_user, host, action, target_type, target_id,"
             " client_id, site_id, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def record(session: Session, actor: Actor, action: str, target_type: str | None = None,
           target_id: Any = None, details: dict[str, Any] | None = None, client_id: int | None = None,
           site_id: int | None = None, *, at: datetime | None = None) -> None:
    """Append one audit row inside the caller's transaction (`at` as for `record_many`)."""
    record_many(session, actor, [Entry(action, target_type, target_id, details, client_id, site_id)], at=at)


# ---------------------------------------------------------------- reading the log

def list_entries(session: Session, caller: Caller, actor: str | None = None, action: str | None = None,
                 target_type: str | None = None, target_id: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, limit: int = 100) -> list[dict]:
    """Audit rows the caller may read, newest first. `actor` is a username (unknown: exit 3),
    `since/until` bound `at` as [since, until)."""
    with session.begin():
        scope = access.for_caller(session, caller)
        me = scope.actor
        # Held in some scope (else 77); the rows are those of its scope: a tenant-level row
        # (no client or site) only for a tenant-wide grant.
        readable = scope.require_somewhere(AUDIT_VIEW)
        person = aliased(Person)
        client = aliased(BusinessUnit)
        site = aliased(BusinessUnit)
        query = (
            select(AuditLog, person.username.label("actor"), client.code.label("client"), site.code.label("site"))
            .outerjoin(person, person.id == AuditLog.actor_id)
            .outerjoin(client, client.id == AuditLog.client_id)
            .outerjoin(site, site.id == AuditLog.site_id)
            .where(AuditLog.tenant_id == me.tenant_id, readable.where(AuditLog.client_id, AuditLog.site_id))
        )
        if actor is not None:
            actor_id = session.scalar(select(Person.id).where(Person.tenant_id == me.tenant_id,
                                                              Person.username == actor))
            if actor_id is None:
                raise NotFound(f"no person {actor!r}", "see `nocctl user list`")
            query = query.where(AuditLog.actor_id == actor_id)
        if action is not None:
            query = query.where(AuditLog.action == action.upper())
        if target_type is not None:
            query = query.where(AuditLog.target_type == target_type)
        if target_id is not None:
            query = query.where(AuditLog.target_id == str(target_id))
        if since is not None:
            query = query.where(AuditLog.at >= since)
        if until is not None:
            query = query.where(AuditLog.at < until)
        query = query.order_by(AuditLog.id.desc()).limit(limit)
        return [
            {"id": row.id, "at": row.at, "actor": name, "os_user": row.os_user, "host": row.host,
             "action": row.action, "target_type": row.target_type, "target_id": row.target_id,
             "client": client_code, "site": site_code, "details": row.details}
            for row, name, client_code, site_code in session.execute(query)
        ]


@dataclass
class VerifyResult:
    rows_checked: int
    first_broken_id: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None

    def as_dict(self) -> dict[str, Any]:
        return {"rows_checked": self.rows_checked, "intact": self.intact, **asdict(self)}


def verify(session: Session, caller: Caller) -> VerifyResult:
    """Walk the tenant's chain in id order, recomputing every hash and checking that each
    row names the previous row's hash; stop at the first broken row. Needs a tenant-wide
    noc:audit_view. Rows are streamed in batches, so memory stays flat."""
    with session.begin():
        scope = access.for_caller(session, caller)
        me = scope.actor
        scope.require(AUDIT_VIEW)
        query = (
            select(AuditLog.id, AuditLog.at, AuditLog.actor_id, AuditLog.os_user, AuditLog.host, AuditLog.action,
                   AuditLog.target_type, AuditLog.target_id, AuditLog.details, AuditLog.client_id,
                   AuditLog.site_id, AuditLog.prev_hash, AuditLog.hash)
            .where(AuditLog.tenant_id == me.tenant_id)
            .order_by(AuditLog.id)
            .execution_options(yield_per=VERIFY_BATCH)  # server-side cursor on PostgreSQL
        )
        checked = 0
        prev_id: int | None = None
        prev_hash: str | None = None
        result = session.execute(query)
        try:
            for row in result:
                checked += 1
                if row.prev_hash != prev_hash:
                    if prev_id is None:
                        reason = "it is the first row but names a previous hash (earlier rows were removed)"
                    else:
                        reason = (f"its prev_hash does not match the hash of row {prev_id}"
                                  " (a row between them was removed, or that row was rewritten)")
                    return VerifyResult(checked, row.id, reason)
                fields = hashed_fields(me.tenant_id, row.at, row.actor_id, row.os_user, row.host, row.action,
                                       row.target_type, row.target_id, row.details, row.client_id, row.site_id)
                if row_hash(row.prev_hash, fields) != row.hash:
                    return VerifyResult(checked, row.id, "its content does not match its hash (the row was changed)")
                prev_id, prev_hash = row.id, row.hash
        finally:
            result.close()  # frees the server-side cursor when the walk stops early
        return VerifyResult(checked)
