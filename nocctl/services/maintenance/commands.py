"""The use cases behind `nocctl maintenance add/list/show/end/delete/check`, within the
caller's access scope: a window is seen with what it covers and changed with
noc:manage_maintenance over its scope (tenant-wide for a tenant window)."""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, UsageError
from nocctl.models import Alert, BusinessUnit, MaintenanceWindow, Person
from nocctl.services import access, audit
from nocctl.services.access import Scope
from nocctl.services.maintenance.validation import NewWindow, type_names, validate
from nocctl.services.maintenance.windows import WEEKDAYS, Rulebook, WindowRule, load_rules
from nocctl.services.rbac import Actor, Caller
from nocctl.vocabulary import BUILTIN_ALERT_TYPES

STATES = ("pending", "active", "expired")
CAPABILITY = "noc:manage_maintenance"
LIST_COLUMNS = ("id", "scope", "client", "site", "suppress_all", "alert_types", "matchers", "starts_at", "ends_at",
                "recurrence", "weekdays", "until", "timezone", "reason", "created_by", "created_at", "ended_at",
                "deleted_at", "state", "next_occurrence")


@dataclass
class Added:
    """The window just created, and warnings for the person who made it (stderr)."""

    window: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- scope and visibility

def _window_visible(scope: Scope) -> ColumnElement[bool]:
    """SQL: windows the person may see. A site window: they see the site. A client window:
    they see the client or one of its sites (it covers them). A tenant-wide window covers
    everyone's alerts: anyone holding a view capability sees it."""
    window = MaintenanceWindow
    return or_(
        and_(window.scope_kind == "TENANT", scope.visible_to_viewers()),
        and_(window.scope_kind == "CLIENT", scope.visible_client(window.client_id)),
        and_(window.scope_kind == "SITE", scope.visible(window.client_id, window.site_id)),
    )


def _scope_ids(scope_kind: str, client_id: int | None, site_id: int | None) -> tuple[int | None, int | None]:
    """The unit ids a capability must cover for a window of this scope (tenant: none)."""
    if scope_kind == "TENANT":
        return None, None
    return (client_id, site_id) if scope_kind == "SITE" else (client_id, None)


def _scope_text(scope_kind: str, client: str | None, site: str | None) -> str:
    return {"TENANT": "the whole tenant", "CLIENT": f"client {client}", "SITE": f"site {site}"}[scope_kind]


def _require_manage(scope: Scope, scope_kind: str, client_id: int | None, site_id: int | None, what: str) -> None:
    scope.require(CAPABILITY, *_scope_ids(scope_kind, client_id, site_id),
                  what=None if scope_kind == "TENANT" else what)


# ---------------------------------------------------------------- describing

def _query(scope: Scope | None = None):
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    query = (select(MaintenanceWindow, client.code.label("client"), site.code.label("site"),
                    Person.username.label("created_by"))
             .outerjoin(client, client.id == MaintenanceWindow.client_id)
             .outerjoin(site, site.id == MaintenanceWindow.site_id)
             .outerjoin(Person, Person.id == MaintenanceWindow.created_by))
    if scope is not None:
        query = query.where(MaintenanceWindow.tenant_id == scope.actor.tenant_id, _window_visible(scope))
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
        "matchers": [dict(m) for m in window.matchers or []],
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


def _find_to_manage(session: Session, scope: Scope, window_id: int):
    """The window (row and model) when the person may change it: not found (3), else 77."""
    row = _find(session, scope, window_id)
    window: MaintenanceWindow = row[0]
    _require_manage(scope, window.scope_kind, window.client_id, window.site_id,
                    f"maintenance window {window_id} ({_scope_text(window.scope_kind, row.client, row.site)})")
    return row, window


def _find(session: Session, scope: Scope, window_id: int):
    row = session.execute(_query(scope).where(MaintenanceWindow.id == window_id)).first()
    if row is None:
        raise NotFound(f"no maintenance window {window_id}", "see `nocctl maintenance list --state all`")
    return row


def _describe(session: Session, window_id: int, now: datetime) -> dict[str, Any]:
    """A window as its creator sees it (the capability suffices, no view needed)."""
    session.expire_all()
    return _as_dict(session.execute(_query().where(MaintenanceWindow.id == window_id)).one(), now)


