from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, Json, UTCDateTime


class AuditLog(Base):
    """Append-only record of every change. `hash` chains each row to the previous row of
    its tenant so `audit verify` detects tampering."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_at", "tenant_id", "at"),
        # The head of a tenant's chain (the previous hash of the next row) in one step.
        Index("ix_audit_log_tenant_id", "tenant_id", "id"),
        Index("ix_audit_log_tenant_target", "tenant_id", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    os_user: Mapped[str | None] = mapped_column(String(100))
    host: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    # Where the target lives, so scoped auditors see only their clients' rows.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
