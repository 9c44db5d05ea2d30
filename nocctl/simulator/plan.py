"""The demo's scenario in time: the period it covers (`Plan`: the end, the days before it and
the seed), the instants its stories happen at, and its maintenance windows. The organisation
is in India: local time is India Standard Time, which has no daylight saving."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from nocctl.simulator.organisation import CLIENT_OF, SITES

IST = timedelta(hours=5, minutes=30)
IST_SECONDS = 19800
HOUR, DAY = 3600, 86400


@dataclass(frozen=True)
class Window:
    """A maintenance window of the demo, as the generator and `maintenance.add` see it."""

    scope: str  # client | site
    unit: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    types: tuple[str, ...] = ()  # empty: suppress all
    weekly_until: date | None = None

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(s for s in SITES if (CLIENT_OF[s] if self.scope == "client" else s) == self.unit)

    def occurrences(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        first, length = int(self.starts_at.timestamp()), int((self.ends_at - self.starts_at).total_seconds())
        period = 7 * DAY if self.weekly_until else None
        at = first
        while at <= end:  # India has no daylight saving: a weekly window is a fixed period
            if self.weekly_until and (datetime.fromtimestamp(at, UTC) + IST).date() > self.weekly_until:
                return
            if at + length > start:
                yield at, at + length
            if period is None:
                return
            at += period

    def holds(self, site: str, alert_type: str) -> bool:
        return site in self.sites and (not self.types or alert_type in self.types)


@dataclass(frozen=True)
class Plan:
    """The period of the demo: `days` of traffic up to `end`, generated from `seed`."""

    end: datetime
    days: int
    seed: int

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def setup_at(self) -> datetime:
        """The organisation is set up the day before the traffic starts."""
        return (self.start - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)

    def story_at(self, days_before_end: float, share_of_span: float, minutes: int = 0) -> int:
        """An instant `days_before_end` before the end, or `share_of_span` of a short demo
        (plus `minutes`, so that stories do not all happen on the hour)."""
        span = self.days * DAY
        return int(self.end.timestamp() - min(days_before_end * DAY, share_of_span * span)) + minutes * 60


def windows(plan: Plan) -> list[Window]:
    """The weekly patching window of GLOBEX (Sunday 02:00–04:00 IST, every site of the
    client) and a one-off UPS replacement at ACME Whitefield that holds device alerts only."""
    local = (plan.setup_at + IST).date()
    sunday = local + timedelta(days=(6 - local.weekday()) % 7 or 7)
    weekly = datetime(sunday.year, sunday.month, sunday.day, 2, 0, tzinfo=UTC) - IST
    ups = datetime.fromtimestamp(plan.story_at(2, 0.4), UTC).replace(minute=0, second=0)
    return [
        Window("client", "GLOBEX", weekly, weekly + timedelta(hours=2),
               "Weekly WMS patching and UPS self-test, CHG-2210",
               weekly_until=(plan.end + IST).date() + timedelta(weeks=26)),
        Window("site", "ACME-BLR-WF", ups, ups + timedelta(hours=3), "UPS replacement, CHG-1042",
               types=("DEVICE_OFFLINE", "SYNC_DEGRADED")),
    ]