def _audit_details(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("scope", "client", "site", "suppress_all", "alert_types", "matchers", "starts_at", "ends_at", "recurrence",
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
        scope = access.for_caller(session, caller)
        actor = scope.actor
        scope_kind = new.scope.upper()
        client_id = site_id = None
        if scope_kind == "TENANT":
            scope.require(CAPABILITY)
        else:
            unit = scope.unit(session, scope_kind, new.unit or "", CAPABILITY)
            client_id, site_id = unit.client_id, unit.site_id
        if not new.allow_unknown_type:
            _refuse_unknown_types(session, actor, new.alert_types)
        if rule.next_occurrence(now) is None:
            warnings.append("the window is already over: it holds only alerts that arrive late with an earlier "
                            "occurred_at")
        window = MaintenanceWindow(
            tenant_id=actor.tenant_id, scope_kind=scope_kind, client_id=client_id, site_id=site_id,
            suppress_all=new.suppress_all, alert_types=None if new.suppress_all else list(new.alert_types),
            matchers=[m.as_dict() for m in rule.matchers] or None,
            starts_at=new.starts_at, ends_at=new.ends_at, recurrence=new.recurrence.upper(),
            recur_weekdays=",".join(new.weekdays) or None, recur_until=new.until, timezone=new.timezone,
            reason=new.reason, created_by=actor.person_id, created_at=now)
        session.add(window)
        session.flush()
        data = _describe(session, window.id, now)
        audit.record(session, actor, "MAINTENANCE_CREATE", "maintenance_window", window.id, _audit_details(data),
                     client_id, site_id)
        return Added(data, warnings)


def _refuse_unknown_types(session: Session, actor: Actor, types: Sequence[str]) -> None:
    """A type neither built in nor ever seen in this tenant's alerts is most likely a typo
    (a window for DEVICE_OFLINE holds nothing): UsageError (exit 2) with the nearest known
    type, unless the person says it is meant (`--allow-unknown-type`: a type still to come)."""
    for name in types:
        if name in BUILTIN_ALERT_TYPES:
            continue
        seen = session.scalar(select(Alert.id).where(Alert.tenant_id == actor.tenant_id, Alert.alert_type == name)
                              .limit(1))
        if seen is not None:
            continue
        known = list(BUILTIN_ALERT_TYPES) + list(session.scalars(
            select(Alert.alert_type).where(Alert.tenant_id == actor.tenant_id).distinct().limit(1000)))
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown alert type {name!r}: not built in and no alert of it has been seen",
                         f"{hint}--allow-unknown-type to hold it all the same")


@dataclass
class WindowListing:
    """The rows of `listing`, and the time zone the person prefers (`prefs`) to read them in."""

    rows: list[dict[str, Any]]
    timezone: str | None = None


def list_windows(session: Session, caller: Caller, states: Sequence[str] = ("pending", "active"),
                 client: str | None = None, site: str | None = None) -> list[dict[str, Any]]:
    """Visible windows in these states, by start (`listing` without the time zone)."""
    return listing(session, caller, states, client, site).rows


def listing(session: Session, caller: Caller, states: Sequence[str] = ("pending", "active"),
            client: str | None = None, site: str | None = None) -> WindowListing:
    """Visible windows in these states, by start. `client` keeps the windows that cover the
    client or any of its sites (tenant-wide, the client's, its sites'); `site` keeps those
    that cover the site (tenant-wide, its client's, its own)."""
    from nocctl.services import prefs

    now = clock.now()
    wanted = set(STATES) if "all" in states else {s.lower() for s in states}
    unknown = wanted - set(STATES)
    if unknown:
        raise BadInput(f"unknown state {sorted(unknown)[0]!r}", "one of pending, active, expired, all")
    with session.begin():
        scope = access.for_caller(session, caller)
        query = _query(scope)
        window = MaintenanceWindow
        if client:
            unit = scope.client(session, client)
            query = query.where(or_(window.scope_kind == "TENANT", window.client_id == unit.id))
        if site:
            unit = scope.site(session, site)
            query = query.where(or_(window.scope_kind == "TENANT",
                                    and_(window.scope_kind == "CLIENT", window.client_id == unit.client_id),
                                    and_(window.scope_kind == "SITE", window.site_id == unit.id)))
        if "expired" not in wanted:  # what cannot be pending or active any more
            query = query.where(window.deleted_at.is_(None), or_(window.ended_at.is_(None), window.ended_at > now),
                                or_(window.recurrence != "NONE", window.ends_at > now))
        rows = [_as_dict(row, now) for row in session.execute(query.order_by(window.starts_at, window.id))]
        zone = prefs.load(session, scope.actor).timezone
        return WindowListing([row for row in rows if row["state"] in wanted], zone)


def show(session: Session, caller: Caller, window_id: int) -> dict[str, Any]:
    now = clock.now()
    with session.begin():
        return _as_dict(_find(session, access.for_caller(session, caller), window_id), now)


def end(session: Session, caller: Caller, window_id: int) -> dict[str, Any]:
    """End a pending or active window now: no occurrence reaches past this instant. An
    expired (over, ended or deleted) window: Conflict (exit 4). Alerts it holds stay
    SUPPRESSED until their next duplicate, which then arrives outside any window."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        row, window = _find_to_manage(session, scope, window_id)
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
        scope = access.for_caller(session, caller)
        actor = scope.actor
        row, window = _find_to_manage(session, scope, window_id)
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
          at: datetime | None = None, entity_type: str | None = None, entity_id: str | None = None,
          labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Would an alert of this type at this client (client-level) or site, occurring at `at`
    (default now), with this entity and these Alertmanager labels (what matchers read), be
    suppressed, and by which window? `window` is the one ingest records (the lowest id);
    `windows` lists every window that covers it."""
    if bool(client) == bool(site):
        raise BadInput("give --client or --site (one of them)")
    names = type_names([alert_type])
    if len(names) != 1:
        raise BadInput("give one alert --type to check")
    name = names[0]
    now = clock.now()
    instant = (at or now).astimezone(UTC)
    with session.begin():
        scope = access.for_caller(session, caller)
        if site:
            unit = scope.site(session, site)
            client = session.scalar(select(BusinessUnit.code).where(BusinessUnit.id == unit.client_id))
        else:
            unit = scope.client(session, client or "")
        client_id, site_id = unit.client_id, unit.site_id
        covering = Rulebook(load_rules(session, scope.actor.tenant_id)).all_covering(
            client_id, site_id, name, instant, entity_type, entity_id, {"labels": dict(labels)} if labels else None)
        window = None
        occurrence = None
        if covering:
            window = _as_dict(session.execute(_query().where(MaintenanceWindow.id == covering[0].id)).one(), now)
            span = covering[0].occurrence_at(instant)  # covering: it occurs at `instant`
            occurrence = {"starts_at": span[0], "ends_at": span[1]} if span else None
        return {"suppressed": bool(covering), "alert_type": name, "client": client, "site": site, "at": instant,
                "entity_type": entity_type, "entity_id": entity_id, "labels": dict(labels or {}),
                "window": window, "occurrence": occurrence, "windows": [r.id for r in covering]}
