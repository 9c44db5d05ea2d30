"""People of a tenant and their grants (`nocctl user …`)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, UsageError
from nocctl.models import AccessGrant, BusinessUnit, Person
from nocctl.services import access, audit
from nocctl.services.access import TENANT_WIDE_ONLY, check_capability
from nocctl.services.rbac import Actor, Caller, authenticate

USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,99}$")


@dataclass
class PersonView:
    username: str
    name: str | None
    email: str | None
    phone: str | None
    active: bool
    grants: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def validate_person_fields(username: str, email: str | None) -> None:
    if not USERNAME.match(username or ""):
        raise BadInput(f"invalid username {username!r}", "use letters, digits and . _ @ -")
    if email and "@" not in email:
        raise BadInput(f"invalid email {email!r}")


def find(session: Session, tenant_id: int, username: str) -> Person:
    person = session.scalar(select(Person).where(Person.tenant_id == tenant_id, Person.username == username))
    if person is None:
        raise NotFound(f"no person {username!r}", "see `nocctl user list`")
    return person


def add(session: Session, caller: Caller, username: str, name: str | None = None,
        email: str | None = None, phone: str | None = None) -> PersonView:
    validate_person_fields(username, email)
    with session.begin():
        scope = access.for_caller(session, caller)
        scope.require("noc:configure")
        actor = scope.actor
        if session.scalar(select(Person.id).where(Person.tenant_id == actor.tenant_id, Person.username == username)):
            raise Conflict(f"person {username!r} already exists", "use `nocctl org import` to update people")
        person = Person(tenant_id=actor.tenant_id, username=username, name=name, email=email, phone=phone,
                        active=True, created_at=clock.now())
        session.add(person)
        session.flush()
        audit.record(session, actor, "CONFIG_CHANGE", "person", person.id, {"change": "user add", "username": username})
    return PersonView(username, name, email, phone, True)


def list_people(session: Session, caller: Caller) -> list[PersonView]:
    with session.begin():
        actor = authenticate(session, caller)
        rows = session.scalars(select(Person).where(Person.tenant_id == actor.tenant_id).order_by(Person.username))
        return [PersonView(p.username, p.name, p.email, p.phone, p.active) for p in rows]


def _grants(session: Session, person_id: int) -> list[dict]:
    unit = aliased(BusinessUnit)
    rows = session.execute(
        select(AccessGrant.capability, AccessGrant.scope_kind, unit.code)
        .outerjoin(unit, unit.id == AccessGrant.unit_id)
        .where(AccessGrant.person_id == person_id)
        .order_by(AccessGrant.capability, AccessGrant.scope_kind, unit.code)
    )
    return [{"capability": c, "scope": s.lower(), "unit": code} for c, s, code in rows]


def show(session: Session, caller: Caller, username: str) -> PersonView:
    with session.begin():
        actor = authenticate(session, caller)
        person = find(session, actor.tenant_id, username)
        return PersonView(person.username, person.name, person.email, person.phone, person.active,
                          _grants(session, person.id))


def _scope(session: Session, actor: Actor, capability: str, client: str | None, site: str | None):
    """(scope_kind, unit) for a grant; unknown client/site is exit 3."""
    if client and site:
        raise UsageError("give --client or --site, not both")
    if capability in TENANT_WIDE_ONLY and (client or site):
        raise BadInput(f"{capability} is tenant-wide", "grant noc:view_client --client CODE to scope visibility")
    if not client and not site:
        return "TENANT", None
    kind, code = ("CLIENT", client) if client else ("SITE", site)
    unit = session.scalar(select(BusinessUnit).where(
        BusinessUnit.tenant_id == actor.tenant_id, BusinessUnit.code == code, BusinessUnit.kind == kind))
    if unit is None:
        raise NotFound(f"no {kind.lower()} {code!r}", "see `nocctl org list`")
    return kind, unit


def _grant_filter(person_id: int, capability: str, unit):
    return (AccessGrant.person_id == person_id, AccessGrant.capability == capability,
            AccessGrant.unit_id.is_(None) if unit is None else AccessGrant.unit_id == unit.id)


def grant(session: Session, caller: Caller, username: str, capability: str,
          client: str | None = None, site: str | None = None) -> bool:
    """Give a capability; returns False when it was already held (nothing changes)."""
    check_capability(capability)
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        kind, unit = _scope(session, actor, capability, client, site)
        scope.require("noc:configure", *(_unit_ids(unit)), what=unit.code if unit else None)
        person = find(session, actor.tenant_id, username)
        if session.scalar(select(AccessGrant.id).where(*_grant_filter(person.id, capability, unit))):
            return False
        session.add(AccessGrant(tenant_id=actor.tenant_id, person_id=person.id, capability=capability,
                                scope_kind=kind, unit_id=unit.id if unit else None, created_at=clock.now()))
        audit.record(session, actor, "CONFIG_CHANGE", "person", person.id,
                     {"change": "grant", "username": username, "capability": capability,
                      "scope": kind.lower(), "unit": unit.code if unit else None})
    return True


def revoke(session: Session, caller: Caller, username: str, capability: str,
           client: str | None = None, site: str | None = None) -> None:
    check_capability(capability)
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        kind, unit = _scope(session, actor, capability, client, site)
        scope.require("noc:configure", *(_unit_ids(unit)), what=unit.code if unit else None)
        person = find(session, actor.tenant_id, username)
        row = session.scalar(select(AccessGrant).where(*_grant_filter(person.id, capability, unit)))
        if row is None:
            where = f" on {kind.lower()} {unit.code}" if unit else " tenant-wide"
            raise NotFound(f"{username!r} does not hold {capability}{where}", f"see `nocctl user show {username}`")
        session.delete(row)
        audit.record(session, actor, "CONFIG_CHANGE", "person", person.id,
                     {"change": "revoke", "username": username, "capability": capability,
                      "scope": kind.lower(), "unit": unit.code if unit else None})


def _unit_ids(unit) -> tuple[int | None, int | None]:
    """(client_id, site_id) of a grant's unit, for the permission check."""
    if unit is None:
        return None, None
    return (unit.client_id, unit.id if unit.kind == "SITE" else None)
