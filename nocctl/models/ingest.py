from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of

REJECT_STATUSES = ("PENDING", "RETRIED")


class IngestEvent(Base):
    """Event keys already applied, so a replayed input changes nothing (DESIGN §3,
    Idempotent replay). Old keys are removed by retention."""

    __tablename__ = "ingest_event"
    # Clustered on its key (SQLite: WITHOUT ROWID), and no second index: every ingested
    # event writes one row here, so each index costs ingest speed. Retention scans seen_at.
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 -- read once by SQLAlchemy, never mutated

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    event_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)  # md5 digest
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IngestReject(Base):
    """The dead-letter table: input that could not be used, kept with its raw text and the
    reason, for `nocctl ingest rejects list/retry`."""

    __tablename__ = "ingest_reject"
    __table_args__ = (
        one_of("status", REJECT_STATUSES, "status"),
        Index("ix_ingest_reject_tenant_status_received_at", "tenant_id", "status", "received_at"),
        # The same bad record piped again is not kept twice while it is pending.
        Index("uq_ingest_reject_pending_raw", "tenant_id", "raw_hash", unique=True,
              sqlite_where=text("status = 'PENDING'"), postgresql_where=text("status = 'PENDING'")),
        # A scoped feed account lists and retries what it sent.
        Index("ix_ingest_reject_tenant_sender_status", "tenant_id", "sender_person_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(500))
    line: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    raw_hash: Mapped[str] = mapped_column(String(40))
    input_format: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    defaults: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(10), default="PENDING", server_default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who sent it (NULL on rows older than these columns): `rejects retry` runs it again with
    # the sender's rights. The system (a cron pass) has no person.
    sender_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    sender_login: Mapped[str | None] = mapped_column(String(100))
    sender_system: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
