"""Tenant set-up: `nocctl init` creates the tenant and makes the invoking login its admin."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.models import AccessGrant, Person, Tenant
from nocctl.services import access, audit
from nocctl.services.rbac import Actor, Caller, authenticate
from nocctl.vocabulary import CAPABILITIES


@dataclass
class InitResult:
    tenant: str
    tenant_created: bool
    admin: str
    admin_created: bool
    capabilities_granted: list[str]


def initialise(session: Session, caller: Caller, admin: str) -> InitResult:
    """Create the tenant (if missing) and make `admin` hold every capability tenant-wide.
    Idempotent: a second run creates and grants nothing. Whoever can write the database
    may create a tenant; once it has an admin (an active person with noc:configure
    tenant-wide), making or completing one is a grant like any other and needs that
    capability (so `init --admin me` is no back door). A tenant left without any admin can
    be given one again, as a new tenant can."""
    now = clock.now()
    with session.begin():
        tenant = session.scalar(select(Tenant).where(Tenant.slug == caller.tenant))
        tenant_created = tenant is None
        if tenant is None:
            tenant = Tenant(slug=caller.tenant, name=caller.tenant, created_at=now)
            session.add(tenant)
            session.flush()
        person = session.scalar(select(Person).where(Person.tenant_id == tenant.id, Person.username == admin))
        admin_created = person is None
        held = set() if person is None else set(session.scalars(
            select(AccessGrant.capability).where(
                AccessGrant.person_id == person.id, AccessGrant.scope_kind == "TENANT"
            )
        ))
        missing = [c for c in CAPABILITIES if c not in held]
        actor = None
        if not tenant_created and (missing or admin_created) and _has_admin(session, tenant.id):
            actor = authenticate(session, caller)
            access.load(session, actor).require("noc:configure")
        if person is None:
            person = Person(tenant_id=tenant.id, username=admin, name=admin, active=True, created_at=now)
            session.add(person)
            session.flush()
        for capability in missing:
            session.add(AccessGrant(tenant_id=tenant.id, person_id=person.id, capability=capability,
                                    scope_kind="TENANT", unit_id=None, created_at=now))
        if missing or tenant_created:
            actor = actor or Actor(tenant.id, person.id, admin, caller.os_user, caller.host)
            audit.record(session, actor, "CONFIG_CHANGE", "tenant", tenant.id,
                         {"change": "init", "admin": admin, "granted": missing})
    return InitResult(caller.tenant, tenant_created, admin, admin_created, missing)


def _has_admin(session: Session, tid: int) -> bool:
    return session.scalar(select(AccessGrant.id).join(Person, Person.id == AccessGrant.person_id).where(
        AccessGrant.tenant_id == tid, AccessGrant.capability == "noc:configure", AccessGrant.unit_id.is_(None),
        Person.active.is_(True)).limit(1)) is not None
