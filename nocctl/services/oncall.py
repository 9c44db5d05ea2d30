"""On-call schedules (DESIGN §3, Escalation): who is on call at an instant, and the use cases
behind `nocctl oncall schedule add/list`, `oncall override add` and `oncall who`.

A schedule has ordered members, a start instant and a turn length. At T the person on call
is the one of an override covering T ([starts_at, ends_at); when several do, the one that
starts latest, then the highest id), else members[floor((T − start) / turn) mod n]. Exactly
at a turn boundary the next member is on call. Before the start the first member is on call:
the rotation has nobody else to offer, and an alert at that time should still reach someone.

A client's schedule answers for that client; a client without one falls back to the
tenant-wide schedule (client NULL). Several candidates: the lowest id."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound
from nocctl.models import BusinessUnit, OncallMember, OncallOverride, OncallSchedule, Person
from nocctl.services import access, audit
from nocctl.services.access import Scope
from nocctl.services.rbac import Actor, Caller

CAPABILITY = "noc:configure"
LIST_COLUMNS = ("id", "name", "client", "starts_at", "turn", "turn_seconds", "members", "created_by", "created_at")


# ---------------------------------------------------------------- rotation maths

@dataclass(frozen=True)
class Pick:
    """Who is on call and why: an override (its id), or a turn of the rotation (`turn`
    counts from 1 at the start; before the start it is 0 and the first member answers)."""

    person_id: int
    override_id: int | None = None
    turn: int | None = None

    @property
    def before_start(self) -> bool:
        return self.override_id is None and self.turn == 0


def who_is_on_call(schedule: Any, members: Sequence[int], overrides: Sequence[Any], at: datetime) -> Pick | None:
    """Pure: `schedule` has `starts_at` and `turn_seconds`; `members` are person ids in
    rotation order; each override has `id`, `person_id`, `starts_at`, `ends_at`. None only
    when no override covers `at` and the schedule has no members."""
    covering = [o for o in overrides if o.starts_at <= at < o.ends_at]
    if covering:
        chosen = max(covering, key=lambda o: (o.starts_at, o.id))
        return Pick(chosen.person_id, override_id=chosen.id)
    if not members:
        return None
    if at < schedule.starts_at:
        return Pick(members[0], turn=0)
    index = (at - schedule.starts_at) // timedelta(seconds=schedule.turn_seconds)  # exact integer division
    return Pick(members[index % len(members)], turn=index + 1)


def _next_boundary(schedule: Any, overrides: Sequence[Any], after: datetime) -> datetime | None:
    """The first instant after `after` at which the answer may change: a turn ends, or an
    override starts or ends. None when there is none (no override ahead and no rotation)."""
    turn = timedelta(seconds=schedule.turn_seconds)
    if after < schedule.starts_at:
        candidates = [schedule.starts_at]
    else:
        candidates = [schedule.starts_at + ((after - schedule.starts_at) // turn + 1) * turn]
    candidates += [edge for o in overrides for edge in (o.starts_at, o.ends_at) if edge > after]
    return min(candidates, default=None)


def next_change(schedule: Any, members: Sequence[int], overrides: Sequence[Any],
                at: datetime) -> tuple[datetime, Pick] | None:
    """Pure: when the person on call at `at` hands over, and the Pick of who takes over
    (a different person: a turn or override of the same person continues the shift).
    `overrides` must hold every override of the schedule that ends after `at`. None when
    nobody else ever comes (one member, no override ahead)."""
    current = who_is_on_call(schedule, members, overrides, at)
    if current is None:
        return None
    # Each step passes a turn or an override edge: after len(members) turns past the
    # last override edge the rotation has shown everyone it has.
    instant = at
    for _ in range(len(members) + 2 * len(overrides) + 2):
        boundary = _next_boundary(schedule, overrides, instant)
        if boundary is None:
            return None
        pick = who_is_on_call(schedule, members, overrides, boundary)
        if pick is not None and pick.person_id != current.person_id:
            return boundary, pick
        instant = boundary
    return None


# ---------------------------------------------------------------- loading

def _members(session: Session, schedule_id: int) -> list[int]:
    return list(session.scalars(select(OncallMember.person_id).where(OncallMember.schedule_id == schedule_id)
                                .order_by(OncallMember.position)))


def _overrides_at(session: Session, schedule: OncallSchedule, at: datetime) -> list[OncallOverride]:
    return list(session.scalars(select(OncallOverride).where(
        OncallOverride.tenant_id == schedule.tenant_id, OncallOverride.schedule_id == schedule.id,
        OncallOverride.starts_at <= at, OncallOverride.ends_at > at)))


def _overrides_from(session: Session, schedule: OncallSchedule, at: datetime) -> list[OncallOverride]:
    """The schedule's overrides that cover `at` or come later (those `next_change` needs)."""
    return list(session.scalars(select(OncallOverride).where(
        OncallOverride.tenant_id == schedule.tenant_id, OncallOverride.schedule_id == schedule.id,
        OncallOverride.ends_at > at)))


