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

from nocctl.errors import BadInput, UsageError

_override: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    if _override is not None:
        return _override
    fixed = os.environ.get("NOC_NOW")
    if fixed:
        return parse_iso(fixed, what="NOC_NOW")
    return datetime.now(UTC)


def set_now(instant: datetime | None) -> datetime | None:
    """Fix the clock for this process (the demo's simulated time); None returns to NOC_NOW
    or real time. Returns the instant it was fixed at before (None: not fixed), so a caller
    can put it back."""
    global _override  # noqa: PLW0603 -- one clock per process is the point: every "now" agrees
    before = _override
    _override = instant.astimezone(UTC) if instant else None
    return before


_ADD_OFFSET = "add one, e.g. Z or +05:30"


def parse_iso(text: str, what: str = "time") -> datetime:
    """Parse ISO 8601 with an offset into aware UTC: the times of data (records, NOC_NOW),
    which must say exactly when. Text without an offset is refused: guessing a zone would
    silently shift the event. Errors are bad input (exit 65)."""
    if not isinstance(text, str):
        raise BadInput(f"{what} must be an ISO 8601 string, got {type(text).__name__}")
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "Z" if raw.endswith("z") else raw)
    except ValueError:
        raise BadInput(f"{what} {text!r} is not an ISO 8601 time", "use e.g. 2026-03-01T08:00:00+00:00") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"{what} {text!r} has no UTC offset", _ADD_OFFSET)
    return value.astimezone(UTC)


#: What a time on the command line may be (the error says it; help texts: "ISO 8601 or relative (2h, 30m, 1d)").
TIME_FORMS = "ISO 8601 with an offset (2026-03-01T08:00:00+05:30), now, 2h / 30m / 1d / 45s / 1w ago " \
             "(or -2h), +30m from now"
_RELATIVE = re.compile(r"([+-]?)((?:\d+[smhdw])+)", re.IGNORECASE)


def relative(text: str) -> timedelta | None:
    """The offset from now a relative time means (`now`, `2h` or `-2h` ago, `+30m` ahead,
    units s m h d w, combinable: `1h30m`), or None when `text` is not one."""
    raw = text.strip()
    if raw.lower() == "now":
        return timedelta(0)
    match = _RELATIVE.fullmatch(raw)
    if match is None:
        return None
    length = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION.findall(match[2])))
    return length if match[1] == "+" else -length


def parse_instant(text: str, what: str = "time") -> datetime:
    """A time given on the command line, as aware UTC: ISO 8601 with an offset (as
    `parse_iso`), or relative to `now()` (NOC_NOW honoured): `now`; `2h`, `30m`, `1d`, `45s`,
    `1w` meaning that long ago, `-2h` the same; `+30m` that long from now. A bare number is
    refused (seconds? an epoch?). An unreadable time is a usage error (exit 2) naming the
    accepted forms. Every --since/--until/--at/--start/--end/--now option goes through here."""
    if not isinstance(text, str):
        raise UsageError(f"{what} must be a time, got {type(text).__name__}", f"use {TIME_FORMS}")
    try:
        offset = relative(text)
        if offset is not None:
            return now() + offset
    except OverflowError:
        raise UsageError(f"{what} {text!r} is too far away", f"use {TIME_FORMS}") from None
    try:
        return parse_iso(text, what)
    except BadInput as exc:
        remedy = f"{_ADD_OFFSET}, or give a relative time (2h, 30m, 1d, +30m, now)" \
            if exc.remedy == _ADD_OFFSET else f"use {TIME_FORMS}"
        raise UsageError(exc.message, remedy) from None
    except OverflowError:  # the offset takes it past year 1 or 9999
        raise UsageError(f"{what} {text!r} is not a representable time", f"use {TIME_FORMS}") from None


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
