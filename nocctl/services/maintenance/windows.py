"""Maintenance windows as rules (DESIGN §3): which window, if any, covers an alert at an
instant. Pure occurrence maths over `WindowRule`s, plus loading them and an index by scope
(`Rulebook`) that ingest and the snapshot pass match alerts against.

A window has one occurrence [starts_at, ends_at), or repeats it daily or weekly (on chosen
weekdays) in its time zone until `recur_until` (inclusive, a date in that zone): every
occurrence starts at the first one's wall-clock time in the zone and lasts as long as the
first (real time), so the first occurrence is exactly [starts_at, ends_at) and a window keeps
its local hour across daylight-saving changes. Ending a window early (`ended_at`) cuts every
occurrence at that instant; a deleted window covers nothing (its row is kept for history).
A window with matchers (`matchers`) holds, of what its scope and types cover, only the alerts
whose fields and labels they all select.

States, at the clock's now: `active` (an occurrence covers now), `pending` (the next
occurrence is in the future), `expired` (no occurrence now or later, or ended, or deleted)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nocctl.models import MaintenanceWindow
from nocctl.services.maintenance.matchers import Matcher, all_hold, from_stored

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---------------------------------------------------------------- occurrence maths

@dataclass(frozen=True)
class WindowRule:
    id: int
    scope_kind: str
    client_id: int | None
    site_id: int | None
    suppress_all: bool
    alert_types: frozenset[str]
    starts_at: datetime
    ends_at: datetime
    recurrence: str
    weekdays: frozenset[int]
    recur_until: date | None
    zone: ZoneInfo
    ended_at: datetime | None
    matchers: tuple[Matcher, ...] = ()  # ANDed with the scope and the types (`matchers`)

    @classmethod
    def of(cls, row: MaintenanceWindow) -> WindowRule:
        days = frozenset(WEEKDAYS.index(d) for d in (row.recur_weekdays or "").split(",") if d in WEEKDAYS)
        return cls(row.id, row.scope_kind, row.client_id, row.site_id, row.suppress_all,
                   frozenset(row.alert_types or ()), row.starts_at, row.ends_at, row.recurrence, days,
                   row.recur_until, ZoneInfo(row.timezone or "UTC"), row.ended_at, from_stored(row.matchers))

    def applies_to(self, client_id: int, site_id: int | None, alert_type: str, entity_type: str | None = None,
                   entity_id: str | None = None, metadata: dict[str, Any] | None = None) -> bool:
        """Whether the window holds this alert, time aside: its scope covers the alert's unit,
        its types its type (or it holds all), and every matcher holds on its fields and labels."""
        if not self.suppress_all and alert_type not in self.alert_types:
            return False
        if self.scope_kind == "CLIENT":
            if client_id != self.client_id:
                return False
        elif self.scope_kind == "SITE" and (site_id is None or site_id != self.site_id):
            return False
        return not self.matchers or all_hold(self.matchers, alert_type, entity_type, entity_id, metadata)

    # An occurrence is [start, start + length) in real time, where start is the first
    # occurrence's wall-clock time (and fold) on that day in the window's zone.

    def _start_on(self, day: date, first_local: datetime) -> datetime:
        if day == first_local.date():
            return self.starts_at
        return datetime.combine(day, first_local.time(), self.zone).astimezone(UTC)

    def _recurs_on(self, day: date, first_local: datetime) -> bool:
        if day < first_local.date() or (self.recur_until is not None and day > self.recur_until):
            return False
        return self.recurrence != "WEEKLY" or day.weekday() in (self.weekdays or {first_local.weekday()})

    def _cut(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence as ending early leaves it (None: it never happens)."""
        if self.ended_at is None or end <= self.ended_at:
            return start, end
        return (start, self.ended_at) if start < self.ended_at else None

    def occurrence_at(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence [start, end) covering `instant`, if any (cut at `ended_at`)."""
        if self.ended_at is not None and instant >= self.ended_at:
            return None
        length = self.ends_at - self.starts_at
        if self.recurrence == "NONE":
            return self._cut(self.starts_at, self.ends_at) if self.starts_at <= instant < self.ends_at else None
        # Look at the days whose occurrence could still be running at `instant`.
        first_local = self.starts_at.astimezone(self.zone)
        local_day = instant.astimezone(self.zone).date()
        for back in range(length.days + 2):
            day = local_day - timedelta(days=back)
            if not self._recurs_on(day, first_local):
                continue
            start = self._start_on(day, first_local)
            if start <= instant < start + length:
                return self._cut(start, start + length)
        return None

    def occurrences(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The occurrences that end after `after`, in order (cut at `ended_at`). Endless for
        a recurrence without an end date that was never ended: take what you need."""
        length = self.ends_at - self.starts_at
        if self.recurrence == "NONE":
            candidates: Iterator[tuple[datetime, datetime]] = iter([(self.starts_at, self.ends_at)])
        else:
            candidates = self._recurring(after, length)
        for start, end in candidates:
            cut = self._cut(start, end)
            if cut is None:
                return
            if cut[1] > after:
                yield cut

    def _recurring(self, after: datetime, length: timedelta) -> Iterator[tuple[datetime, datetime]]:
        first_local = self.starts_at.astimezone(self.zone)
        day = max(first_local.date(), after.astimezone(self.zone).date() - timedelta(days=length.days + 1))
        while self.recur_until is None or day <= self.recur_until:
            if self._recurs_on(day, first_local):
                start = self._start_on(day, first_local)
                yield start, start + length
            day += timedelta(days=1)

    def next_occurrence(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence in effect at `now`, else the next one to start; None when none is left."""
        return next(self.occurrences(now), None)

    def state(self, now: datetime) -> tuple[str, tuple[datetime, datetime] | None]:
        """(`active` | `pending` | `expired`, the occurrence in effect or next)."""
        found = self.next_occurrence(now)
        if found is None:
            return "expired", None
        return ("active" if found[0] <= now else "pending"), found


def load_rules(session: Session, tenant_id: int, since: datetime | None = None) -> list[WindowRule]:
    """Windows that may cover something at or after `since` (deleted ones never do)."""
    query = select(MaintenanceWindow).where(MaintenanceWindow.tenant_id == tenant_id,
                                            MaintenanceWindow.deleted_at.is_(None))
    if since is not None:
        query = query.where(or_(MaintenanceWindow.recurrence != "NONE", MaintenanceWindow.ends_at > since))
    return [WindowRule.of(row) for row in session.scalars(query)]


class Rulebook:
    """Windows indexed by scope, so matching an alert looks only at windows that could cover it."""

    def __init__(self, rules: list[WindowRule]):
        self.tenant = [r for r in rules if r.scope_kind == "TENANT"]
        # Keyed by the rule's unit (never None for its kind); looked up with an alert's site, which may be.
        self.by_client: dict[int | None, list[WindowRule]] = {}
        self.by_site: dict[int | None, list[WindowRule]] = {}
        for rule in rules:
            if rule.scope_kind == "CLIENT":
                self.by_client.setdefault(rule.client_id, []).append(rule)
            elif rule.scope_kind == "SITE":
                self.by_site.setdefault(rule.site_id, []).append(rule)

    def __bool__(self) -> bool:
        return bool(self.tenant or self.by_client or self.by_site)

    def all_covering(self, client_id: int, site_id: int | None, alert_type: str, instant: datetime,
                     entity_type: str | None = None, entity_id: str | None = None,
                     metadata: dict[str, Any] | None = None) -> list[WindowRule]:
        """Every window that suppresses this alert at this instant, lowest id first. The
        entity and metadata are what the windows' matchers read (none given: an alert
        without labels)."""
        found = [rule for rules in (self.by_site.get(site_id, ()), self.by_client.get(client_id, ()), self.tenant)
                 for rule in rules
                 if rule.applies_to(client_id, site_id, alert_type, entity_type, entity_id, metadata)
                 and rule.occurrence_at(instant)]
        return sorted(found, key=lambda r: r.id)

    def covering(self, client_id: int, site_id: int | None, alert_type: str, instant: datetime,
                 entity_type: str | None = None, entity_id: str | None = None,
                 metadata: dict[str, Any] | None = None) -> WindowRule | None:
        """The window (lowest id) that suppresses this alert at this instant, if any."""
        found = None
        for rules in (self.by_site.get(site_id, ()), self.by_client.get(client_id, ()), self.tenant):
            for rule in rules:
                if (found is None or rule.id < found.id) \
                        and rule.applies_to(client_id, site_id, alert_type, entity_type, entity_id, metadata) \
                        and rule.occurrence_at(instant):
                    found = rule
        return found
