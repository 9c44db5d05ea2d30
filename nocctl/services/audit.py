"""The append-only audit log. Each row's hash covers its content and the previous row's
hash of the same tenant, so an edit anywhere breaks the chain after it."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.models import AuditLog, Tenant
from nocctl.services.rbac import Actor


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


def record_many(session: Session, actor: Actor, entries: Sequence[Entry]) -> None:
    """Append audit rows, chained, inside the caller's transaction."""
    if not entries:
        return
    tid = actor.tenant_id
    # Serialise writers of one tenant's chain (SQLite is serialised by its write lock).
    session.execute(select(Tenant.id).where(Tenant.id == tid).with_for_update())
    prev = session.scalar(select(AuditLog.hash).where(AuditLog.tenant_id == tid).order_by(AuditLog.id.desc()).limit(1))
    at = clock.now()
    rows = []
    for entry in entries:
        fields = {
            "tenant_id": tid,
            "at": clock.isoformat(at),
            "actor_id": actor.person_id,
            "os_user": actor.os_user,
            "host": actor.host,
            "action": entry.action,
            "target_type": entry.target_type,
            "target_id": None if entry.target_id is None else str(entry.target_id),
            "details": entry.details or {},
        }
        # Hashed only when set, so rows written before these columns existed still verify.
        for key in ("client_id", "site_id"):
            if getattr(entry, key) is not None:
                fields[key] = getattr(entry, key)
        digest = row_hash(prev, fields)
        rows.append({"client_id": None, "site_id": None, **fields, "at": at, "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(insert(AuditLog), rows)


def record(session: Session, actor: Actor, action: str, target_type: str | None = None,
           target_id: Any = None, details: dict[str, Any] | None = None, client_id: int | None = None,
           site_id: int | None = None) -> None:
    """Append one audit row inside the caller's transaction."""
    record_many(session, actor, [Entry(action, target_type, target_id, details, client_id, site_id)])
