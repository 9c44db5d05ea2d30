"""Escalation policies and the escalation pass (DESIGN §3 Escalation, §6).

A policy is an ordered list of levels, each a target and a delay per severity; levels past
the listed ones repeat the last, up to `max_level`. A client's own policy wins, else the
tenant default, else the built-in one (on-call, then site in-charge, then client owner;
CRITICAL after 15 minutes, HIGH after 30, other severities never).

The pass looks only at unacknowledged alerts whose `next_escalation_at` has come (one range
scan of a partial index, so its cost follows the due alerts, not the stored ones). For each
it asks the policy: the next level's delay since first_seen (level 1) or the last escalation
has passed → escalate one level (target resolved, falling through on-call → site in-charge
→ client owner when it names nobody), audit, queue a notification; not yet → plan the look
for the due time; never → clear it. Writers that change what the decision depends on
(severity, first_seen, a manual escalation, a policy) move the look earlier, which is
always safe: the pass re-decides from the current row."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.config import Settings
from nocctl.errors import BadInput, Conflict, NotFound
from nocctl.lifecycle import ALERT_PASS_ESCALATE, ALERT_UNACKNOWLEDGED, alert_escalated, sql_in
from nocctl.models import Alert, EscalationPolicy, Person
from nocctl.rawsql import RawSQL, pg_type, update_by_id
from nocctl.services import access, audit, notify, oncall, passes
from nocctl.services.access import Unit
from nocctl.services.passes import TenantRef
from nocctl.services.rbac import Actor, Caller
from nocctl.vocabulary import ESCALATION_CHAIN, SEVERITIES

CAPABILITY = "noc:configure"
DEFAULT_DELAYS = {"CRITICAL": 15 * 60, "HIGH": 30 * 60}
# Literal SQL, matching the partial index's predicate (SQLite uses the index only then; and
# an executemany cannot expand an IN list); the statuses are lifecycle's constants.
_UNACKNOWLEDGED = sql_in(ALERT_UNACKNOWLEDGED)
_UNACKNOWLEDGED_SQL = text(f"alert.status IN {_UNACKNOWLEDGED}")
_ESCALATABLE = sql_in(ALERT_PASS_ESCALATE.allowed)
_AWAKE = "(snoozed_until IS NULL OR snoozed_until <= ?)"  # not snoozed at the pass's instant


# ---------------------------------------------------------------- policies

@dataclass(frozen=True)
class Level:
    target: str  # oncall | site_in_charge | client_owner | user:NAME
    delays: Mapping[str, int]  # severity -> seconds; absent: never

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "delays": {s: self.delays[s] for s in SEVERITIES if s in self.delays}}


@dataclass(frozen=True)
class Policy:
    levels: tuple[Level, ...]
    max_level: int
    source: str = "built-in"  # "client CODE", "tenant default" or "built-in"

    def level(self, number: int) -> Level | None:
        """Level `number` (from 1); past the listed ones the last repeats, up to max_level."""
        if number < 1 or number > self.max_level:
            return None
        return self.levels[min(number, len(self.levels)) - 1]

    def delay(self, number: int, severity: str) -> int | None:
        level = self.level(number)
        return None if level is None else level.delays.get(severity)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "max_level": self.max_level, "levels": [lv.as_dict() for lv in self.levels]}


BUILT_IN = Policy(tuple(Level(t, DEFAULT_DELAYS) for t in ESCALATION_CHAIN), len(ESCALATION_CHAIN))


def _from_row(row: EscalationPolicy, source: str) -> Policy:
    return Policy(tuple(Level(lv["target"], lv.get("delays") or {}) for lv in row.levels), row.max_level, source)


def parse_level(spec: str) -> Level:
    """`TARGET[,SEVERITY=DELAY…]`, e.g. `oncall`, `user:asha,CRITICAL=5m,HIGH=never`. Severities
    not named keep the defaults (CRITICAL 15m, HIGH 30m, others never)."""
    target, *settings = [part.strip() for part in spec.split(",")]
    if not (target in ESCALATION_CHAIN or (target.startswith("user:") and len(target) > 5)):
        raise BadInput(f"--level {spec!r}: unknown target {target!r}",
                       "one of " + ", ".join(ESCALATION_CHAIN) + ", or user:NAME")
    delays = dict(DEFAULT_DELAYS)
    for setting in settings:
        severity, sep, value = setting.partition("=")
        severity = severity.strip().upper()
        if not sep or severity not in SEVERITIES:
            raise BadInput(f"--level {spec!r}: {setting!r} is not SEVERITY=DELAY",
                           "e.g. CRITICAL=10m, HIGH=1h, MEDIUM=never; severities: " + ", ".join(SEVERITIES))
        if value.strip().lower() == "never":
            delays.pop(severity, None)
        else:
            delays[severity] = clock.parse_duration(value, f"the {severity} delay of --level {target}")
    return Level(target, delays)


def _stored(session: Session, tenant_id: int, client_id: int | None) -> EscalationPolicy | None:
    cond = EscalationPolicy.client_id.is_(None) if client_id is None else EscalationPolicy.client_id == client_id
    return session.scalar(select(EscalationPolicy).where(EscalationPolicy.tenant_id == tenant_id, cond))


def effective(session: Session, tenant_id: int, client: Unit | None) -> Policy:
    """The policy in force for the client (or, with None, for clients without their own)."""
    if client is not None:
        own = _stored(session, tenant_id, client.id)
        if own is not None:
            return _from_row(own, f"client {client.code}")
    default = _stored(session, tenant_id, None)
    return _from_row(default, "tenant default") if default is not None else BUILT_IN


def show_policy(session: Session, caller: Caller, client_code: str | None = None) -> dict[str, Any]:
    with session.begin():
        scope = access.for_caller(session, caller)
        client = scope.client(session, client_code) if client_code is not None else None
        policy = effective(session, scope.actor.tenant_id, client)
        return {"client": client_code, **policy.as_dict()}


def _replan(session: Session, tenant_id: int, client_id: int | None) -> int:
    """Make the pass look again at the unacknowledged alerts the policy governs."""
    query = update(Alert).where(Alert.tenant_id == tenant_id, Alert.status.in_(ALERT_UNACKNOWLEDGED))
    if client_id is not None:
        query = query.where(Alert.client_id == client_id)
    else:  # the tenant default governs the clients without a policy of their own
        own = select(EscalationPolicy.client_id).where(EscalationPolicy.tenant_id == tenant_id,
                                                       EscalationPolicy.client_id.is_not(None))
        query = query.where(Alert.client_id.not_in(own))
    # No later than any due time the new policy can give.
    query = query.values(next_escalation_at=func.coalesce(Alert.escalated_at, Alert.first_seen_at))
    result = session.execute(query, execution_options={"synchronize_session": False})
    return cast("CursorResult[Any]", result).rowcount  # an UPDATE: a cursor's result


def _for_configuring(session: Session, caller: Caller, client_code: str | None
                     ) -> tuple[Actor, Unit | None, str]:
    """The actor, the client (None: the tenant default) and the scope's name, once the
    actor may configure it (noc:configure over the client, or tenant-wide)."""
    scope = access.for_caller(session, caller)
    if client_code is None:
        scope.require(CAPABILITY)
        return scope.actor, None, "tenant default"
    return scope.actor, scope.client(session, client_code, CAPABILITY), f"client {client_code}"


def _content(levels: Sequence[dict[str, Any]], max_level: int) -> dict[str, Any]:
    """A stored policy as the audit log keeps it."""
    return {"max_level": max_level, "levels": list(levels)}


def set_policy(session: Session, caller: Caller, level_specs: Sequence[str], client_code: str | None = None,
               max_level: int | None = None) -> dict[str, Any]:
    """Store the policy of a client (or the tenant default); CONFIG_CHANGE audit row."""
    if not level_specs:
        raise BadInput("a policy needs at least one --level", "e.g. --level oncall --level site_in_charge")
    levels = [parse_level(spec).as_dict() for spec in level_specs]
    top = len(levels) if max_level is None else max_level
    if top < len(levels):
        raise BadInput(f"--max-level {top} is below the {len(levels)} levels given",
                       "drop levels or raise --max-level (levels past the listed ones repeat the last)")
    with session.begin():
        actor, client, scope = _for_configuring(session, caller, client_code)
        client_id = client.id if client else None
        for target in (lv["target"] for lv in levels if lv["target"].startswith("user:")):
            if session.scalar(select(Person.id).where(Person.tenant_id == actor.tenant_id,
                                                      Person.username == target[5:])) is None:
                raise NotFound(f"--level {target}: no person {target[5:]!r}", "see `nocctl user list`")
        stored = _stored(session, actor.tenant_id, client_id)
        before = _content(stored.levels, stored.max_level) if stored is not None else None
        if stored is None:
            stored = EscalationPolicy(tenant_id=actor.tenant_id, client_id=client_id)
            session.add(stored)
        now = clock.now()
        stored.levels, stored.max_level = levels, top
        stored.updated_at, stored.updated_by = now, actor.person_id
        try:
            session.flush()
        except IntegrityError:
            raise Conflict("the policy was changed by someone else meanwhile", "run the command again") from None
        replanned = _replan(session, actor.tenant_id, client_id)
        audit.record(session, actor, "CONFIG_CHANGE", "escalation_policy", stored.id,
                     {"scope": scope, "before": before, "after": _content(levels, top)}, client_id, at=now)
        return {"client": client_code, "source": scope, **_content(levels, top), "replanned_alerts": replanned}


def delete_policy(session: Session, caller: Caller, client_code: str | None = None) -> dict[str, Any]:
    """Remove a client's policy (it falls back to the tenant default) or the tenant default
    (back to the built-in one)."""
    with session.begin():
        actor, client, scope = _for_configuring(session, caller, client_code)
        client_id = client.id if client else None
        stored = _stored(session, actor.tenant_id, client_id)
        if stored is None:
            raise NotFound(f"no escalation policy of the {scope}", "see `nocctl escalation policy show`")
        before = _content(stored.levels, stored.max_level)
        session.execute(delete(EscalationPolicy).where(EscalationPolicy.id == stored.id))
        replanned = _replan(session, actor.tenant_id, client_id)
        audit.record(session, actor, "CONFIG_CHANGE", "escalation_policy", stored.id,
                     {"scope": scope, "before": before, "after": None}, client_id)
        return {"client": client_code, "deleted": scope,
                "now_in_force": effective(session, actor.tenant_id, client).source, "replanned_alerts": replanned}


# ---------------------------------------------------------------- the pass

@dataclass
class Summary:
    tenants: int = 0
    looked_at: int = 0
    escalated: int = 0
    unrouted: int = 0  # escalated, but every target resolved to nobody
    planned: int = 0
    finished: int = 0  # at the top level, or never escalated at their severity
    notifications: int = 0
    dry_run: bool = False
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Targets:
    """Resolves a level's target to a person for one tenant and instant, cached."""

    session: Session
    tenant_id: int
    at: datetime
    people: dict[int, Any] = field(default_factory=dict)  # active people by id
    by_name: dict[str, int] = field(default_factory=dict)
    units: dict[int, Any] = field(default_factory=dict)
    on_call: dict[int, int | None] = field(default_factory=dict)

    def load(self, unit_ids: set[int]) -> None:
        sql = RawSQL(self.session)  # plain rows: read once per pass, looked up thousands of times
        for person in sql.fetch("SELECT id, username, name, email, phone FROM person WHERE tenant_id = :tid"
                                " AND active = :active", {"tid": self.tenant_id, "active": True}):
            found = _Person._make(person)
            self.people[found.id] = found
            self.by_name[found.username] = found.id
        for unit in sql.select_in(f"SELECT id, code, site_in_charge_id, owner_id FROM business_unit"
                                  f" WHERE tenant_id = {sql.mark} AND id {{in}}", [self.tenant_id],
                                  sorted(unit_ids), "bigint"):
            self.units[unit[0]] = _UnitRow._make(unit)

    def _one(self, target: str, client_id: int, site_id: int | None) -> int | None:
        if target.startswith("user:"):
            found = self.by_name.get(target[5:])
        elif target == "oncall":
            if client_id not in self.on_call:
                self.on_call[client_id] = oncall.on_call(self.session, self.tenant_id, client_id, self.at)
            found = self.on_call[client_id]
        elif target == "site_in_charge":
            found = self.units[site_id].site_in_charge_id if site_id is not None else None
        else:
            found = self.units[client_id].owner_id
        return found if found in self.people else None

    def resolve(self, target: str, client_id: int, site_id: int | None) -> tuple[int | None, str | None]:
        """(person, the target that named them): the level's own target, then the chain."""
        order = [target, *ESCALATION_CHAIN] if target.startswith("user:") else \
            list(ESCALATION_CHAIN[ESCALATION_CHAIN.index(target):])
        for candidate in order:
            person = self._one(candidate, client_id, site_id)
            if person is not None:
                return person, candidate
        return None, None


