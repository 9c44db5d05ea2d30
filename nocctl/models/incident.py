from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl import lifecycle
from nocctl.models.base import Base, BigId, UTCDateTime, one_of
from nocctl.vocabulary import SEVERITIES


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = (
        one_of("severity", SEVERITIES, "severity"),
        one_of("status", lifecycle.INCIDENT_STATUSES, "status"),
        Index("ix_incident_tenant_created_at", "tenant_id", "created_at"),
        Index("ix_incident_tenant_status", "tenant_id", "status"),
        Index("ix_incident_tenant_correlation", "tenant_id", "correlation_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default=lifecycle.NEW)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    correlation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    sla_target: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_to_resolve: Mapped[int | None] = mapped_column(Integer)
    runbook_link: Mapped[str | None] = mapped_column(String(500))
    ticket_ref: Mapped[str | None] = mapped_column(String(100))
    work_order_ref: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class IncidentAlert(Base):
    __tablename__ = "incident_alert"
    __table_args__ = (Index("ix_incident_alert_tenant_alert", "tenant_id", "alert_id"),)

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
