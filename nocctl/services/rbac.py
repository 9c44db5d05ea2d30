"""Who is acting (DESIGN §3a): the caller of a command and the person it acts as. What
that person may see and do is `nocctl.services.access`.

The *real* caller is never claimed: on SQLite it is the operating-system login (from the
uid); on PostgreSQL it is the person of the tenant mapped to the database login role
(`session_user`, `nocctl user db-role`) when there is one, else the OS login. A *claimed*
person (`--as`, `NOC_ACTOR`, the config's `actor`) is only a request to act as someone
else: it is honoured when it names the real caller, or when the real caller is an active
person holding `noc:impersonate` (tenant-wide); otherwise exit 77. The audit rows written
while impersonating keep both: actor = the impersonated person, os_user = the login,
details `impersonated_by` = the real person.

Two code paths act as someone else without `noc:impersonate` (`delegating`): the reject
retrier, which re-submits a dead letter with its original sender's rights, and the HTTP
receiver, which ingests as the integration whose key a request carried
(`integrations.acting_as`). A delegation is honoured only while the `with delegating(...)`
block that made it is running.
"""
from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, case, cast, literal, literal_column, or_, select
from sqlalchemy.orm import Session

from nocctl.errors import NotFound, PermissionDenied
from nocctl.models import Person, Tenant

IMPERSONATE = "noc:impersonate"