def _system(tenant_id: int, caller: Caller) -> Actor:
    """The actor of a pass: no person; the audit row keeps the login and host that ran it."""
    return Actor(tenant_id, None, "system", caller.os_user, caller.host)  # type: ignore[arg-type]


class _Due(NamedTuple):
    """A due alert as the pass reads it."""

    id: int
    client_id: int
    site_id: int | None
    severity: str
    status: str
    alert_type: str
    message: str
    dedup_key: str
    first_seen_at: datetime
    escalated_at: datetime | None
    escalation_level: int


class _Person(NamedTuple):
    id: int
    username: str
    name: str | None
    email: str | None
    phone: str | None


class _UnitRow(NamedTuple):
    id: int
    code: str
    site_in_charge_id: int | None
    owner_id: int | None


# The status filter literally as the partial index's predicate (SQLite uses the index only then).
_DUE = (f"SELECT {', '.join(_Due._fields)} FROM alert WHERE tenant_id = :tid AND {_UNACKNOWLEDGED_SQL.text}"
        " AND next_escalation_at <= :now AND (snoozed_until IS NULL OR snoozed_until <= :now)"
        " ORDER BY next_escalation_at, id")


def _due(session: Session, tenant_id: int, now: datetime) -> list[_Due]:
    """The unacknowledged alerts whose look has come: a range scan of the partial index,
    less the snoozed ones (a filter on the rows the scan finds: a snoozed alert keeps its
    look, so the pass decides it again, from the current row, once the snooze is over).
    Plain rows on the DBAPI cursor: a pass reads thousands."""
    instants = (_Due._fields.index("first_seen_at"), _Due._fields.index("escalated_at"))
    return [_Due._make(row) for row in RawSQL(session).fetch(_DUE, {"tid": tenant_id, "now": now}, instants)]


