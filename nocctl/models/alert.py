from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nocctl import lifecycle
from nocctl.models.base import Base, BigId, Json, UTCDateTime, one_of
from nocctl.vocabulary import SEVERITIES

# The predicates of the partial indexes: their text is the migrations' too, word for word.
ACTIVE = text(lifecycle.ALERT_ACTIVE_SQL)
UNACKNOWLEDGED = text(lifecycle.ALERT_UNACKNOWLEDGED_SQL)
RESOLVED_CARRIED = ("time_to_resolve", "severity", "client_id", "site_id")
ACKNOWLEDGED_CARRIED = ("time_to_ack", "severity", "client_id", "site_id")


def covering(name: str, key: tuple[str, ...], carried: tuple[str, ...]) -> tuple[Index, Index]:
    """An index on `key` that also carries `carried`: PostgreSQL `name` with INCLUDE, SQLite
    `name`_sqlite with them in the key (migration 0013)."""
    return (Index(name, *key, postgresql_include=list(carried)).ddl_if(dialect="postgresql"),
            Index(f"{name}_sqlite", *key, *carried).ddl_if(dialect="sqlite"))


class Alert(Base):
    __tablename__ = "alert"
    __table_args__ = (
        one_of("severity", SEVERITIES, "severity"),
        one_of("status", lifecycle.ALERT_STATUSES, "status"),
        # At most one active alert per key: concurrent ingests upsert against this index
        # (INSERT … ON CONFLICT … WHERE <the ACTIVE predicate>), so twins cannot be created.
        Index("uq_alert_active_dedup", "tenant_id", "dedup_key", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("ix_alert_tenant_status_first_seen", "tenant_id", "status", "first_seen_at"),
        Index("ix_alert_tenant_site_first_seen", "tenant_id", "site_id", "first_seen_at"),
        Index("ix_alert_tenant_client_first_seen", "tenant_id", "client_id", "first_seen_at"),
        Index("ix_alert_tenant_correlation", "tenant_id", "correlation_id"),
        # MTTR and MTTA read only these (index-only): the value and the groups are carried,
        # as INCLUDE columns on PostgreSQL and at the end of the key on SQLite, which has no
        # INCLUDE. One name per database: the comparison with a database (schema.drift)
        # keys indexes by name, before it filters out the other database's.
        *covering("ix_alert_tenant_resolved_at", ("tenant_id", "resolved_at"), RESOLVED_CARRIED),
        *covering("ix_alert_tenant_acknowledged_at", ("tenant_id", "acknowledged_at"), ACKNOWLEDGED_CARRIED),
        # The escalation pass reads only alerts whose look is due: cost grows with them.
        Index("ix_alert_tenant_escalation_due", "tenant_id", "next_escalation_at",
              sqlite_where=UNACKNOWLEDGED, postgresql_where=UNACKNOWLEDGED),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("business_unit.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("business_unit.id"))
    alert_type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default=lifecycle.NEW)
    message: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    dedup_key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", Json)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    correlation_id: Mapped[str | None] = mapped_column(String(36))
    parent_alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"))
    maintenance_window_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintenance_window.id", ondelete="SET NULL")
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_to: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # When the escalation pass should next look at the alert (it then decides, from the
    # policy, to escalate or to plan a later look; NULL: never again). Moving it earlier is
    # always safe, so writers that change what the decision depends on just reset it.
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Snoozed (`alert snooze`): out of the active view and the escalation pass until then,
    # back by itself after it (nothing is written when it ends). NULL: not snoozed.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    time_to_ack: Mapped[int | None] = mapped_column(Integer)
    time_to_resolve: Mapped[int | None] = mapped_column(Integer)
