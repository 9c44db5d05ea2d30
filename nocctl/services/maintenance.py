"""Maintenance windows (DESIGN §3): which window, if any, covers an alert at an instant, and
the use cases behind `nocctl maintenance add/list/show/end/delete/check`.

A window has one occurrence [starts_at, ends_at), or repeats it daily or weekly (on chosen
weekdays) in its time zone until `recur_until` (inclusive, a date in that zone): every
occurrence starts at the first one's wall-clock time in the zone and lasts as long as the
first (real time), so the first occurrence is exactly [starts_at, ends_at) and a window keeps
its local hour across daylight-saving changes. Ending a window early (`ended_at`) cuts every
occurrence at that instant; a deleted window covers nothing (its row is kept for history).

States, at the clock's now: `active` (an occurrence covers now), `pending` (the next
occurrence is in the future), `expired` (no occurrence now or later, or ended, or deleted)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, PermissionDenied
from nocctl.models import AccessGrant, Alert, BusinessUnit, MaintenanceWindow, Person
from nocctl.services import audit
from nocctl.services.rbac import Actor, Caller, authenticate, grant_remedy, visible
from nocctl.services.workflow import has_capability
from nocctl.vocabulary import BUILTIN_ALERT_TYPES, VIEW_CAPABILITIES

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {name: i for i, name in enumerate(WEEKDAYS)} | {
    full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
SCOPES = ("tenant", "client", "site")
RECURRENCES = ("none", "daily", "weekly")
STATES = ("pending", "active", "expired")
CAPABILITY = "noc:manage_maintenance"
UTC = timezone.utc
# The longest occurrence a recurrence allows: a longer one would overlap the next.
_PERIOD = {"DAILY": timedelta(days=1), "WEEKLY": timedelta(days=7)}

LIST_COLUMNS = ("id", "scope", "client", "site", "suppress_all", "alert_types", "starts_at", "ends_at", "recurrence",
                "weekdays", "until", "timezone", "reason", "created_by", "created_at", "ended_at", "deleted_at",
                "state", "next_occurrence")


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
        self.by_client: dict[int, list[WindowRule]] = {}
        self.by_site: dict[int, list[WindowRule]] = {}
        for rule in rules:
            if rule.scope_kind == "CLIENT":
                self.by_client.setdefault(rule.client_id, []).append(rule)
            elif rule.scope_kind == "SITE":
                self.by_site.setdefault(rule.site_id, []).append(rule)

    def __bool__(self) -> bool:
        return bool(self.tenant or self.by_client or self.by_site)

    def all_covering(self, client_id: int, site_id: int | None, alert_type: str,
                     instant: datetime) -> list[WindowRule]:
        """Every window that suppresses this alert at this instant, lowest id first."""
        found = [rule for rules in (self.by_site.get(site_id, ()), self.by_client.get(client_id, ()), self.tenant)
                 for rule in rules
                 if rule.applies_to(client_id, site_id, alert_type) and rule.occurrence_at(instant)]
        return sorted(found, key=lambda r: r.id)

    def covering(self, client_id: int, site_id: int | None, alert_type: str, instant: datetime) -> WindowRule | None:
        """The window (lowest id) that suppresses this alert at this instant, if any."""
        found = None
        for rules in (self.by_site.get(site_id, ()), self.by_client.get(client_id, ()), self.tenant):
            for rule in rules:
                if (found is None or rule.id < found.id) and rule.applies_to(client_id, site_id, alert_type) \
                        and rule.occurrence_at(instant):
                    found = rule
        return found


# ---------------------------------------------------------------- checking input

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
    `unit` the client or site code (None for tenant)."""

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


