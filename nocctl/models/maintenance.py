from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of
from nocctl.vocabulary import RECURRENCES, SCOPE_KINDS


class MaintenanceWindow(Base):
    """A scheduled suppression: scope (tenant, client or site), all types or a list, one
    occurrence [starts_at, ends_at) or a daily/weekly recurrence of it until `recur_until`
    (a date in `timezone`). Ending early sets `ended_at`; deleting sets `deleted_at` (kept)."""

    __tablename__ = "maintenance_window"
    __table_args__ = (
        one_of("scope_kind", SCOPE_KINDS, "scope_kind"),
        one_of("recurrence", RECURRENCES, "recurrence"),
        Index("ix_maintenance_window_tenant_ends_at", "tenant_id", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    scope_kind: Mapped[str] = mapped_column(String(10))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    suppress_all: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    alert_types: Mapped[list[str] | None] = mapped_column(Json)
    # Alertmanager-style matchers ANDed with scope and types: [{"name", "op", "value"}], or NULL.
    matchers: Mapped[list[dict[str, str]] | None] = mapped_column(Json)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recurrence: Mapped[str] = mapped_column(String(10), default="NONE", server_default="NONE")
    recur_weekdays: Mapped[str | None] = mapped_column(String(30))
    recur_until: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
