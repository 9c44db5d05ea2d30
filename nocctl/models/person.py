from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, UTCDateTime, one_of
from nocctl.vocabulary import CAPABILITIES, SCOPE_KINDS


class Person(Base):
    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("tenant_id", "username"),
                      Index("uq_person_tenant_db_role", "tenant_id", "db_role", unique=True))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The PostgreSQL login role mapped to this person (`nocctl user db-role`): a session
    # whose session_user is this role acts as this person (one person per tenant).
    db_role: Mapped[str | None] = mapped_column(String(63))


class AccessGrant(Base):
    """One capability held by one person over a scope: the tenant, one client or one site.
    (Named access_grant: GRANT is an SQL keyword.)"""

    __tablename__ = "access_grant"
    __table_args__ = (
        one_of("capability", CAPABILITIES, "capability"),
        one_of("scope_kind", SCOPE_KINDS, "scope_kind"),
        # TENANT scope has no unit, CLIENT/SITE scopes name one.
        CheckConstraint("(scope_kind = 'TENANT') = (unit_id IS NULL)", name="scope_unit"),
        Index(
            "uq_access_grant_tenant_wide",
            "tenant_id", "person_id", "capability",
            unique=True,
            sqlite_where=text("unit_id IS NULL"),
            postgresql_where=text("unit_id IS NULL"),
        ),
        Index(
            "uq_access_grant_scoped",
            "tenant_id", "person_id", "capability", "unit_id",
            unique=True,
            sqlite_where=text("unit_id IS NOT NULL"),
            postgresql_where=text("unit_id IS NOT NULL"),
        ),
        Index("ix_access_grant_tenant_capability", "tenant_id", "capability", "unit_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    capability: Mapped[str] = mapped_column(String(40))
    scope_kind: Mapped[str] = mapped_column(String(10))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
