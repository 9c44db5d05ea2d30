"""Who is acting (DESIGN §3a): the caller of a command and the person it acts as. What
that person may see and do is `nocctl.services.access`.
"""
from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nocctl.errors import NotFound, PermissionDenied
from nocctl.models import Person, Tenant


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
    def from_process(cls, tenant: str, as_user: str | None = None) -> Caller:
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