def schedule_for(session: Session, tenant_id: int, client_id: int | None) -> OncallSchedule | None:
    """The schedule that answers for this client (its own, else the tenant-wide one), or for
    the tenant when `client_id` is None. Several: the lowest id."""
    candidates = [client_id, None] if client_id is not None else [None]
    for wanted in candidates:
        cond = OncallSchedule.client_id.is_(None) if wanted is None else OncallSchedule.client_id == wanted
        found = session.scalar(select(OncallSchedule).where(OncallSchedule.tenant_id == tenant_id, cond)
                               .order_by(OncallSchedule.id).limit(1))
        if found is not None:
            return found
    return None


def on_call(session: Session, tenant_id: int, client_id: int | None, at: datetime) -> int | None:
    """The person on call for this client at `at`, inside the caller's transaction (for the
    escalation pass); None when no schedule answers."""
    schedule = schedule_for(session, tenant_id, client_id)
    if schedule is None:
        return None
    pick = who_is_on_call(schedule, _members(session, schedule.id), _overrides_at(session, schedule, at), at)
    return pick.person_id if pick else None


# ---------------------------------------------------------------- helpers

def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"the {what} has no UTC offset", "add one, e.g. Z or +05:30")
    return value.astimezone(UTC)


def _visible_schedules(scope: Scope):
    """SQL: a tenant-wide schedule is seen by anyone holding a view capability; a client's by
    those who see the client or one of its sites."""
    return or_(and_(OncallSchedule.client_id.is_(None), scope.visible_to_viewers()),
               and_(OncallSchedule.client_id.is_not(None), scope.visible_client(OncallSchedule.client_id)))


def _person(session: Session, tenant_id: int, username: str) -> Person:
    person = session.scalar(select(Person).where(Person.tenant_id == tenant_id, Person.username == username))
    if person is None or not person.active:
        raise NotFound(f"no {'active ' if person else ''}person {username!r}", "see `nocctl user list`")
    return person


def _schedule_named(session: Session, actor: Actor, name: str) -> OncallSchedule:
    schedule = session.scalar(select(OncallSchedule).where(OncallSchedule.tenant_id == actor.tenant_id,
                                                           OncallSchedule.name == name))
    if schedule is None:
        raise NotFound(f"no on-call schedule {name!r}", "see `nocctl oncall schedule list`")
    return schedule


def _describe(session: Session, schedule: OncallSchedule) -> dict[str, Any]:
    client = session.scalar(select(BusinessUnit.code).where(BusinessUnit.id == schedule.client_id)) \
        if schedule.client_id is not None else None
    members = list(session.scalars(select(Person.username).join(OncallMember, OncallMember.person_id == Person.id)
                                   .where(OncallMember.schedule_id == schedule.id).order_by(OncallMember.position)))
    created_by = session.scalar(select(Person.username).where(Person.id == schedule.created_by)) \
        if schedule.created_by is not None else None
    return {"id": schedule.id, "name": schedule.name, "client": client, "starts_at": schedule.starts_at,
            "turn": clock.format_duration(schedule.turn_seconds), "turn_seconds": schedule.turn_seconds,
            "members": members, "created_by": created_by, "created_at": schedule.created_at}


# ---------------------------------------------------------------- use cases

def add_schedule(session: Session, caller: Caller, name: str, client: str | None, members: Sequence[str],
                 start: datetime, turn: str) -> dict[str, Any]:
    """Create a schedule (tenant-wide when `client` is None). Needs noc:configure over the
    client (tenant-wide for a tenant-wide schedule). Unknown client or person: exit 3; a
    name already used in the tenant: exit 4."""
    name = (name or "").strip()
    if not name:
        raise BadInput("an on-call schedule needs a name")
    if not members:
        raise BadInput("an on-call schedule needs at least one --member")
    turn_seconds = clock.parse_duration(turn, "--turn")
    starts_at = _aware(start, "start")
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        client_id = None
        if client:
            client_id = scope.client(session, client, CAPABILITY).id
        else:
            scope.require(CAPABILITY)
        people = [_person(session, actor.tenant_id, username) for username in members]
        if session.scalar(select(OncallSchedule.id).where(OncallSchedule.tenant_id == actor.tenant_id,
                                                          OncallSchedule.name == name)) is not None:
            raise Conflict(f"an on-call schedule named {name!r} exists already", "pick another name")
        schedule = OncallSchedule(tenant_id=actor.tenant_id, name=name, client_id=client_id, starts_at=starts_at,
                                  turn_seconds=turn_seconds, created_at=now, created_by=actor.person_id)
        session.add(schedule)
        try:
            session.flush()
        except IntegrityError:  # another engineer took the name meanwhile
            raise Conflict(f"an on-call schedule named {name!r} exists already", "pick another name") from None
        session.add_all([OncallMember(schedule_id=schedule.id, position=i, tenant_id=actor.tenant_id,
                                      person_id=p.id) for i, p in enumerate(people)])
        session.flush()
        data = _describe(session, schedule)
        audit.record(session, actor, "CONFIG_CHANGE", "oncall_schedule", schedule.id,
                     {"change": "oncall schedule add", "name": name, "client": client,
                      "starts_at": clock.isoformat(starts_at), "turn_seconds": turn_seconds,
                      "members": list(members)}, client_id, at=now)
        return data


