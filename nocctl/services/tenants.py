"""Tenant set-up: `nocctl init` creates the tenant and makes the invoking login its admin."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.models import AccessGrant, Person, Tenant
from nocctl.services import audit
from nocctl.services.rbac import Actor, Caller
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
    Idempotent: a second run creates and grants nothing."""
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
        if person is None:
            person = Person(tenant_id=tenant.id, username=admin, name=admin, active=True, created_at=now)
            session.add(person)
            session.flush()
        held = set(session.scalars(
            select(AccessGrant.capability).where(
                AccessGrant.person_id == person.id, AccessGrant.scope_kind == "TENANT"
            )
        ))
        missing = [c for c in CAPABILITIES if c not in held]
        for capability in missing:
            session.add(AccessGrant(tenant_id=tenant.id, person_id=person.id, capability=capability,
                                    scope_kind="TENANT", unit_id=None, created_at=now))
        if missing or tenant_created:
            actor = Actor(tenant.id, person.id, admin, caller.os_user, caller.host)
            audit.record(session, actor, "CONFIG_CHANGE", "tenant", tenant.id,
                         {"change": "init", "admin": admin, "granted": missing})
    return InitResult(caller.tenant, tenant_created, admin, admin_created, missing)
