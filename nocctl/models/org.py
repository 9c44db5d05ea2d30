from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, UTCDateTime, one_of
from nocctl.vocabulary import UNIT_KINDS


class BusinessUnit(Base):
    """A client (customer) or one of its sites. `client_id` is denormalised: a site's client,
    and a client's own id, so "everything of client C" is one equality."""

    __tablename__ = "business_unit"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        one_of("kind", UNIT_KINDS, "kind"),
        Index("ix_business_unit_tenant_client", "tenant_id", "client_id", "kind"),
        Index("ix_business_unit_tenant_geo", "tenant_id", "state", "city"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    site_in_charge_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
