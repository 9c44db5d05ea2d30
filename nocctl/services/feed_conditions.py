"""What the snapshot pass computes its metrics from and raises its derived alerts from, defined
once: the units (clients and sites) a window is computed for, and one SQL definition per feed
condition (an open ticket, a pending work order, an expected, present, late or missing shift,
an offline device). The `[snapshot]` thresholds they take are `tunables.SnapshotConfig`
(`Config` here).

The metrics (`services/snapshot.py`) count these conditions and the derived alerts
(`services/derived.py`) are raised from them. Both import this module and it imports neither,
so the dependency points one way: the snapshot pass → the derived alerts → these definitions."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nocctl.tunables import SnapshotConfig as Config  # the `[snapshot]` thresholds, parsed

# ---------------------------------------------------------------- shared SQL definitions
# (the metrics count them, the derived alerts are raised from them: one definition each)

def plus_seconds(dialect: str, column: str, seconds: str) -> str:
    """SQL: the instant `column` plus `seconds` (an SQL integer expression). SQLite keeps
    instants as fixed-width text (`YYYY-MM-DD HH:MM:SS.ffffff`): whole seconds are added to
    the part before the fraction, which is kept, so the result compares exactly."""
    if dialect == "postgresql":
        return f"({column} + ({seconds}) * interval '1 second')"
    return (f"(strftime('%Y-%m-%d %H:%M:%S', substr({column}, 1, 19), '+' || ({seconds}) || ' seconds')"
            f" || substr({column}, 20))")


OPEN_TICKET = ("kind = 'ticket' AND upper(coalesce(status, '')) NOT IN ('RESOLVED', 'CLOSED')"
               " AND (opened_at IS NULL OR opened_at < :end)")
PENDING_WORK_ORDER = "kind = 'work_order' AND upper(coalesce(status, '')) NOT IN ('COMPLETED', 'CANCELLED')"
EXPECTED_SHIFT = "kind = 'attendance' AND shift_start < :end AND (shift_end IS NULL OR shift_end > :start)"
PRESENT = "checked_in_at < :end"
MISSING = "(checked_in_at IS NULL OR checked_in_at >= :end) AND shift_start <= :grace_cut"


def late(dialect: str) -> str:
    return f"checked_in_at < :end AND checked_in_at > {plus_seconds(dialect, 'shift_start', ':grace')}"


def device_offline(dialect: str) -> str:
    return (f"(upper(coalesce(status, '')) = 'OFFLINE'"
            f" OR {plus_seconds(dialect, 'last_seen_at', 'coalesce(offline_after, :offline_after)')} < :end)")


def params(tenant_id: int, start: datetime, end: datetime, config: Config) -> dict[str, Any]:
    return {"tid": tenant_id, "start": start, "end": end, "grace": config.attendance_grace,
            "grace_cut": end - timedelta(seconds=config.attendance_grace),
            "offline_after": config.device_offline_after, "sync_min": config.sync_health_min}


# ---------------------------------------------------------------- units

@dataclass(frozen=True)
class Unit:
    id: int
    kind: str  # CLIENT | SITE
    code: str
    client_id: int
    city: str | None
    state: str | None
    officer: str | None  # a site's in-charge, a client's owner (username)