@dataclass
class Added:
    """The window just created, and warnings for the person who made it (stderr)."""

    window: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


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
    if new.suppress_all and types:
        raise BadInput("give --suppress-all or --type, not both")
    if not new.suppress_all and not types:
        raise BadInput("say what the window holds: --suppress-all, or --type T (repeatable)")
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
    normal = NewWindow(scope, new.unit, starts_at, ends_at, reason, bool(new.suppress_all), types, recurrence,
                       weekdays, new.until if recurrence != "none" else None, zone.key)
    rule = WindowRule(0, scope.upper(), None, None, normal.suppress_all, frozenset(types), starts_at, ends_at,
                      recurrence.upper(), frozenset(WEEKDAYS.index(d) for d in weekdays), normal.until, zone, None)
    if rule.next_occurrence(starts_at - timedelta(microseconds=1)) is None:
        raise BadInput(f"the window never occurs: no {', '.join(weekdays)} from "
                       f"{first_local.date().isoformat()} to {normal.until.isoformat()} ({zone.key})")
    return normal, rule


# ---------------------------------------------------------------- scope and visibility

def _window_visible(actor: Actor):
    """SQL: windows the actor may see. A site window: the actor sees the site. A client
    window: the actor sees the client or one of its sites (it covers them). A tenant-wide
    window covers everyone's alerts: anyone holding a view capability sees it."""
    unit = aliased(BusinessUnit)
    window = MaintenanceWindow
    any_view = exists().where(AccessGrant.tenant_id == actor.tenant_id, AccessGrant.person_id == actor.person_id,
                              AccessGrant.capability.in_(VIEW_CAPABILITIES))
    client_seen = exists().where(unit.tenant_id == actor.tenant_id, unit.client_id == window.client_id,
                                 visible(actor, unit.client_id, unit.id))
    return or_(
        and_(window.scope_kind == "TENANT", any_view),
        and_(window.scope_kind == "CLIENT", client_seen),
        and_(window.scope_kind == "SITE", visible(actor, window.client_id, window.site_id)),
    )


def _unit(session: Session, actor: Actor, code: str, kind: str) -> BusinessUnit | None:
    unit = session.scalar(select(BusinessUnit).where(BusinessUnit.tenant_id == actor.tenant_id,
                                                     BusinessUnit.code == code))
    return unit if unit is not None and unit.kind == kind else None


def _sees_unit(session: Session, actor: Actor, unit: BusinessUnit) -> bool:
    """A site: visible. A client: it or one of its sites is visible."""
    if unit.kind == "SITE":
        return bool(session.scalar(select(visible(actor, unit.client_id, unit.id))))
    other = aliased(BusinessUnit)
    return bool(session.scalar(select(exists().where(
        other.tenant_id == actor.tenant_id, other.client_id == unit.id, visible(actor, other.client_id, other.id)))))


def _visible_unit(session: Session, actor: Actor, code: str, kind: str) -> BusinessUnit:
    """A client or site the actor can see; one that exists but is hidden is "not found" too."""
    unit = _unit(session, actor, code, kind)
    if unit is None or not _sees_unit(session, actor, unit):
        raise NotFound(f"no {kind.lower()} {code!r}", "see `nocctl org list`")
    return unit


def _scope_ids(scope_kind: str, client_id: int | None, site_id: int | None) -> tuple[int | None, int | None]:
    """The unit ids a capability must cover for a window of this scope (tenant: none)."""
    if scope_kind == "TENANT":
        return None, None
    return (client_id, site_id) if scope_kind == "SITE" else (client_id, None)


def _scope_text(scope_kind: str, client: str | None, site: str | None) -> str:
    return {"TENANT": "the whole tenant", "CLIENT": f"client {client}", "SITE": f"site {site}"}[scope_kind]


def _require_manage(session: Session, actor: Actor, scope_kind: str, client_id: int | None, site_id: int | None,
                    what: str) -> None:
    client_ids = _scope_ids(scope_kind, client_id, site_id)
    if not has_capability(session, actor, CAPABILITY, *client_ids):
        where = "tenant-wide" if scope_kind == "TENANT" else f"for {what}"
        raise PermissionDenied(f"{actor.username!r} lacks {CAPABILITY} {where}",
                               grant_remedy(actor.username, CAPABILITY))


# ---------------------------------------------------------------- describing

