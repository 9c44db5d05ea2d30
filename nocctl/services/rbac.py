"""Who is acting, what they may do, and what they may see (DESIGN §3, People and RBAC).

A grant gives one capability over a scope: the tenant, one client (and its sites) or one
site. A capability holds on an object when a grant of it covers the object's client or
site. Visibility is holding any view capability; every filter is SQL, never Python.
"""
from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from nocctl.errors import BadInput, NotFound, PermissionDenied
from nocctl.models import AccessGrant, BusinessUnit, Person, Tenant
from nocctl.vocabulary import CAPABILITIES, VIEW_CAPABILITIES

TENANT_WIDE_ONLY = ("noc:view_all_clients",)


def os_login() -> str:
    """The login of the process, from its uid (not `$USER`, which anyone can set)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(frozen=True)
class Caller:
    """Plain values naming who runs a command: the tenant, the person (`--as`, else the
    login), and the login and host the audit log records."""

    tenant: str
    username: str | None = None
    os_user: str = ""
    host: str = ""

    @classmethod
    def from_process(cls, tenant: str, as_user: str | None = None) -> "Caller":
        return cls(tenant=tenant, username=as_user, os_user=os_login(), host=socket.gethostname())


@dataclass(frozen=True)
class Actor:
    tenant_id: int
    person_id: int
    username: str
    os_user: str
    host: str


def tenant_id(session: Session, slug: str) -> int:
    found = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if found is None:
        raise NotFound(f"tenant {slug!r} does not exist", f"run `nocctl --tenant {slug} init` to create it")
    return found


def authenticate(session: Session, caller: Caller) -> Actor:
    """The acting person. Unknown or inactive: exit 77 with the remedy."""
    tid = tenant_id(session, caller.tenant)
    username = caller.username or caller.os_user
    person = session.execute(
        select(Person.id, Person.active).where(Person.tenant_id == tid, Person.username == username)
    ).first()
    if person is None or not person.active:
        what = "is not an active NOC operator" if person else "is not a NOC operator"
        raise PermissionDenied(
            f"{username!r} {what} of tenant {caller.tenant!r}",
            f"an admin can run `nocctl user add {username}` and `nocctl user grant {username} CAPABILITY`",
        )
    return Actor(tid, person.id, username, caller.os_user, caller.host)


def _covers(unit_ids: list[ColumnElement | int | None]) -> ColumnElement[bool]:
    """A grant row covers an object whose client/site ids are `unit_ids` (or is tenant-wide)."""
    wanted = [u for u in unit_ids if u is not None]
    return or_(AccessGrant.scope_kind == "TENANT", AccessGrant.unit_id.in_(wanted)) if wanted else (
        AccessGrant.scope_kind == "TENANT"
    )


def grant_exists(actor: Actor, capabilities: tuple[str, ...], unit_ids: list) -> ColumnElement[bool]:
    """SQL: the actor holds one of `capabilities` over the object with these unit ids."""
    return exists().where(
        AccessGrant.tenant_id == actor.tenant_id,
        AccessGrant.person_id == actor.person_id,
        AccessGrant.capability.in_(capabilities),
        _covers(unit_ids),
    )


def visible(actor: Actor, client_id, site_id=None) -> ColumnElement[bool]:
    """SQL filter: objects of this client/site the actor may see (columns or values)."""
    return grant_exists(actor, VIEW_CAPABILITIES, [client_id, site_id])


def unit_visible(actor: Actor) -> ColumnElement[bool]:
    """SQL filter on BusinessUnit rows (a client's `client_id` is its own id)."""
    return visible(actor, BusinessUnit.client_id, BusinessUnit.id)


def grant_remedy(username: str, capability: str) -> str:
    """The remedy of a refusal for want of `capability`."""
    return f"an admin can run `nocctl user grant {username} {capability}`"


def require(session: Session, actor: Actor, capability: str, client_id: int | None = None,
            site_id: int | None = None, what: str = "this") -> None:
    """Refuse (exit 77) unless the actor holds `capability` over the client/site, or
    tenant-wide when neither is given."""
    if not session.scalar(select(grant_exists(actor, (capability,), [client_id, site_id]))):
        scope = "tenant-wide" if client_id is None and site_id is None else "for " + what
        raise PermissionDenied(
            f"{actor.username!r} lacks {capability} {scope}",
            f"an admin can run `nocctl user grant {actor.username} {capability}`",
        )


def check_capability(capability: str) -> str:
    if capability not in CAPABILITIES:
        raise BadInput(f"unknown capability {capability!r}", "one of: " + ", ".join(CAPABILITIES))
    return capability
