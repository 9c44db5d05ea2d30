"""People of a tenant and their grants (`nocctl user …`)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, true
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, PermissionDenied, UsageError
from nocctl.models import AccessGrant, BusinessUnit, Person
from nocctl.services import access, audit
from nocctl.services.access import TENANT_WIDE_ONLY, Scope, check_capability
from nocctl.services.rbac import Caller
from nocctl.vocabulary import CAPABILITIES

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


# ---------------------------------------------------------------- who sees whom

def _over_units(covered: access.Coverage, through_sites: bool = False) -> ColumnElement[bool]:
    """SQL over Person: they hold a grant over a client or site that `covered` covers (a
    site: itself or through its client; a client: itself or, `through_sites`, through one
    of its sites, as one sees a client). Tenant-wide grants name no unit: they do not count."""
    grant, unit = aliased(AccessGrant), aliased(BusinessUnit)
    condition = covered.where(unit.client_id, unit.id)
    if through_sites:
        condition = or_(condition, and_(unit.kind == "CLIENT", covered.where_client(unit.id)))
    return (select(grant.id).join(unit, unit.id == grant.unit_id)
            .where(grant.person_id == Person.id, condition).exists())


def _people_filters(scope: Scope) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """SQL over Person: (visible, contact details shown). Tenant-wide viewers see
    everyone; otherwise a person is visible when they are the caller or hold a grant over
    a client or site the caller sees. Email and phone need noc:configure over one of the
    person's units (tenant-wide: everyone's); one's own are always shown."""
    me = Person.id == scope.actor.person_id
    configure = scope.coverage("noc:configure")
    visible = true() if scope.view.tenant_wide else or_(me, _over_units(scope.view, through_sites=True))
    contact = true() if configure.tenant_wide else or_(me, _over_units(configure))
    return visible, contact


def _grant_visible(scope: Scope, person_id: int, unit: Any) -> ColumnElement[bool]:
    """SQL over a person's grants joined to their unit: those the caller may be shown
    (tenant-wide ones, those over units the caller sees, and all of the caller's own)."""
    if scope.view.tenant_wide or person_id == scope.actor.person_id:
        return true()
    return or_(AccessGrant.unit_id.is_(None), scope.view.where(unit.client_id, unit.id),
               and_(unit.kind == "CLIENT", scope.view.where_client(unit.id)))


def _visible_people(scope: Scope):
    """The people the caller may see; email and phone NULL where they may not see them."""
    visible, contact = _people_filters(scope)
    return (select(Person.id, Person.username, Person.name, case((contact, Person.email)).label("email"),
                   case((contact, Person.phone)).label("phone"), Person.active)
            .where(Person.tenant_id == scope.actor.tenant_id, visible))


def _view(row, grants: list[dict] | None = None) -> PersonView:
    return PersonView(row.username, row.name, row.email, row.phone, bool(row.active), grants or [])


def list_people(session: Session, caller: Caller) -> list[PersonView]:
    """The people the caller may see (contact details only where they may configure)."""
    with session.begin():
        scope = access.for_caller(session, caller)
        return [_view(r) for r in session.execute(_visible_people(scope).order_by(Person.username))]


def _grants(session: Session, scope: Scope, person_id: int) -> list[dict]:
    unit = aliased(BusinessUnit)
    rows = session.execute(
        select(AccessGrant.capability, AccessGrant.scope_kind, unit.code)
        .outerjoin(unit, unit.id == AccessGrant.unit_id)
        .where(AccessGrant.person_id == person_id, _grant_visible(scope, person_id, unit))
        .order_by(AccessGrant.capability, AccessGrant.scope_kind, unit.code)
    )
    return [{"capability": c, "scope": s.lower(), "unit": code} for c, s, code in rows]


def show(session: Session, caller: Caller, username: str) -> PersonView:
    """A person the caller may see, and the grants of theirs over what the caller sees;
    one they may not see is "not found" (3), like one who does not exist."""
    with session.begin():
        scope = access.for_caller(session, caller)
        row = session.execute(_visible_people(scope).where(Person.username == username)).first()
        if row is None:
            raise NotFound(f"no person {username!r}", "see `nocctl user list`")
        return _view(row, _grants(session, scope, row.id))


# ---------------------------------------------------------------- may I?

