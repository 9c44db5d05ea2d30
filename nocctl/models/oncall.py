from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, UTCDateTime


class OncallSchedule(Base):
    """A rotation: ordered members (oncall_member), a start instant and a turn length. A
    client's schedule (`client_id`) or the tenant-wide one (`client_id` NULL)."""

    __tablename__ = "oncall_schedule"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("turn_seconds > 0", name="turn_positive"),
        Index("ix_oncall_schedule_tenant_client", "tenant_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    turn_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))


class OncallMember(Base):
    """One place in a schedule's rotation; `position` counts from 0."""

    __tablename__ = "oncall_member"

    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedule.id", ondelete="CASCADE"),
                                             primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))


class OncallOverride(Base):
    """A person on call for a schedule over [starts_at, ends_at), whoever's turn it is."""

    __tablename__ = "oncall_override"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_oncall_override_tenant_schedule_ends_at", "tenant_id", "schedule_id", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedule.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
