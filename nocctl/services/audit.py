"""The append-only audit log. Each row's hash covers its content and the previous row's
hash of the same tenant, so an edit anywhere breaks the chain after it."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.models import AuditLog, Tenant
from nocctl.services.rbac import Actor


def row_hash(prev_hash: str | None, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(((prev_hash or "") + canonical).encode()).hexdigest()


def record(session: Session, actor: Actor | None, action: str, target_type: str | None = None,
           target_id: Any = None, details: dict[str, Any] | None = None, tenant_id: int | None = None) -> AuditLog:
    """Append one audit row inside the caller's transaction."""
    tid = actor.tenant_id if actor else tenant_id
    # Serialise writers of one tenant's chain (SQLite is serialised by its write lock).
    session.execute(select(Tenant.id).where(Tenant.id == tid).with_for_update())
    prev = session.scalar(
        select(AuditLog.hash).where(AuditLog.tenant_id == tid).order_by(AuditLog.id.desc()).limit(1)
    )
    at = clock.now()
    fields = {
        "tenant_id": tid,
        "at": clock.isoformat(at),
        "actor_id": actor.person_id if actor else None,
        "os_user": actor.os_user if actor else None,
        "host": actor.host if actor else None,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "details": details or {},
    }
    row = AuditLog(
        tenant_id=tid,
        at=at,
        actor_id=fields["actor_id"],
        os_user=fields["os_user"],
        host=fields["host"],
        action=action,
        target_type=target_type,
        target_id=fields["target_id"],
        details=fields["details"],
        prev_hash=prev,
        hash=row_hash(prev, fields),
    )
    session.add(row)
    return row