def os_login() -> str:
    """The login of the process, from its uid (not `$USER`, which anyone can set)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(frozen=True)
class Actor:
    """The person a command acts as (person_id None: the system, for passes), with the
    login and host the audit log records; `impersonated_by` names the real caller when
    they act as someone else (kept in the audit rows' details)."""

    tenant_id: int
    person_id: int
    username: str
    os_user: str
    host: str
    impersonated_by: str | None = None


@dataclass(frozen=True)
class Delegation:
    """The right of one code path to act as another person without noc:impersonate: made
    only by `delegating`, honoured only while its block runs. `by` is the caller who was
    authenticated (and whose own right was checked) before the block."""

    by: Actor
    purpose: str


_delegation: ContextVar[Delegation | None] = ContextVar("nocctl_delegation", default=None)


@contextmanager
def delegating(by: Actor, purpose: str) -> Iterator[Delegation]:
    """Within the block, a `Caller` carrying the yielded delegation may claim any active
    person of `by`'s tenant (the reject retrier re-submits as each record's sender)."""
    delegation = Delegation(by, purpose)
    token = _delegation.set(delegation)
    try:
        yield delegation
    finally:
        _delegation.reset(token)


@dataclass(frozen=True)
class Caller:
    """Plain values naming who runs a command: the tenant, the person *claimed*
    (`username`: `--as`, `NOC_ACTOR` or the config's actor; None: oneself), where that
    claim came from, and the real login and host the audit log records. The real caller is
    worked out by `authenticate`, never taken from here."""

    tenant: str
    username: str | None = None
    os_user: str = ""
    host: str = ""
    claimed_via: str | None = None  # "--as", "NOC_ACTOR", "the config's actor": for messages
    delegation: Delegation | None = None

    @classmethod
    def from_process(cls, tenant: str, as_user: str | None = None, claimed_via: str | None = None) -> Caller:
        return cls(tenant=tenant, username=as_user or None, os_user=os_login(), host=socket.gethostname(),
                   claimed_via=claimed_via if as_user else None)

    def delegated(self, username: str | None, delegation: Delegation) -> Caller:
        """This caller, claiming `username` under `delegation` (see `delegating`)."""
        return Caller(self.tenant, username, self.os_user, self.host, "a delegation", delegation)


def tenant_id(session: Session, slug: str) -> int:
    found = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if found is None:
        raise NotFound(f"tenant {slug!r} does not exist", f"run `nocctl --tenant {slug} init` to create it")
    return found


def _session_user(session: Session) -> ColumnElement[str] | None:
    """SQL of the database login role on PostgreSQL (None on SQLite, which has none)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return cast(literal_column("session_user"), String)


@dataclass(frozen=True)
class _Person:
    id: int | None  # None: no such person
    username: str
    active: bool = False


def _people(session: Session, tid: int, os_user: str, claimed: str | None) -> tuple[_Person, _Person | None]:
    """(the real caller, the claimed person) in one query: the person mapped to
    `session_user` (PostgreSQL) else the OS login's, and the person named by the claim."""
    role = _session_user(session)
    match: ColumnElement[bool] = Person.username.in_(sorted({os_user} | ({claimed} if claimed else set())))
    mapped: ColumnElement[int] = literal(0)
    if role is not None:
        match = or_(match, Person.db_role == role)
        mapped = case((Person.db_role == role, 1), else_=0)
    rows = session.execute(select(Person.id, Person.username, Person.active, mapped.label("mapped"))
                           .where(Person.tenant_id == tid, match)).all()
    by_name = {r.username: _Person(r.id, r.username, bool(r.active)) for r in rows}
    real = next((by_name[r.username] for r in rows if r.mapped), None) or by_name.get(os_user, _Person(None, os_user))
    return real, None if claimed is None else by_name.get(claimed, _Person(None, claimed))


def _person(session: Session, tid: int, username: str) -> _Person:
    row = session.execute(select(Person.id, Person.active).where(Person.tenant_id == tid,
                                                                 Person.username == username)).first()
    return _Person(row.id, username, bool(row.active)) if row is not None else _Person(None, username)


def real_caller(session: Session, tenant: int, os_user: str) -> tuple[int | None, str]:
    """(person id or None, username) of the real caller: the person mapped to the session's
    database role on PostgreSQL when there is one, else the OS login's."""
    real, _ = _people(session, tenant, os_user, None)
    return real.id, real.username


def _not_operator(username: str, person: _Person, tenant: str) -> PermissionDenied:
    what = "is not an active NOC operator" if person.id is not None else "is not a NOC operator"
    return PermissionDenied(
        f"{username!r} {what} of tenant {tenant!r}",
        f"an admin can run `nocctl user add {username}` and `nocctl user grant {username} CAPABILITY`",
    )


def _may_impersonate(session: Session, tid: int, real: _Person) -> bool:
    from nocctl.services import access  # access builds on this module

    actor = Actor(tid, real.id, real.username, "", "")  # type: ignore[arg-type]
    return access.load(session, actor).holds(IMPERSONATE)


def _admitted(delegation: Delegation, tid: int) -> Delegation:
    if _delegation.get() is not delegation or delegation.by.tenant_id != tid:
        raise PermissionDenied("a delegated identity used outside the code path that made it")
    return delegation


def authenticate(session: Session, caller: Caller) -> Actor:
    """The acting person: the real caller, or the person they claim when they may act as
    them. Unknown or inactive, or a claim without noc:impersonate: exit 77 with the remedy."""
    tid = tenant_id(session, caller.tenant)
    claimed = caller.username
    if caller.delegation is not None:
        by = _admitted(caller.delegation, tid).by
        name = claimed or by.username
        sender = _person(session, tid, name)
        if sender.id is None or not sender.active:
            raise _not_operator(name, sender, caller.tenant)
        behind = by.impersonated_by or (by.username if name != by.username else None)
        return Actor(tid, sender.id, name, caller.os_user, caller.host, behind)
    real, person = _people(session, tid, caller.os_user, claimed)
    if person is None or person.username == real.username:  # acting as oneself
        if real.id is None or not real.active:
            raise _not_operator(real.username, real, caller.tenant)
        return Actor(tid, real.id, real.username, caller.os_user, caller.host)
    # Acting as someone else: the real caller's right first, so a refusal says nothing of
    # whether the claimed person exists.
    if real.id is None or not real.active or not _may_impersonate(session, tid, real):
        via = f" ({caller.claimed_via})" if caller.claimed_via else ""
        message = f"{real.username!r} may not act as {person.username!r}{via}: that needs {IMPERSONATE} (tenant-wide)"
        if real.id is None:
            raise PermissionDenied(f"{message}, and {real.username!r} is not a NOC operator of tenant "
                                   f"{caller.tenant!r}", f"an admin can run `nocctl user add {real.username}` and "
                                   f"`nocctl user grant {real.username} {IMPERSONATE}`")
        if not real.active:
            message += f", and {real.username!r} is not an active NOC operator of tenant {caller.tenant!r}"
        raise PermissionDenied(message, f"an admin can run `nocctl user grant {real.username} {IMPERSONATE}`")
    if person.id is None or not person.active:
        raise _not_operator(person.username, person, caller.tenant)
    return Actor(tid, person.id, person.username, caller.os_user, caller.host, real.username)
