"""Alerts: listing with filters, one alert in full (with its timeline), and what engineers
do to them — acknowledge, assign, escalate, resolve, note, snooze, unsnooze (DESIGN §3, §4)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, not_, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from nocctl import clock
from nocctl.errors import BadInput, NotFound, UsageError
from nocctl.lifecycle import (
    ALERT_ACTIVE,
    ALERT_MOVES,
    ALERT_NOTE,
    ALERT_SNOOZE,
    ALERT_SURFACED,
    ALERT_UNSNOOZE,
    alert_acknowledged,
    alert_assigned,
    alert_escalated,
    alert_resolved,
    alert_snoozed,
    snoozed,
)
from nocctl.models import Alert, BusinessUnit, Person
from nocctl.services import access, alert_timeline, audit
from nocctl.services import prefs as preferences
from nocctl.services.access import Scope
from nocctl.services.rbac import Caller
from nocctl.services.workflow import Outcome, move_each
from nocctl.vocabulary import SEVERITY_RANK

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
    `timezone` for the caller to render with. `total`: how many alerts matched when the limit
    cut the listing (None: every match is in `rows`)."""

    rows: list[dict]
    applied: preferences.Prefs = field(default_factory=preferences.Prefs)
    total: int | None = None
    limit: int | None = None


# `--label`: an Alertmanager-style matcher over the labels (`metadata.labels`, where ingest
# keeps Alertmanager's) or else the top-level keys of `metadata` (native records).
MATCH_OPERATORS = ("=~", "!~", "!=", "=")
_MATCHER = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.:/-]*)\s*(=~|!~|!=|=)(.*)", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """`key=value`, `key!=value`, `key=~regex`, `key!~regex`. As in Alertmanager, a regex must
    match the whole value (anchored) and a missing label reads as the empty string."""

    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.fullmatch(text.strip())
        if found is None:
            raise UsageError(f"--label {text!r} is not a matcher",
                             "use KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX, e.g. instance=~'edge-.*'")
        key, op, value = found[1], found[2], found[3].strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # amtool quotes values: instance="edge-1"
        if "~" in op:
            try:
                re.compile(value)
            except re.error as exc:
                raise UsageError(f"--label {text!r}: {value!r} is not a regular expression ({exc})") from None
        return cls(key, op, value)

    def condition(self) -> ColumnElement[bool]:
        # As text on both backends (PostgreSQL #>>, SQLite CAST(json_extract) — a number
        # in the metadata compares as its text); the label first, else the metadata key.
        value = func.coalesce(Alert.metadata_[("labels", self.key)].as_string(),
                              Alert.metadata_[(self.key,)].as_string(), "")
        if self.op in ("=", "!="):
            return value == self.value if self.op == "=" else value != self.value
        anchored = value.regexp_match(f"^(?:{self.value})$")  # PostgreSQL `~`, SQLite REGEXP (Python re)
        return anchored if self.op == "=~" else not_(anchored)


def entity_condition(text: str) -> ColumnElement[bool]:
    """`--entity ID` (entity_id), or `TYPE:ID` (entity_type and entity_id). An id may hold a
    colon itself (Alertmanager's `host:9100`), so the whole text as an id matches too."""
    condition = Alert.entity_id == text
    kind, sep, rest = text.partition(":")
    if sep and kind and rest:
        condition = or_(condition, (Alert.entity_type == kind) & (Alert.entity_id == rest))
    return condition


def in_front(now: datetime) -> ColumnElement[bool]:
    """The alerts in front of the NOC at `now`: active and not held by a maintenance window
    (`lifecycle.ALERT_SURFACED`), not snoozed. The default `alert list` and the open alert
    counts of `status`."""
    return Alert.status.in_(ALERT_SURFACED) & not_snoozed(now)


def not_snoozed(now: datetime) -> ColumnElement[bool]:
    """SQL of `not lifecycle.snoozed(snoozed_until, now)`."""
    return or_(Alert.snoozed_until.is_(None), Alert.snoozed_until <= now)


# Worst first, then the longest waiting: an old CRITICAL nobody took on is the one that has
# breached the most, and newest-first would bury it under a flurry of fresh ones.
SEVERITY_ORDER = case(SEVERITY_RANK, value=Alert.severity, else_=len(SEVERITY_RANK))


def list_alerts(session: Session, caller: Caller, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                types: Sequence[str] = (), client: str | None = None, site: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int | None = 100,
                use_prefs: bool = False, every_status: bool = False, labels: Sequence[Matcher] = (),
                entity: str | None = None) -> AlertListing:
    """Visible alerts, worst first: by severity (CRITICAL first), then first_seen_at (oldest
    first), then id; `since/until` bound first_seen_at; `limit` None: all of them.

    Statuses: the given ones (snoozed alerts included); else (with `use_prefs`) the preferred
    ones, not snoozed; else, with `every_status`, all; else the alerts in front of the NOC
    (`in_front`: not RESOLVED, not SUPPRESSED, not snoozed). With `use_prefs`, the caller's preferences (read in this
    transaction) fill in the other filters not given: client (unless a client or site is
    given), severities. When the limit cuts the listing, `total` counts every match (one more
    query, only then: the listing reads limit + 1 rows to know)."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        applied = preferences.NO_PREFS
        statuses_given = bool(statuses)
        if use_prefs:
            applied = preferences.load(session, scope.actor).for_listing(bool(client or site), bool(severities),
                                                                   statuses_given or every_status)
            client = client or applied.client
            severities = severities or applied.severities
            statuses = statuses or applied.statuses
        tenant_id = scope.actor.tenant_id
        conditions: list[ColumnElement[bool]] = [Alert.tenant_id == tenant_id,
                                                 scope.visible(Alert.client_id, Alert.site_id)]
        if statuses:
            conditions.append(Alert.status.in_([s.upper() for s in statuses]))
            if not statuses_given:  # preferred statuses: still the default view, snoozed ones out
                conditions.append(not_snoozed(now))
        elif not every_status:
            conditions.append(in_front(now))
        if severities:
            conditions.append(Alert.severity.in_([s.upper() for s in severities]))
        if types:
            conditions.append(Alert.alert_type.in_([t.upper() for t in types]))
        for code, column in ((client, Alert.client_id), (site, Alert.site_id)):
            if code:
                conditions.append(column.in_(select(BusinessUnit.id).where(BusinessUnit.tenant_id == tenant_id,
                                                                           BusinessUnit.code == code)))
        if since:
            conditions.append(Alert.first_seen_at >= since)
        if until:
            conditions.append(Alert.first_seen_at < until)
        if entity:
            conditions.append(entity_condition(entity))
        conditions.extend(m.condition() for m in labels)
        query, _, _ = _query(scope)
        query = query.where(*conditions).order_by(SEVERITY_ORDER, Alert.first_seen_at, Alert.id)
        if limit is not None:
            query = query.limit(limit + 1)
        rows = [_row(r) for r in session.execute(query)]
        total = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            total = session.scalar(select(func.count()).select_from(Alert).where(*conditions))
        return AlertListing(rows, applied, total, limit)


def show_alert(session: Session, caller: Caller, alert_id: int) -> dict:
    """One visible alert with every field, its correlation group and its timeline
    (`alert_timeline`: what happened to it, in order, each `{at, event, actor, details}`)."""
    now = clock.now()
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
        data["snoozed"] = snoozed(data["snoozed_until"], now)
        data["timeline"] = alert_timeline.build(session, scope, data, now)
        return data


# ---------------------------------------------------------------- moves

ALERTS = Alert.__table__


def person_id(session: Session, tenant_id: int, username: str) -> int:
    found = session.scalar(select(Person.id).where(Person.tenant_id == tenant_id, Person.username == username,
                                                   Person.active.is_(True)))
    if found is None:
        raise NotFound(f"no active person {username!r}", "see `nocctl user list`")
    return found


def _targets(session: Session, scope: Scope, ids: Sequence[int], dedup_keys: Sequence[str] = ()):
    """(label, row) for each id (and the active alert of each dedup key); row None when the
    person cannot see it (`move_each` reports it not found)."""
    query = select(Alert.id, Alert.client_id, Alert.site_id, Alert.status, Alert.first_seen_at,
                   Alert.escalation_level, Alert.snoozed_until).where(
        Alert.tenant_id == scope.actor.tenant_id, scope.visible(Alert.client_id, Alert.site_id))
    conditions = [(str(i), Alert.id == i) for i in ids] + \
                 [(key, (Alert.dedup_key == key) & Alert.status.in_(ALERT_ACTIVE)) for key in dedup_keys]
    return ((label, session.execute(query.where(condition)).first()) for label, condition in conditions)


def act(session: Session, caller: Caller, action: str, ids: Sequence[int] = (), dedup_keys: Sequence[str] = (),
        note: str | None = None, assignee: str | None = None, escalate_to: str | None = None) -> list[Outcome]:
    """Apply one move to each alert (by id, or the active alert of each dedup key) in one
    transaction. Each target is reported; the valid ones are done, the others change nothing.
    A move to where the alert is already (acknowledging an acknowledged alert; assigning it
    to the person it is assigned to) is reported `already …`, exit 0, with no audit row."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        who = assignee or escalate_to
        target_person = person_id(session, actor.tenant_id, who) if who else None
        details = {k: v for k, v in (("note", note), ("assignee", assignee), ("escalated_to", escalate_to)) if v}
        # Assigning is a no-op only to the same person: anyone else is a reassignment.
        same = Alert.assigned_to.is_not_distinct_from(target_person) if action == "assign" else None
        return move_each(session, scope, ALERTS, ALERT_MOVES[action], _targets(session, scope, ids, dedup_keys),
                         lambda row: _values(action, actor.person_id, now, row, note, target_person), details,
                         same=same)


def note(session: Session, caller: Caller, alert_id: int, text: str) -> Outcome:
    """Add a note to a visible alert (noc:ack_alerts over it; any status): a NOTE audit row,
    shown in the alert's timeline. Not found 3, not permitted 77 (raised)."""
    if not text.strip():
        raise BadInput("the note is empty", "give the note's text: nocctl alert note ID TEXT")
    with session.begin():
        scope = access.for_caller(session, caller)
        ((label, row),) = _targets(session, scope, [alert_id])
        if row is None:
            raise NotFound(f"no alert {label}", "see `nocctl alert list`")
        scope.require(ALERT_NOTE.capability, row.client_id, row.site_id, what=f"alert {row.id}")
        audit.record(session, scope.actor, ALERT_NOTE.audit_action, "alert", row.id, {"note": text},
                     row.client_id, row.site_id)
        return Outcome(label, row.id, True, row.status, message="note added")


def snooze(session: Session, caller: Caller, ids: Sequence[int], until: datetime | None = None,
           seconds: int | None = None, note: str | None = None) -> list[Outcome]:
    """Snooze each alert until `until` (or for `seconds` from now): out of the active view
    and the escalation pass until then, back by itself after (`lifecycle.ALERT_SNOOZE`).
    Snoozing again moves the end; to the same end it is a no-op. RESOLVED: exit 4."""
    now = clock.now()
    if (until is None) == (seconds is None):
        raise BadInput("give --for DURATION or --until TIME", "e.g. --for 2h, --until +30m")
    end = until if until is not None else now + timedelta(seconds=seconds or 0)
    if end <= now:
        raise BadInput(f"the snooze would end at {clock.isoformat(end)}, not after now ({clock.isoformat(now)})",
                       "give a later --until, e.g. +2h")
    shown = clock.isoformat(end)
    with session.begin():
        scope = access.for_caller(session, caller)
        details = {"snoozed_until": shown, **({"note": note} if note else {})}
        outcomes = move_each(session, scope, ALERTS, ALERT_SNOOZE, _targets(session, scope, ids),
                             lambda row: alert_snoozed(end), details,
                             same=Alert.snoozed_until.is_not_distinct_from(end),
                             said=lambda status: f"snoozed until {shown} ({status})")
    for outcome in outcomes:
        if outcome.unchanged:
            outcome.message = f"already snoozed until {shown}"
    return outcomes


def unsnooze(session: Session, caller: Caller, ids: Sequence[int]) -> list[Outcome]:
    """Wake each snoozed alert now; one that is not snoozed (or whose snooze ran out) is a
    no-op, `not snoozed`. RESOLVED: exit 4."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        return move_each(session, scope, ALERTS, ALERT_UNSNOOZE, _targets(session, scope, ids),
                         lambda row: alert_snoozed(None), {},
                         same=or_(Alert.snoozed_until.is_(None), Alert.snoozed_until <= now),
                         said=lambda status: f"unsnoozed ({status})")


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