def _query(actor: Actor | None = None):
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    query = (select(MaintenanceWindow, client.code.label("client"), site.code.label("site"),
                    Person.username.label("created_by"))
             .outerjoin(client, client.id == MaintenanceWindow.client_id)
             .outerjoin(site, site.id == MaintenanceWindow.site_id)
             .outerjoin(Person, Person.id == MaintenanceWindow.created_by))
    if actor is not None:
        query = query.where(MaintenanceWindow.tenant_id == actor.tenant_id, _window_visible(actor))
    return query


def _as_dict(row, now: datetime) -> dict[str, Any]:
    window: MaintenanceWindow = row[0]
    rule = WindowRule.of(window)
    state, occurrence = ("expired", None) if window.deleted_at is not None else rule.state(now)
    days = set((window.recur_weekdays or "").split(","))
    return {
        "id": window.id,
        "scope": window.scope_kind.lower(),
        "client": row.client,
        "site": row.site,
        "suppress_all": bool(window.suppress_all),
        "alert_types": list(window.alert_types or []),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "recurrence": window.recurrence.lower(),
        "weekdays": [d for d in WEEKDAYS if d in days] if window.recurrence == "WEEKLY" else [],
        "until": window.recur_until,
        "timezone": window.timezone,
        "reason": window.reason,
        "created_by": row.created_by,
        "created_at": window.created_at,
        "ended_at": window.ended_at,
        "deleted_at": window.deleted_at,
        "state": state,
        "next_occurrence": {"starts_at": occurrence[0], "ends_at": occurrence[1]} if occurrence else None,
    }


def _find_to_manage(session: Session, actor: Actor, window_id: int):
    """The window (row and model) when the actor may change it: not found (3), else 77."""
    row = _find(session, actor, window_id)
    window: MaintenanceWindow = row[0]
    _require_manage(session, actor, window.scope_kind, window.client_id, window.site_id,
                    f"maintenance window {window_id} ({_scope_text(window.scope_kind, row.client, row.site)})")
    return row, window


def _find(session: Session, actor: Actor, window_id: int):
    row = session.execute(_query(actor).where(MaintenanceWindow.id == window_id)).first()
    if row is None:
        raise NotFound(f"no maintenance window {window_id}", "see `nocctl maintenance list --state all`")
    return row


def _describe(session: Session, window_id: int, now: datetime) -> dict[str, Any]:
    """A window as its creator sees it (the capability suffices, no view needed)."""
    session.expire_all()
    return _as_dict(session.execute(_query().where(MaintenanceWindow.id == window_id)).one(), now)


