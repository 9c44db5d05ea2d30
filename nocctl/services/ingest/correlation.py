"""Correlation of ingest's new alerts: which group each joins, planned before the insert so a
new alert carries its group from the start (one statement, no re-pointing afterwards).

A new alert joins the group of the nearest active alert of its site (client-level alerts: of
its client) whose first_seen_at is within the window, else starts a group of its own."""
from __future__ import annotations

import bisect
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy.orm import Session

from nocctl.lifecycle import ALERT_ACTIVE_SQL
from nocctl.models import Alert
from nocctl.rawsql import RawSQL
from nocctl.services.ingest.events import Trigger

ALERTS = Alert.__table__
ACTIVE = text(ALERT_ACTIVE_SQL)

# (correlation_id, parent_alert_id, root key): the group a new alert joins, its first alert's
# id, and, when that first alert is new in the same round, its key instead (its id is known
# only once inserted).
Planned = tuple[str, int | None, str | None]


def active_keys(sql: RawSQL, tenant_id: int, keys: list[str]) -> set[str]:
    """The keys among `keys` that have an active alert."""
    return {row[0] for row in sql.select_in(
        f"SELECT dedup_key FROM alert WHERE tenant_id = {sql.mark} AND {ALERT_ACTIVE_SQL} AND dedup_key {{in}}",
        [tenant_id], keys)}


def plan(session: Session, sql: RawSQL, tenant_id: int, triggers: Mapping[str, Trigger],
         window: int) -> dict[str, Planned]:
    """For each key of `triggers` that has no active alert yet, the group its new alert joins.
    `window` is in seconds."""
    active = active_keys(sql, tenant_id, list(triggers))
    fresh = [(key, t) for key, t in triggers.items() if key not in active]
    if not fresh:
        return {}
    site_ids = {t.first.site_id for _, t in fresh if t.first.site_id is not None}
    client_ids = {t.first.client_id for _, t in fresh if t.first.site_id is None}
    low = min(t.first_seen for _, t in fresh).timestamp() - window
    high = max(t.first_seen for _, t in fresh).timestamp() + window
    scope: list[ColumnElement[bool]] = []
    if site_ids:
        scope.append(ALERTS.c.site_id.in_(site_ids))
    if client_ids:
        scope.append(ALERTS.c.client_id.in_(client_ids) & ALERTS.c.site_id.is_(None))
    candidates = session.execute(
        select(ALERTS.c.id, ALERTS.c.site_id, ALERTS.c.client_id, ALERTS.c.first_seen_at,
               ALERTS.c.correlation_id, ALERTS.c.parent_alert_id)
        .where(ALERTS.c.tenant_id == tenant_id, ACTIVE, or_(*scope),
               ALERTS.c.first_seen_at >= datetime.fromtimestamp(low, UTC),
               ALERTS.c.first_seen_at <= datetime.fromtimestamp(high, UTC))
    ).all()
    # Per scope, a time-sorted list of (first seen, correlation id, root id, root key).
    groups: dict[tuple[int | None, int | None], tuple[list[float], list[Planned]]] = {}
    for c in candidates:
        if c.correlation_id is None:
            continue
        times, members = groups.setdefault((c.site_id, c.client_id if c.site_id is None else None), ([], []))
        at = c.first_seen_at.timestamp()
        i = bisect.bisect(times, at)
        times.insert(i, at)
        members.insert(i, (c.correlation_id, c.parent_alert_id or c.id, None))
    planned: dict[str, Planned] = {}
    for key, t in sorted(fresh, key=lambda kt: kt[1].first_seen):
        site_id = t.first.site_id
        times, members = groups.setdefault((site_id, t.first.client_id if site_id is None else None), ([], []))
        at = t.first_seen.timestamp()
        i = bisect.bisect(times, at)
        best = None
        for j in (i - 1, i):  # the nearest neighbours in time
            if 0 <= j < len(times) and abs(times[j] - at) <= window and (
                    best is None or abs(times[j] - at) < abs(times[best] - at)):
                best = j
        member: Planned
        if best is None:
            member = (str(uuid.uuid4()), None, key)
            planned[key] = (member[0], None, None)
        else:
            member = members[best]
            planned[key] = member
        times.insert(i, at)
        members.insert(i, member)
    return planned
