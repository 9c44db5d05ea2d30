"""What `nocctl maintenance add` asks for, checked: the scope, the times, the alert types
and the recurrence of a new window, normalised, with the rule it makes."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nocctl import clock
from nocctl.errors import BadInput
from nocctl.services.maintenance import matchers as matching
from nocctl.services.maintenance.windows import WEEKDAYS, WindowRule

_DAY_NAMES = {name: i for i, name in enumerate(WEEKDAYS)} | {
    full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
SCOPES = ("tenant", "client", "site")
RECURRENCES = ("none", "daily", "weekly")
# The longest occurrence a recurrence allows: a longer one would overlap the next.
_PERIOD = {"DAILY": timedelta(days=1), "WEEKLY": timedelta(days=7)}


def parse_weekdays(values: Sequence[str]) -> list[str]:
    """`sat,sun`, `Mon`, `monday` (comma lists, repeatable) -> canonical names in week order."""
    wanted: set[int] = set()
    for value in values:
        for part in str(value).split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in _DAY_NAMES:
                raise BadInput(f"unknown weekday {part.strip()!r}", "use " + ",".join(WEEKDAYS))
            wanted.add(_DAY_NAMES[name])
    return [WEEKDAYS[i] for i in sorted(wanted)]


def type_names(values: Sequence[str]) -> list[str]:
    """Alert types as ingest spells them (UPPER_SNAKE; `HostDown` -> HOST_DOWN), comma lists
    allowed, duplicates dropped, in the order given."""
    from nocctl.services.ingest.formats import RecordError, alert_type_name

    names: list[str] = []
    for value in values:
        for part in str(value).split(","):
            if not part.strip():
                continue
            try:
                name = alert_type_name(part.strip(), "alert type")
            except RecordError as exc:
                raise BadInput(str(exc)) from None
            if name not in names:
                names.append(name)
    return names


def zone_named(name: str) -> ZoneInfo:
    try:
        if not name or not name.strip():
            raise ValueError
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(f"unknown time zone {name!r}",
                       "use an IANA name such as UTC, Asia/Kolkata or Europe/London") from None


@dataclass
class NewWindow:
    """What `maintenance add` asks for, in plain values. `scope` is tenant, client or site;
    `unit` the client or site code (None for tenant). `matchers` as typed (`--match`),
    ANDed with the scope and the types; matchers without types hold every type they match.
    A type neither built in nor seen in the tenant's alerts is refused unless
    `allow_unknown_type`."""

    scope: str
    unit: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    suppress_all: bool = False
    alert_types: Sequence[str] = ()
    recurrence: str = "none"
    weekdays: Sequence[str] = ()
    until: date | None = None
    timezone: str = "UTC"
    matchers: Sequence[str] = ()
    allow_unknown_type: bool = False


def validate(new: NewWindow) -> tuple[NewWindow, WindowRule]:
    """The request with its values normalised, and the rule it makes; BadInput otherwise."""
    scope = (new.scope or "").lower()
    if scope not in SCOPES:
        raise BadInput(f"unknown scope {new.scope!r}", "one of " + ", ".join(SCOPES))
    if scope != "tenant" and not new.unit:
        raise BadInput(f"a {scope} window needs the {scope} code")
    reason = (new.reason or "").strip()
    if not reason:
        raise BadInput("a maintenance window needs a --reason (what work, by whom)")
    for value, name in ((new.starts_at, "start"), (new.ends_at, "end")):
        if value.tzinfo is None or value.utcoffset() is None:
            raise BadInput(f"the {name} has no UTC offset", "add one, e.g. Z or +05:30")
    starts_at, ends_at = new.starts_at.astimezone(UTC), new.ends_at.astimezone(UTC)
    if ends_at <= starts_at:
        raise BadInput(f"the window must end after it starts: end {clock.isoformat(ends_at)} is not after "
                       f"start {clock.isoformat(starts_at)}")
    types = type_names(new.alert_types)
    matchers = matching.parse_all(new.matchers)
    if new.suppress_all and types:
        raise BadInput("give --suppress-all or --type, not both")
    if not new.suppress_all and not types and not matchers:
        raise BadInput("say what the window holds: --suppress-all, --type T (repeatable) or --match M (repeatable)")
    suppress_all = bool(new.suppress_all) or not types  # matchers alone: every type they match
    recurrence = (new.recurrence or "none").lower()
    if recurrence not in RECURRENCES:
        raise BadInput(f"unknown recurrence {new.recurrence!r}", "daily or weekly")
    zone = zone_named(new.timezone or "UTC")
    weekdays = parse_weekdays(new.weekdays)
    first_local = starts_at.astimezone(zone)
    if weekdays and recurrence != "weekly":
        raise BadInput("--on names weekdays of a weekly recurrence", "add --recur weekly")
    if recurrence == "none":
        if new.until is not None:
            raise BadInput("--until ends a recurrence", "add --recur daily or --recur weekly")
    else:
        if new.until is None:
            raise BadInput("a recurring window needs --until DATE (the last day an occurrence may start)")
        if new.until < first_local.date():
            raise BadInput(f"--until {new.until.isoformat()} is before the first occurrence "
                           f"({first_local.date().isoformat()} in {zone.key})")
        if ends_at - starts_at > _PERIOD[recurrence.upper()]:
            raise BadInput(f"an occurrence of a {recurrence} window cannot last longer than "
                           f"{'a day' if recurrence == 'daily' else 'a week'}",
                           "shorten --end/--duration, or make one long window without --recur")
        if recurrence == "weekly" and not weekdays:
            weekdays = [WEEKDAYS[first_local.weekday()]]
    normal = NewWindow(scope, new.unit, starts_at, ends_at, reason, suppress_all, types, recurrence,
                       weekdays, new.until if recurrence != "none" else None, zone.key,
                       [str(m) for m in matchers], new.allow_unknown_type)
    rule = WindowRule(0, scope.upper(), None, None, normal.suppress_all, frozenset(types), starts_at, ends_at,
                      recurrence.upper(), frozenset(WEEKDAYS.index(d) for d in weekdays), normal.until, zone, None,
                      tuple(matchers))
    if rule.next_occurrence(starts_at - timedelta(microseconds=1)) is None:
        raise BadInput(f"the window never occurs: no {', '.join(weekdays)} from "
                       f"{first_local.date().isoformat()} to {normal.until.isoformat() if normal.until else 'the end'}"
                       f" ({zone.key})")
    return normal, rule
