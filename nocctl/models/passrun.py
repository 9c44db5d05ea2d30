from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, UTCDateTime


class PassRun(Base):
    """The last successful run of each cron pass, per tenant it covered (`passes.running`
    writes it when a pass that is not a dry run finishes; `nocctl doctor` reads it).

    `ran_at` is the pass's clock (`--now`, NOC_NOW or the real time), the instant its work
    was done for, but never later than the wall clock when it ran; `name` is the pass lock's
    name (`snapshot`, `escalate`, `notify`, `retention`, `alertmanager-sync-NAME`)."""

    __tablename__ = "pass_run"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
