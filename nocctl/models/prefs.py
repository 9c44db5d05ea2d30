from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, Json, UTCDateTime


class OperatorPref(Base):
    """An operator's defaults for the listing commands (the dashboard configuration)."""

    __tablename__ = "operator_pref"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    default_client: Mapped[str | None] = mapped_column(String(64))
    severity_filter: Mapped[list[str] | None] = mapped_column(Json)
    status_filter: Mapped[list[str] | None] = mapped_column(Json)
    output_format: Mapped[str | None] = mapped_column(String(10))
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
