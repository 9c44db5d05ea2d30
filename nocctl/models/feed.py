from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of
from nocctl.vocabulary import FEED_KINDS


class FeedRecord(Base):
    """One record of an operational feed (DESIGN §3 Metric snapshot; issue: operational
    feeds): a ticket, work order, attendance shift, device, geofence event or security
    event, as its source system last described it. Upserted by (tenant, kind, external
    id); the newest `updated_at` wins, so feeds can be replayed in any order.

    One table for every kind, with typed columns (NULL where a kind has no such field), so
    the snapshot pass aggregates each kind with plain set-based SQL on both databases.
    Fields a kind does not use are refused at ingest; anything extra goes to `data`."""

    __tablename__ = "feed_record"
    __table_args__ = (
        one_of("kind", FEED_KINDS, "kind"),
        UniqueConstraint("tenant_id", "kind", "external_id"),
        # The snapshot pass reads one kind of one tenant, grouped by site.
        Index("ix_feed_record_tenant_kind_site", "tenant_id", "kind", "site_id"),
        # Events (geofence, security) are counted by time.
        Index("ix_feed_record_tenant_kind_occurred_at", "tenant_id", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[int] = mapped_column(ForeignKey("business_unit.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(32))  # ticket, work order, device
    priority: Mapped[str | None] = mapped_column(String(8))  # ticket: P1..P4
    title: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ticket
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ticket, work order
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ticket closed, work order completed
    escalated: Mapped[bool | None] = mapped_column(Boolean)  # ticket
    person: Mapped[str | None] = mapped_column(String(200))  # attendance, geofence
    people_group: Mapped[str | None] = mapped_column(String(100))  # attendance
    shift_start: Mapped[datetime | None] = mapped_column(UTCDateTime)  # attendance
    shift_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # device
    offline_after: Mapped[int | None] = mapped_column(Integer)  # device: seconds unseen before offline
    sync_health: Mapped[float | None] = mapped_column(Float)  # device: 0..100
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # geofence, security
    event_type: Mapped[str | None] = mapped_column(String(64))  # geofence, security
    severity: Mapped[str | None] = mapped_column(String(10))  # security
    data: Mapped[dict[str, Any] | None] = mapped_column(Json)
