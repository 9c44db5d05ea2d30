"""Maintenance windows: which window, if any, covers an alert at an instant (DESIGN §3).

A window has one occurrence [starts_at, ends_at), or repeats it daily or weekly (on chosen
weekdays) in its time zone until `recur_until` (inclusive, a date in that zone). Ending a
window early (`ended_at`) cuts every occurrence after that instant; a deleted window covers
nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nocctl.models import MaintenanceWindow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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

    @classmethod
    def of(cls, row: MaintenanceWindow) -> "WindowRule":
        days = frozenset(WEEKDAYS.index(d) for d in (row.recur_weekdays or "").split(",") if d in WEEKDAYS)
        return cls(row.id, row.scope_kind, row.client_id, row.site_id, row.suppress_all,
                   frozenset(row.alert_types or ()), row.starts_at, row.ends_at, row.recurrence, days,
                   row.recur_until, ZoneInfo(row.timezone or "UTC"), row.ended_at)

    def applies_to(self, client_id: int, site_id: int | None, alert_type: str) -> bool:
        if not self.suppress_all and alert_type not in self.alert_types:
            return False
        if self.scope_kind == "CLIENT":
            return client_id == self.client_id
        if self.scope_kind == "SITE":
            return site_id is not None and site_id == self.site_id
        return True

    def occurrence_at(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence [start, end) covering `instant`, if any."""
        if self.ended_at is not None and instant >= self.ended_at:
            return None
        length = self.ends_at - self.starts_at
        if self.recurrence == "NONE":
            return (self.starts_at, self.ends_at) if self.starts_at <= instant < self.ends_at else None
        # Occurrences start at the same wall-clock time in the window's zone; look at the
        # days whose occurrence could still be running at `instant`.
        first_local = self.starts_at.astimezone(self.zone)
        local_day = instant.astimezone(self.zone).date()
        span_days = length.days + 1
        for back in range(span_days + 1):
            day = local_day - timedelta(days=back)
            if day < first_local.date() or (self.recur_until and day > self.recur_until):
                continue
            if self.recurrence == "WEEKLY" and day.weekday() not in (self.weekdays or {first_local.weekday()}):
                continue
            start = datetime.combine(day, first_local.time(), self.zone)
            if start <= instant < start + length:
                return start, start + length
        return None


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
        self.by_client: dict[int, list[WindowRule]] = {}
        self.by_site: dict[int, list[WindowRule]] = {}
        for rule in rules:
            if rule.scope_kind == "CLIENT":
                self.by_client.setdefault(rule.client_id, []).append(rule)
            elif rule.scope_kind == "SITE":
                self.by_site.setdefault(rule.site_id, []).append(rule)

    def __bool__(self) -> bool:
        return bool(self.tenant or self.by_client or self.by_site)

    def covering(self, client_id: int, site_id: int | None, alert_type: str, instant: datetime) -> WindowRule | None:
        """The window (lowest id) that suppresses this alert at this instant, if any."""
        found = None
        for rules in (self.by_site.get(site_id, ()), self.by_client.get(client_id, ()), self.tenant):
            for rule in rules:
                if (found is None or rule.id < found.id) and rule.applies_to(client_id, site_id, alert_type) \
                        and rule.occurrence_at(instant):
                    found = rule
        return found
