"""The one clock of nocctl. `NOC_NOW` (ISO 8601 with offset) fixes it for every command,
so tests, the demo and replays of history run at a chosen time.

Interactive commands read `now()`. A cron pass does not: its instant (`--now`, else `now()`
once at the start) is handed down explicitly to everything it writes, audit rows included
(`services/passes.py`; the ingest pipeline takes it as `Options.now`), so a pass neither
depends on nor changes this process-wide clock."""
from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta

from nocctl.errors import BadInput

_override: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    if _override is not None:
        return _override
    fixed = os.environ.get("NOC_NOW")
    if fixed:
        return parse_instant(fixed, what="NOC_NOW")
    return datetime.now(UTC)


def set_now(instant: datetime | None) -> datetime | None:
    """Fix the clock for this process (the demo's simulated time); None returns to NOC_NOW
    or real time. Returns the instant it was fixed at before (None: not fixed), so a caller
    can put it back."""
    global _override  # noqa: PLW0603 -- one clock per process is the point: every "now" agrees
    before = _override
    _override = instant.astimezone(UTC) if instant else None
    return before


def parse_instant(text: str, what: str = "time") -> datetime:
    """Parse ISO 8601 with an offset into aware UTC. Text without an offset is refused:
    guessing a zone would silently shift the event."""
    if not isinstance(text, str):
        raise BadInput(f"{what} must be an ISO 8601 string, got {type(text).__name__}")
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "Z" if raw.endswith("z") else raw)
    except ValueError:
        raise BadInput(f"{what} {text!r} is not an ISO 8601 time", "use e.g. 2026-03-01T08:00:00+00:00") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"{what} {text!r} has no UTC offset", "add one, e.g. Z or +05:30")
    return value.astimezone(UTC)


def parse_date(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{what} {text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, what: str = "duration") -> int:
    """`90m`, `2h`, `1h30m`, `7d`, or plain seconds -> integer seconds (> 0)."""
    raw = str(text).strip().replace(" ", "")
    if raw.isdigit():
        seconds = int(raw)
    else:
        parts = _DURATION.findall(raw)
        if not parts or "".join(n + u for n, u in parts).lower() != raw.lower():
            raise BadInput(f"{what} {text!r} is not a duration", "use e.g. 90m, 2h, 1h30m, 7d")
        seconds = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise BadInput(f"{what} {text!r} must be longer than zero")
    return seconds


def format_duration(seconds: float | int | None) -> str:
    """Compact human form: 3725 -> '1h2m5s'."""
    if seconds is None:
        return ""
    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            out.append(f"{total // size}{unit}")
            total %= size
    if total or not out:
        out.append(f"{total}s")
    return sign + "".join(out)


def isoformat(value: datetime | None) -> str | None:
    """Stable ISO text for output: UTC with a `Z`."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def window(since: str | None, until: str | None, days: int | None, default_days: int = 7) -> tuple[datetime, datetime]:
    """Resolve `--since/--until/--days` into a [since, until) pair of aware UTC instants."""
    end = parse_instant(until, "--until") if until else now()
    if since and days:
        raise BadInput("give --since or --days, not both")
    start = parse_instant(since, "--since") if since else end - timedelta(days=days or default_days)
    if start >= end:
        raise BadInput("--since must be before --until")
    return start, end
