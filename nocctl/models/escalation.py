from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl import lifecycle
from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of

TENANT_DEFAULT = text("client_id IS NULL")
CLIENT_POLICY = text("client_id IS NOT NULL")
PENDING = text(f"status = '{lifecycle.PENDING}'")  # the migrations' text, word for word


class EscalationPolicy(Base):
    """How an unacknowledged alert climbs: `levels` is an ordered list of
    {"target": "oncall" | "site_in_charge" | "client_owner" | "user:NAME",
     "delays": {SEVERITY: seconds}} (a severity absent from `delays` never reaches the level).
    Levels past the listed ones, up to `max_level`, repeat the last one. A client's policy
    (`client_id`) or the tenant default (`client_id` NULL)."""

    __tablename__ = "escalation_policy"
    __table_args__ = (
        CheckConstraint("max_level >= 1", name="max_level_positive"),
        Index("uq_escalation_policy_tenant_default", "tenant_id", unique=True,
              sqlite_where=TENANT_DEFAULT, postgresql_where=TENANT_DEFAULT),
        Index("uq_escalation_policy_tenant_client", "tenant_id", "client_id", unique=True,
              sqlite_where=CLIENT_POLICY, postgresql_where=CLIENT_POLICY),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    levels: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    max_level: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))


class Notification(Base):
    """The outbox: one message for one channel. `notify run` delivers PENDING messages whose
    `next_attempt_at` has come, backing off after each failure until `max_attempts`, then
    FAILED. The payload is what the channel receives (JSON; no secrets)."""

    __tablename__ = "notification"
    __table_args__ = (
        one_of("status", lifecycle.NOTIFICATION_STATUSES, "status"),
        Index("ix_notification_tenant_due", "tenant_id", "next_attempt_at",
              sqlite_where=PENDING, postgresql_where=PENDING),
        Index("ix_notification_tenant_status_created", "tenant_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(100))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="SET NULL"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="SET NULL"))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(10), default=lifecycle.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