def list_schedules(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """The schedules the actor can see, by id."""
    with session.begin():
        scope = access.for_caller(session, caller)
        schedules = session.scalars(select(OncallSchedule).where(OncallSchedule.tenant_id == scope.actor.tenant_id,
                                                                 _visible_schedules(scope))
                                    .order_by(OncallSchedule.id)).all()
        return [_describe(session, s) for s in schedules]


def add_override(session: Session, caller: Caller, schedule_name: str, username: str, start: datetime,
                 end: datetime) -> dict[str, Any]:
    """Put `username` on call for the schedule over [start, end). Needs noc:configure over
    the schedule's client (tenant-wide for a tenant-wide schedule)."""
    starts_at, ends_at = _aware(start, "start"), _aware(end, "end")
    if ends_at <= starts_at:
        raise BadInput(f"the override must end after it starts: end {clock.isoformat(ends_at)} is not after "
                       f"start {clock.isoformat(starts_at)}")
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        schedule = _schedule_named(session, actor, schedule_name)
        client_id = schedule.client_id
        if client_id is not None and not scope.knows(client_id, capability=CAPABILITY):  # as its client would be
            raise NotFound(f"no on-call schedule {schedule_name!r}", "see `nocctl oncall schedule list`")
        scope.require(CAPABILITY, client_id, what=f"on-call schedule {schedule_name}" if client_id else None)
        person = _person(session, actor.tenant_id, username)
        override = OncallOverride(tenant_id=actor.tenant_id, schedule_id=schedule.id, person_id=person.id,
                                  starts_at=starts_at, ends_at=ends_at, created_at=now, created_by=actor.person_id)
        session.add(override)
        session.flush()
        data = {"id": override.id, "schedule": schedule.name, "person": username, "starts_at": starts_at,
                "ends_at": ends_at, "created_by": actor.username, "created_at": now}
        audit.record(session, actor, "CONFIG_CHANGE", "oncall_override", override.id,
                     {"change": "oncall override add", "schedule": schedule.name, "person": username,
                      "starts_at": clock.isoformat(starts_at), "ends_at": clock.isoformat(ends_at)},
                     schedule.client_id, at=now)
        return data


def who(session: Session, caller: Caller, client: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Who is on call for `client` (its schedule, else the tenant-wide one) or tenant-wide,
    at `at` (default now), and why (`source`: the turn or override); `until` when they hand
    over and `next` to whom (`from`, `source`): the first later instant someone else is on
    call, so consecutive turns or overrides of one person are one shift. Both None when
    nobody else ever comes. No schedule answers: NotFound (exit 3)."""
    instant = _aware(at, "time") if at is not None else clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        client_id = None
        if client:
            client_id = scope.client(session, client).id
        else:
            scope.require_view()
        schedule = schedule_for(session, actor.tenant_id, client_id)
        if schedule is None:
            where = f"client {client} and no tenant-wide one" if client else "the tenant (tenant-wide)"
            raise NotFound(f"no on-call schedule for {where}", "add one with `nocctl oncall schedule add`")
        members = _members(session, schedule.id)
        overrides = _overrides_from(session, schedule, instant)
        pick = who_is_on_call(schedule, members, overrides, instant)
        person = session.get(Person, pick.person_id) if pick is not None else None
        if pick is None or person is None:  # a schedule keeps at least one member: never, but typed
            raise NotFound(f"nobody is on call in schedule {schedule.name}", "see `nocctl oncall schedule list`")
        if pick.override_id is not None:
            why = f"override #{pick.override_id}"
        elif pick.before_start:
            why = f"schedule {schedule.name} starts at {clock.isoformat(schedule.starts_at)}: its first member"
        else:
            why = f"turn {pick.turn} of schedule {schedule.name}"
        change = next_change(schedule, members, overrides, instant)
        upcoming = None
        if change is not None:
            since, then = change
            taker = session.get(Person, then.person_id)
            upcoming = {"person": taker.username if taker else None, "name": taker.name if taker else None,
                        "from": since, "source": _source(then), "override_id": then.override_id,
                        "turn": then.turn}
        described = _describe(session, schedule)
        return {"at": instant, "client": client, "schedule": schedule.name, "schedule_id": schedule.id,
                "schedule_client": described["client"], "person": person.username, "name": person.name,
                "email": person.email, "phone": person.phone, "why": why, "source": _source(pick),
                "override_id": pick.override_id, "turn": pick.turn,
                "until": change[0] if change else None, "next": upcoming}


def _source(pick: Pick) -> str:
    """Where a pick comes from, without the schedule's name (said once beside it)."""
    if pick.override_id is not None:
        return f"override #{pick.override_id}"
    return "before the first turn" if pick.before_start else f"turn {pick.turn}"
