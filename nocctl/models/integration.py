from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, UTCDateTime, one_of
from nocctl.vocabulary import INTEGRATION_FORMATS


class Integration(Base):
    """A key that an HTTP sender (`nocctl serve`) presents, and the service identity it
    acts as: `person_id`, a person of its own (`integration:NAME`) holding only noc:ingest
    over the integration's scope (`unit_id`: a client or site; NULL: tenant-wide).

    Only a hash of the key is kept. `key_prefix` is the short visible part of the key (in
    `integration list`, in the server's logs), unique across the database so a key finds its
    row in one index lookup; it stays the same when the key is rotated. During a rotation
    with a grace period the replaced key's hash is kept in `previous_key_hash` until
    `previous_key_expires_at`."""

    __tablename__ = "integration"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        UniqueConstraint("tenant_id", "person_id"),
        one_of("format", INTEGRATION_FORMATS, "format"),
        # Looked up before the tenant is known (the key names it): the one index that does
        # not lead with tenant_id, kept as a unique constraint rather than an index.
        UniqueConstraint("key_prefix"),
        Index("ix_integration_tenant_unit", "tenant_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id", ondelete="CASCADE"))
    key_prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 (hex) of the whole key. A fast hash is right here: the key is 32 random bytes
    # (256 bits) made by nocctl, not a password a person chose, so there is no dictionary to
    # try and a slow KDF (bcrypt, scrypt) would buy nothing but a slower server.
    key_hash: Mapped[str] = mapped_column(String(64))
    previous_key_hash: Mapped[str | None] = mapped_column(String(64))
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