def _policies(session: Session, tenant_id: int) -> tuple[dict[int, Policy], Policy]:
    rows = session.scalars(select(EscalationPolicy).where(EscalationPolicy.tenant_id == tenant_id)).all()
    default = next((_from_row(r, "tenant default") for r in rows if r.client_id is None), BUILT_IN)
    return {r.client_id: _from_row(r, "client") for r in rows if r.client_id is not None}, default


def _to_second(at: datetime) -> str | None:
    """An instant in a message people read: UTC ISO to the second (the JSON fields keep it whole)."""
    return clock.isoformat(at.replace(microsecond=0))


def _payload(tenant: str, alert: Any, level: int, target: str, via: str | None, person: Any, units: dict,
             at: datetime) -> dict[str, Any]:
    client = units[alert.client_id].code
    site = units[alert.site_id].code if alert.site_id is not None else None
    where = site or client
    recipient = None if person is None else {"username": person.username, "name": person.name,
                                             "email": person.email, "phone": person.phone}
    to = person.username if person is not None else "nobody (no target resolved)"
    subject = f"[{alert.severity}] {alert.alert_type} at {where}: escalated to level {level}"
    return {
        "kind": "escalation",
        "tenant": tenant,
        "subject": subject,
        "text": (f"{subject}\n\n{alert.message}\n\nalert {alert.id} · client {client}"
                 + (f" · site {site}" if site else "")
                 + f"\nfirst seen {_to_second(alert.first_seen_at)} · escalated {_to_second(at)}"
                 + f"\nto {to} ({via or target})\n\nacknowledge: nocctl alert ack {alert.id}\n"),
        "at": clock.isoformat(at),
        "level": level,
        "target": target,
        "resolved_via": via,
        "recipient": recipient,
        "alert": {"id": alert.id, "type": alert.alert_type, "severity": alert.severity, "message": alert.message,
                  "client": client, "site": site, "dedup_key": alert.dedup_key,
                  "first_seen_at": clock.isoformat(alert.first_seen_at)},
    }


