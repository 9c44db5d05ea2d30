from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of
from nocctl.vocabulary import UNIT_KINDS


class Snapshot(Base):
    """The metrics of one client or site for one window (DESIGN §3 Metric snapshot), with
    its dimensions copied in (they may change later; the snapshot keeps what was true).
    Upserted by (unit, window end): re-running a window changes nothing."""

    __tablename__ = "snapshot"
    __table_args__ = (
        one_of("scope", UNIT_KINDS, "scope"),
        UniqueConstraint("tenant_id", "unit_id", "window_end"),
        # The status view reads the latest window; retention removes old ones.
        Index("ix_snapshot_tenant_window_end", "tenant_id", "window_end"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(10))  # CLIENT or SITE
    unit_id: Mapped[int] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    officer_in_charge: Mapped[str | None] = mapped_column(String(100))  # username, as it was
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
