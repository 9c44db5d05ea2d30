"""Closing events: ingest's acknowledge and resolve events, applied in order to the active
alerts of their keys by the same rules as `alert ack` and `alert resolve` (`lifecycle`:
the statuses each move applies to and the fields it sets). An event reaches only alerts
within the sender's noc:ingest scope; one that finds no alert in a state it applies to is
counted `unmatched` and changes nothing."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.lifecycle import ALERT_ACTIVE_SQL, ALERT_MOVES, alert_acknowledged, alert_resolved
from nocctl.models import Alert
from nocctl.rawsql import RawSQL, update_by_id
from nocctl.services import audit
from nocctl.services.access import Coverage
from nocctl.services.ingest.events import Event
from nocctl.services.rbac import Actor

ALERTS = Alert.__table__
ACTIVE = text(ALERT_ACTIVE_SQL)
ACKNOWLEDGE = ALERT_MOVES["acknowledge"]
RESOLVE = ALERT_MOVES["resolve"]


@dataclass
class Closed:
    """What the events of one round did, and their audit entries (written with the batch)."""

    resolved: int = 0
    acknowledged: int = 0
    unmatched: int = 0
    audit_entries: list[audit.Entry] = field(default_factory=list)


def close(session: Session, sql: RawSQL, actor: Actor, within: Coverage, closes: Sequence[Event]) -> Closed:
    """Apply `closes` (acknowledge and resolve events, in order) as `actor`, to active alerts
    `within` the sender's scope; on PostgreSQL the rows are taken FOR UPDATE."""
    keys = sorted({e.dedup_key for e in closes})
    query = select(ALERTS.c.id, ALERTS.c.dedup_key, ALERTS.c.status, ALERTS.c.first_seen_at, ALERTS.c.client_id,
                   ALERTS.c.site_id).where(
        ALERTS.c.tenant_id == actor.tenant_id, ACTIVE,
        # An event by key alone reaches only alerts within the sender's scope (and locks no others).
        within.where(ALERTS.c.client_id, ALERTS.c.site_id))
    state: dict[str, dict[str, Any]] = {}  # dedup key -> its active alert, as the events leave it
    for i in range(0, len(keys), 500):
        chunk = query.where(ALERTS.c.dedup_key.in_(keys[i:i + 500])).order_by(ALERTS.c.dedup_key)
        if sql.pg:
            chunk = chunk.with_for_update()
        for row in session.execute(chunk):
            state[row.dedup_key] = dict(row._mapping)
    out = Closed()
    changed: dict[int, dict[str, Any]] = {}  # alert id -> the fields the events set, the later ones last
    for event in closes:
        alert = state.get(event.dedup_key)
        move = RESOLVE if event.record.action == "resolve" else ACKNOWLEDGE
        if alert is None or alert["status"] not in move.allowed:
            out.unmatched += 1
            continue
        at = max(event.occurred_at, alert["first_seen_at"])  # never before the alert began
        origin = event.record.source or "ingest"
        if move is RESOLVE:
            # The acknowledgement fields stay as they are (an earlier event may have set them).
            fields = alert_resolved(at, actor.person_id, alert["first_seen_at"], f"resolved by {origin} event")
            del state[event.dedup_key]
            out.resolved += 1
        else:
            fields = alert_acknowledged(at, actor.person_id, alert["first_seen_at"])
            alert["status"] = fields["status"]
            out.acknowledged += 1
        changed.setdefault(alert["id"], {}).update(fields)
        out.audit_entries.append(audit.Entry(move.audit_action, "alert", alert["id"],
                                             {"by": origin, "at": clock.isoformat(at)},
                                             alert["client_id"], alert["site_id"]))
    _write(sql, changed)
    return out


def _write(sql: RawSQL, changed: dict[int, dict[str, Any]]) -> None:
    """One UPDATE by id per set of fields (acknowledged, resolved, or both), its SET list the
    fields' names: the statement writes exactly what the rules set."""
    by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
    for alert_id, fields in changed.items():
        values = [sql.ts(v) if isinstance(v, datetime) else v for v in fields.values()]
        by_columns.setdefault(tuple(fields), []).append([*values, alert_id])
    for columns, rows in by_columns.items():
        sql.many(update_by_id(ALERTS, columns), rows)