def _audit_details(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("scope", "client", "site", "suppress_all", "alert_types", "starts_at", "ends_at", "recurrence",
            "weekdays", "until", "timezone", "reason")
    return {k: (clock.isoformat(data[k]) if isinstance(data[k], datetime)
                else data[k].isoformat() if isinstance(data[k], date) else data[k]) for k in keys}


# ---------------------------------------------------------------- use cases

def add(session: Session, caller: Caller, new: NewWindow) -> Added:
    """Create a window. Needs noc:manage_maintenance over its scope (tenant-wide for a
    tenant window). A client or site the actor neither sees nor manages is "not found"."""
    new, rule = validate(new)
    now = clock.now()
    warnings: list[str] = []
    with session.begin():
        actor = authenticate(session, caller)
        scope_kind = new.scope.upper()
        client_id = site_id = None
        if scope_kind != "TENANT":
            unit = _unit(session, actor, new.unit, scope_kind)
            if unit is not None:
                client_id, site_id = unit.client_id, (unit.id if scope_kind == "SITE" else None)
            if unit is None or (not has_capability(session, actor, CAPABILITY, *_scope_ids(scope_kind, client_id,
                                                                                            site_id))
                                and not _sees_unit(session, actor, unit)):
                raise NotFound(f"no {new.scope} {new.unit!r}", "see `nocctl org list`")
        _require_manage(session, actor, scope_kind, client_id, site_id, f"{new.scope} {new.unit}")
        warnings += _unseen_types(session, actor, new.alert_types)
        if rule.next_occurrence(now) is None:
            warnings.append("the window is already over: it holds only alerts that arrive late with an earlier "
                            "occurred_at")
        window = MaintenanceWindow(
            tenant_id=actor.tenant_id, scope_kind=scope_kind, client_id=client_id, site_id=site_id,
            suppress_all=new.suppress_all, alert_types=None if new.suppress_all else list(new.alert_types),
            starts_at=new.starts_at, ends_at=new.ends_at, recurrence=new.recurrence.upper(),
            recur_weekdays=",".join(new.weekdays) or None, recur_until=new.until, timezone=new.timezone,
            reason=new.reason, created_by=actor.person_id, created_at=now)
        session.add(window)
        session.flush()
        data = _describe(session, window.id, now)
        audit.record(session, actor, "MAINTENANCE_CREATE", "maintenance_window", window.id, _audit_details(data),
                     client_id, site_id)
        return Added(data, warnings)


def _unseen_types(session: Session, actor: Actor, types: Sequence[str]) -> list[str]:
    """Warnings for types neither built in nor ever seen in this tenant's alerts."""
    warnings = []
    for name in types:
        if name in BUILTIN_ALERT_TYPES:
            continue
        seen = session.scalar(select(Alert.id).where(Alert.tenant_id == actor.tenant_id, Alert.alert_type == name)
                              .limit(1))
        if seen is None:
            warnings.append(f"alert type {name!r} is not built in and no alert of it has been seen yet; "
                            "the window holds it all the same (check the spelling)")
    return warnings


def list_windows(session: Session, caller: Caller, states: Sequence[str] = ("pending", "active"),
                 client: str | None = None, site: str | None = None) -> list[dict[str, Any]]:
    """Visible windows in these states, by start. `client` keeps the windows that cover the
    client or any of its sites (tenant-wide, the client's, its sites'); `site` keeps those
    that cover the site (tenant-wide, its client's, its own)."""
    now = clock.now()
    wanted = set(STATES) if "all" in states else {s.lower() for s in states}
    unknown = wanted - set(STATES)
    if unknown:
        raise BadInput(f"unknown state {sorted(unknown)[0]!r}", "one of pending, active, expired, all")
    with session.begin():
        actor = authenticate(session, caller)
        query = _query(actor)
        window = MaintenanceWindow
        if client:
            unit = _visible_unit(session, actor, client, "CLIENT")
            query = query.where(or_(window.scope_kind == "TENANT", window.client_id == unit.id))
        if site:
            unit = _visible_unit(session, actor, site, "SITE")
            query = query.where(or_(window.scope_kind == "TENANT",
                                    and_(window.scope_kind == "CLIENT", window.client_id == unit.client_id),
                                    and_(window.scope_kind == "SITE", window.site_id == unit.id)))
        if "expired" not in wanted:  # what cannot be pending or active any more
            query = query.where(window.deleted_at.is_(None), or_(window.ended_at.is_(None), window.ended_at > now),
                                or_(window.recurrence != "NONE", window.ends_at > now))
        rows = [_as_dict(row, now) for row in session.execute(query.order_by(window.starts_at, window.id))]
        return [row for row in rows if row["state"] in wanted]


def show(session: Session, caller: Caller, window_id: int) -> dict[str, Any]:
    now = clock.now()
    with session.begin():
        actor = authenticate(session, caller)
        return _as_dict(_find(session, actor, window_id), now)


def end(session: Session, caller: Caller, window_id: int) -> dict[str, Any]:
    """End a pending or active window now: no occurrence reaches past this instant. An
    expired (over, ended or deleted) window: Conflict (exit 4). Alerts it holds stay
    SUPPRESSED until their next duplicate, which then arrives outside any window."""
    now = clock.now()
    with session.begin():
        actor = authenticate(session, caller)
        row, window = _find_to_manage(session, actor, window_id)
        before = _as_dict(row, now)
        if before["state"] == "expired":
            raise Conflict(f"maintenance window {window_id} is expired ({_why_expired(before)}): nothing to end",
                           f"see `nocctl maintenance show {window_id}`")
        changed = session.execute(
            update(MaintenanceWindow).where(MaintenanceWindow.id == window_id, MaintenanceWindow.ended_at.is_(None),
                                            MaintenanceWindow.deleted_at.is_(None))
            .values(ended_at=now).returning(MaintenanceWindow.id)).scalar()
        if changed is None:  # another engineer ended or deleted it meanwhile
            raise Conflict(f"maintenance window {window_id} was ended or deleted meanwhile",
                           f"see `nocctl maintenance show {window_id}`")
        data = _describe(session, window_id, now)
        audit.record(session, actor, "MAINTENANCE_UPDATE", "maintenance_window", window_id,
                     {"change": "end", "ended_at": clock.isoformat(now), "state_before": before["state"]},
                     window.client_id, window.site_id)
        return data


def delete(session: Session, caller: Caller, window_id: int) -> dict[str, Any]:
    """Cancel a window: from now on it covers nothing, not even late events of its past
    occurrences. The row is kept (deleted_at) for history. Deleted already: exit 4."""
    now = clock.now()
    with session.begin():
        actor = authenticate(session, caller)
        row, window = _find_to_manage(session, actor, window_id)
        if window.deleted_at is not None:
            raise Conflict(f"maintenance window {window_id} was already deleted at "
                           f"{clock.isoformat(window.deleted_at)}")
        before = _as_dict(row, now)
        changed = session.execute(
            update(MaintenanceWindow).where(MaintenanceWindow.id == window_id, MaintenanceWindow.deleted_at.is_(None))
            .values(deleted_at=now).returning(MaintenanceWindow.id)).scalar()
        if changed is None:
            raise Conflict(f"maintenance window {window_id} was deleted meanwhile")
        data = _describe(session, window_id, now)
        audit.record(session, actor, "MAINTENANCE_DELETE", "maintenance_window", window_id,
                     {"state_before": before["state"], "reason": window.reason}, window.client_id, window.site_id)
        return data


def _why_expired(data: dict[str, Any]) -> str:
    if data["deleted_at"] is not None:
        return f"deleted at {clock.isoformat(data['deleted_at'])}"
    if data["ended_at"] is not None:
        return f"ended at {clock.isoformat(data['ended_at'])}"
    return "no occurrence now or later"


def check(session: Session, caller: Caller, alert_type: str, client: str | None = None, site: str | None = None,
          at: datetime | None = None) -> dict[str, Any]:
    """Would an alert of this type at this client (client-level) or site, occurring at `at`
    (default now), be suppressed, and by which window? `window` is the one ingest records
    (the lowest id); `windows` lists every window that covers it."""
    if bool(client) == bool(site):
        raise BadInput("give --client or --site (one of them)")
    names = type_names([alert_type])
    if len(names) != 1:
        raise BadInput("give one alert --type to check")
    name = names[0]
    now = clock.now()
    instant = (at or now).astimezone(UTC)
    with session.begin():
        actor = authenticate(session, caller)
        if site:
            unit = _visible_unit(session, actor, site, "SITE")
            client_id, site_id = unit.client_id, unit.id
            client = session.scalar(select(BusinessUnit.code).where(BusinessUnit.id == unit.client_id))
        else:
            unit = _unit(session, actor, client, "CLIENT")
            if unit is None or not session.scalar(select(visible(actor, unit.id, None))):
                raise NotFound(f"no client {client!r}", "see `nocctl org list`")
            client_id, site_id = unit.id, None
        covering = Rulebook(load_rules(session, actor.tenant_id)).all_covering(client_id, site_id, name, instant)
        window = None
        occurrence = None
        if covering:
            window = _as_dict(session.execute(_query().where(MaintenanceWindow.id == covering[0].id)).one(), now)
            start, stop = covering[0].occurrence_at(instant)
            occurrence = {"starts_at": start, "ends_at": stop}
        return {"suppressed": bool(covering), "alert_type": name, "client": client, "site": site, "at": instant,
                "window": window, "occurrence": occurrence, "windows": [r.id for r in covering]}
