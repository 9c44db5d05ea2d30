"""Alerts: listing with filters, one alert in full, and the moves engineers make on them —
acknowledge, assign, escalate, resolve (DESIGN §3, §4)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import NotFound
from nocctl.lifecycle import (
    ALERT_ACTIVE,
    ALERT_MOVES,
    alert_acknowledged,
    alert_assigned,
    alert_escalated,
    alert_resolved,
)
from nocctl.models import Alert, BusinessUnit, Person
from nocctl.services import access
from nocctl.services import prefs as preferences
from nocctl.services.access import Scope
from nocctl.services.rbac import Caller
from nocctl.services.workflow import Outcome, move_each

LIST_COLUMNS = ("id", "alert_type", "severity", "status", "client", "site", "message", "entity_type", "entity_id",
                "dedup_key", "duplicate_count", "first_seen_at", "last_seen_at", "correlation_id")
TABLE_COLUMNS = ("id", "severity", "status", "alert_type", "client", "site", "entity_id", "duplicate_count",
                 "first_seen_at", "message")
PERSON_FIELDS = ("acknowledged_by", "assigned_to", "escalated_to", "resolved_by")


def _query(scope: Scope):
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    people = {name: aliased(Person) for name in PERSON_FIELDS}
    query = (
        select(Alert, client.code.label("client"), site.code.label("site"),
               *(p.username.label(name) for name, p in people.items()))
        .join(client, client.id == Alert.client_id)
        .outerjoin(site, site.id == Alert.site_id)
        .where(Alert.tenant_id == scope.actor.tenant_id, scope.visible(Alert.client_id, Alert.site_id))
    )
    for name, person in people.items():
        query = query.outerjoin(person, person.id == getattr(Alert, name))
    return query, client, site


def _row(row) -> dict[str, Any]:
    alert: Alert = row[0]
    data = {column.key: getattr(alert, column.key) for column in Alert.__mapper__.column_attrs}
    data["metadata"] = data.pop("metadata_")
    for name in ("tenant_id", "client_id", "site_id"):
        data.pop(name)
    data.update(client=row.client, site=row.site, **{name: getattr(row, name) for name in PERSON_FIELDS})
    return data


@dataclass
class AlertListing:
    """The rows of `list_alerts` and the preferences it applied (empty without `use_prefs`):
    a filter preference only where the caller gave no filter of that kind; `format` and
    `timezone` for the caller to render with."""

    rows: list[dict]
    applied: preferences.Prefs = field(default_factory=preferences.Prefs)


def list_alerts(session: Session, caller: Caller, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                types: Sequence[str] = (), client: str | None = None, site: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                use_prefs: bool = False) -> AlertListing:
    """Visible alerts, newest first by first_seen_at; `since/until` bound first_seen_at.

    With `use_prefs`, the caller's preferences (read in this transaction) fill in the
    filters not given: client (unless a client or site is given), severities, statuses."""
    with session.begin():
        scope = access.for_caller(session, caller)
        applied = preferences.NO_PREFS
        if use_prefs:
            applied = preferences.load(session, scope.actor).for_listing(bool(client or site), bool(severities),
                                                                   bool(statuses))
            client = client or applied.client
            severities = severities or applied.severities
            statuses = statuses or applied.statuses
        query, client_unit, site_unit = _query(scope)
        if statuses:
            query = query.where(Alert.status.in_([s.upper() for s in statuses]))
        if severities:
            query = query.where(Alert.severity.in_([s.upper() for s in severities]))
        if types:
            query = query.where(Alert.alert_type.in_([t.upper() for t in types]))
        if client:
            query = query.where(client_unit.code == client)
        if site:
            query = query.where(site_unit.code == site)
        if since:
            query = query.where(Alert.first_seen_at >= since)
        if until:
            query = query.where(Alert.first_seen_at < until)
        query = query.order_by(Alert.first_seen_at.desc(), Alert.id.desc()).limit(limit)
        return AlertListing([_row(r) for r in session.execute(query)], applied)


def show_alert(session: Session, caller: Caller, alert_id: int) -> dict:
    """One visible alert with every field and its correlation group."""
    with session.begin():
        scope = access.for_caller(session, caller)
        query, _, _ = _query(scope)
        row = session.execute(query.where(Alert.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert {alert_id}", "see `nocctl alert list`")
        data = _row(row)
        group = []
        if data["correlation_id"]:
            members, _, _ = _query(scope)
            members = members.where(Alert.correlation_id == data["correlation_id"]).order_by(Alert.first_seen_at,
                                                                                             Alert.id)
            group = [{k: m[k] for k in ("id", "alert_type", "severity", "status", "site", "first_seen_at")}
                     for m in (_row(r) for r in session.execute(members))]
        data["correlation_group"] = group
        return data


# ---------------------------------------------------------------- moves

ALERTS = Alert.__table__


def person_id(session: Session, tenant_id: int, username: str) -> int:
    found = session.scalar(select(Person.id).where(Person.tenant_id == tenant_id, Person.username == username,
                                                   Person.active.is_(True)))
    if found is None:
        raise NotFound(f"no active person {username!r}", "see `nocctl user list`")
    return found


def act(session: Session, caller: Caller, action: str, ids: Sequence[int] = (), dedup_keys: Sequence[str] = (),
        note: str | None = None, assignee: str | None = None, escalate_to: str | None = None) -> list[Outcome]:
    """Apply one move to each alert (by id, or the active alert of each dedup key) in one
    transaction. Each target is reported; the valid ones are done, the others change nothing."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        who = assignee or escalate_to
        target_person = person_id(session, actor.tenant_id, who) if who else None
        query = select(Alert.id, Alert.client_id, Alert.site_id, Alert.status, Alert.first_seen_at,
                       Alert.escalation_level).where(Alert.tenant_id == actor.tenant_id,
                                                     scope.visible(Alert.client_id, Alert.site_id))
        conditions = [(str(i), Alert.id == i) for i in ids] + \
                     [(key, (Alert.dedup_key == key) & Alert.status.in_(ALERT_ACTIVE)) for key in dedup_keys]
        targets = ((label, session.execute(query.where(condition)).first()) for label, condition in conditions)
        details = {k: v for k, v in (("note", note), ("assignee", assignee), ("escalated_to", escalate_to)) if v}
        return move_each(session, scope, ALERTS, ALERT_MOVES[action], targets,
                         lambda row: _values(action, actor.person_id, now, row, note, target_person), details)


def _values(action: str, person: int | None, now: datetime, row: Any, note: str | None,
            target_person: int | None) -> dict[str, Any]:
    """The fields the move sets (`lifecycle`): `row` is the alert as found."""
    if action == "acknowledge":
        return alert_acknowledged(now, person, row.first_seen_at)
    if action == "assign":
        return alert_assigned(now, target_person)
    if action == "escalate":
        # One level up; the pass plans the next level from here (it looks again at once).
        return alert_escalated(now, target_person, row.escalation_level + 1, now)
    return alert_resolved(now, person, row.first_seen_at, note)