@dataclass
class Answer:
    """`user can-i`: whether `person` holds `capability` over the unit asked about, and
    by which grant."""

    person: str
    capability: str
    scope: str  # what was asked: tenant, client or site
    unit: str | None
    allowed: bool
    granted_scope: str | None = None  # the allowing grant: tenant, client or site
    granted_unit: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def refusal(self) -> PermissionDenied:
        where = f"for {self.scope} {self.unit}" if self.unit else "tenant-wide"
        hint = f" --{self.scope} {self.unit}" if self.unit and self.capability not in TENANT_WIDE_ONLY else ""
        return PermissionDenied(f"{self.person!r} lacks {self.capability} {where}",
                                access.grant_remedy(self.person, self.capability, hint))


def can_i(session: Session, caller: Caller, capability: str, client: str | None = None,
          site: str | None = None) -> Answer:
    """Whether the acting person holds `capability` over the client or site (tenant-wide
    when neither): unknown capability 2, a client/site they may not know of 3."""
    if capability not in CAPABILITIES:
        raise UsageError(f"unknown capability {capability!r}", "one of: " + ", ".join(CAPABILITIES))
    if client and site:
        raise UsageError("give --client or --site, not both")
    with session.begin():
        scope = access.for_caller(session, caller)
        kind, code = ("CLIENT", client) if client else ("SITE", site) if site else ("TENANT", None)
        client_id = site_id = None
        if code is not None:
            unit = scope.known_unit(session, kind, code, capability)
            client_id, site_id = unit.client_id, unit.site_id
        answer = Answer(scope.username, capability, kind.lower(), code, False)
        grant = scope.allowing(capability, client_id, site_id)
        if grant is None:
            return answer
        answer.allowed = True
        if grant.unit_id is None:
            answer.granted_scope = "tenant"
        else:
            answer.granted_scope = "client" if grant.unit_id == grant.client_id else "site"
            answer.granted_unit = session.scalar(select(BusinessUnit.code).where(BusinessUnit.id == grant.unit_id))
        return answer


def _scope(session: Session, scope: Scope, capability: str, client: str | None, site: str | None):
    """(scope_kind, unit) for a grant; unknown client/site is exit 3."""
    if client and site:
        raise UsageError("give --client or --site, not both")
    if capability in TENANT_WIDE_ONLY and (client or site):
        raise BadInput(f"{capability} is tenant-wide", "grant noc:view_client --client CODE to scope visibility")
    if not client and not site:
        return "TENANT", None
    kind, code = ("CLIENT", client) if client else ("SITE", site)
    # A unit the caller may not know of is "not found" (3), like a missing one; one they
    # know of but may not configure is refused (77) by the caller.
    return kind, scope.known_unit(session, kind, code or "", "noc:configure")


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
        kind, unit = _scope(session, scope, capability, client, site)
        scope.require("noc:configure", *(_unit_ids(unit)), what=unit.code if unit else None)
        person = find(session, actor.tenant_id, username)
        _not_an_integration(username)
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
        kind, unit = _scope(session, scope, capability, client, site)
        scope.require("noc:configure", *(_unit_ids(unit)), what=unit.code if unit else None)
        person = find(session, actor.tenant_id, username)
        _not_an_integration(username)
        row = session.scalar(select(AccessGrant).where(*_grant_filter(person.id, capability, unit)))
        if row is None:
            where = f" on {kind.lower()} {unit.code}" if unit else " tenant-wide"
            raise NotFound(f"{username!r} does not hold {capability}{where}", f"see `nocctl user show {username}`")
        session.delete(row)
        audit.record(session, actor, "CONFIG_CHANGE", "person", person.id,
                     {"change": "revoke", "username": username, "capability": capability,
                      "scope": kind.lower(), "unit": unit.code if unit else None})


def _not_an_integration(username: str) -> None:
    """An integration's identity holds noc:ingest over its scope and nothing else: its
    grants change only through `nocctl integration` (exit 4 otherwise)."""
    from nocctl.services import integrations

    if integrations.is_integration(username):
        raise integrations.managed_elsewhere(username)


def _unit_ids(unit) -> tuple[int | None, int | None]:
    """(client_id, site_id) of a grant's unit, for the permission check."""
    if unit is None:
        return None, None
    return (unit.client_id, unit.id if unit.kind == "SITE" else None)