@dataclass(frozen=True)
class _Move:
    alert: Any
    level: int  # the level it climbs to
    target: str
    person_id: int | None
    via: str | None
    next_look: datetime | None


def _write(sql: RawSQL, plans: list[tuple[int, int, datetime | None]], moves: list[_Move], now: datetime) -> set[int]:
    """Write the plans and the escalations; returns the alerts escalated. Each write is
    guarded by the status and level read (and by the snooze: one snoozed meanwhile is not
    escalated), and RETURNING says which rows changed: an alert an engineer acknowledged,
    escalated or snoozed meanwhile is left as they left it, and not audited. PostgreSQL:
    one UPDATE … FROM unnest(…) for all, without locking the due rows while the pass decides.
    SQLite: the pass holds the write lock from its first read; one statement per alert
    costs microseconds there. The fields an escalation sets are
    `lifecycle.alert_escalated`'s, from the statuses `ALERT_PASS_ESCALATE` allows."""
    escalated = [alert_escalated(now, m.person_id, m.level, m.next_look) for m in moves]
    columns = tuple(escalated[0]) if escalated else ()  # the same fields for every move, in lifecycle's order
    cursor = sql.dbapi.cursor()
    try:
        if not sql.pg:
            sql.many(f"UPDATE alert SET next_escalation_at = ? WHERE id = ? AND status IN {_UNACKNOWLEDGED}"
                     " AND escalation_level = ?", [(sql.ts(at), i, level) for i, level, at in plans])
            statement = (update_by_id(Alert.__table__, columns)
                         + f" AND status IN {_ESCALATABLE} AND escalation_level = ? AND {_AWAKE} RETURNING id")
            changed: set[int] = set()
            for m, fields in zip(moves, escalated, strict=True):
                cursor.execute(statement, [*(sql.ts(v) if isinstance(v, datetime) else v for v in fields.values()),
                                           m.alert.id, m.level - 1, sql.ts(now)])
                changed.update(row[0] for row in cursor.fetchall())
            return changed
        if plans:
            ids, levels, looks = (list(column) for column in zip(*plans, strict=True))
            cursor.execute("UPDATE alert SET next_escalation_at = v.look FROM unnest(%b::bigint[], %b::int[],"
                           " %b::timestamptz[]) AS v(id, level, look) WHERE alert.id = v.id"
                           f" AND alert.status IN {_UNACKNOWLEDGED} AND alert.escalation_level = v.level",
                           [ids, levels, looks])
        if not moves:
            return set()
        arrays = ", ".join(f"%b::{pg_type(Alert.__table__, c)}[]" for c in columns)
        cursor.execute(
            f"UPDATE alert SET {', '.join(f'{c} = v.{c}' for c in columns)}"
            f" FROM unnest(%b::bigint[], %b::int[], {arrays}) AS v(id, level_read, {', '.join(columns)})"
            f" WHERE alert.id = v.id AND alert.status IN {_ESCALATABLE} AND alert.escalation_level = v.level_read"
            " AND (alert.snoozed_until IS NULL OR alert.snoozed_until <= %s) RETURNING alert.id",
            [[m.alert.id for m in moves], [m.level - 1 for m in moves], *([f[c] for f in escalated] for c in columns),
             now])
        return {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()


def _tenant_pass(session: Session, tenant: TenantRef, caller: Caller, now: datetime, channels: Mapping[str, Any],
                 summary: Summary) -> list[dict[str, Any]]:
    due = _due(session, tenant.id, now)
    if not due:
        return []
    summary.looked_at += len(due)
    own, default = _policies(session, tenant.id)
    targets = _Targets(session, tenant.id, now)
    targets.load({a.client_id for a in due} | {a.site_id for a in due if a.site_id is not None})
    plans: list[tuple[int, int, datetime | None]] = []  # (alert, level read, its next look)
    moves: list[_Move] = []
    for alert in due:
        policy = own.get(alert.client_id, default)
        level = alert.escalation_level + 1
        delay = policy.delay(level, alert.severity)
        if delay is None:
            summary.finished += 1
            plans.append((alert.id, alert.escalation_level, None))
            continue
        since = alert.escalated_at if alert.escalation_level > 0 and alert.escalated_at else alert.first_seen_at
        due_at = since + timedelta(seconds=delay)
        if due_at > now:
            summary.planned += 1
            plans.append((alert.id, alert.escalation_level, due_at))
            continue
        target = policy.level(level).target  # type: ignore[union-attr]
        person_id, via = targets.resolve(target, alert.client_id, alert.site_id)
        following = policy.delay(level + 1, alert.severity)
        moves.append(_Move(alert, level, target, person_id, via,
                           now + timedelta(seconds=following) if following is not None else None))
    escalated = _write(RawSQL(session), plans, moves, now)
    # A payload is built only for an escalation some channel takes (none configured: none).
    notified = {severity for severity in SEVERITIES if any(c.accepts(severity) for c in channels.values())}
    entries: list[audit.Entry] = []
    messages: list[notify.Message] = []
    done: list[dict[str, Any]] = []
    for move in moves:
        alert = move.alert
        if alert.id not in escalated:
            continue
        person = targets.people.get(move.person_id) if move.person_id is not None else None
        username = person.username if person is not None else None
        summary.escalated += 1
        summary.unrouted += person is None
        entries.append(audit.Entry(ALERT_PASS_ESCALATE.audit_action, "alert", alert.id,
                                   {"from": alert.status, "to": ALERT_PASS_ESCALATE.to, "level": move.level,
                                    "target": move.target, "resolved_via": move.via, "escalated_to": username,
                                    "by": "escalation pass"}, alert.client_id, alert.site_id))
        if alert.severity in notified:
            messages.append(notify.Message(
                "ESCALATION",
                _payload(tenant.slug, alert, move.level, move.target, move.via, person, targets.units, now),
                alert.id, alert.client_id, alert.site_id, move.person_id, alert.severity))
        done.append({"tenant": tenant.slug, "alert_id": alert.id, "severity": alert.severity,
                     "type": alert.alert_type, "client": targets.units[alert.client_id].code,
                     "site": targets.units[alert.site_id].code if alert.site_id is not None else None,
                     "from_level": alert.escalation_level, "to_level": move.level, "target": move.target,
                     "resolved_via": move.via, "escalated_to": username, "at": clock.isoformat(now)})
    audit.record_many(session, _system(tenant.id, caller), entries, at=now)
    summary.notifications += notify.queue(session, tenant.id, messages, channels, now)
    return done


def run(engine: Engine, settings: Settings, caller: Caller, now: datetime, dry_run: bool = False
        ) -> tuple[Summary, list[dict[str, Any]]]:
    """The escalation pass over every tenant, under the `escalate` pass lock (a dry run
    takes it too); one transaction per tenant, rolled back on a dry run. Everything it
    writes is stamped `now`. Returns the summary and the escalations made."""
    channels = settings.notify.channels  # a bad channel config fails before any change
    summary = Summary(dry_run=dry_run)

    def tenant_pass(session: Session, tenant: TenantRef) -> list[dict[str, Any]]:
        return _tenant_pass(session, tenant, caller, now, channels, summary)

    with passes.running(engine, "escalate", now, dry_run) as job:
        summary.tenants = len(job.tenants)
        done = job.each_tenant(tenant_pass)
    summary.duration_ms = job.duration_ms
    return summary, [escalation for made in done for escalation in made]
