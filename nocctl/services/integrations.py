"""Integrations (DESIGN §3a, §4a): the keys that HTTP senders present to `nocctl serve`,
and the service identity each one acts as.

For the server (`nocctl serve`):

- `resolve_key(session, key, now=None) -> Resolved | None`: the live integration a key
  belongs to; None for a key that is unknown, malformed, revoked, or a replaced key whose
  grace period is over (the server answers 401 to all alike).
- `Resolved`: what the server needs of it (ids, names, tenant, format, its scope as ingest
  defaults); `Resolved.defaults()` gives `Options(client=…, site=…)`.
- `actor(resolved, os_user, host) -> rbac.Actor`: the integration's identity, with the
  server's login and host (what the audit rows record).
- `acting_as(resolved, os_user, host)`: a context manager yielding the `rbac.Caller` to give
  `Ingest` (or any service that takes a Caller) so it runs as the integration's identity;
  see its docstring.
- `PATHS`, `is_integration(username)`, `username_of(name)`.

For `nocctl integration …`: `add`, `list_integrations`, `show`, `revoke`, `rotate`. Each
needs noc:configure over the integration's scope (tenant-wide for a tenant-wide one), and
is audited (CONFIG_CHANGE; the details name the key's prefix, never the key).

The identity. Each integration gets a person of its own, `integration:NAME` (no OS login
can be named so: `:` separates the fields of /etc/passwd, and `user add` refuses it), that
holds exactly one grant, noc:ingest over the integration's scope: ingest's scope rule then
keeps a client-A key from creating, acknowledging or resolving client B's alerts. The person
is an ordinary one otherwise: `--as integration:NAME` needs noc:impersonate like any `--as`;
`user grant`/`user revoke` and `user db-role` refuse to change it (its rights are the
integration's, changed only through `nocctl integration`); `revoke` deactivates it.

The key: `noc_` + 8 characters of prefix (lower-case letters and digits, unique in the
database, shown by `integration list`) + `_` + 43 characters (`secrets.token_urlsafe(32)`:
256 random bits). Only the SHA-256 of the whole key is stored. The prefix stays when the
key is rotated; `rotate --grace` keeps the replaced key valid for a while (one previous key
at most), else it stops working at once.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, UsageError
from nocctl.models import AccessGrant, BusinessUnit, Integration, Person, Tenant
from nocctl.services import access, audit, rbac
from nocctl.services.access import INGEST, Scope
from nocctl.services.rbac import Actor, Caller
from nocctl.vocabulary import INTEGRATION_FORMATS

CONFIGURE = "noc:configure"
USERNAME_PREFIX = "integration:"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # like a client or site code
KEY_START = "noc_"
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 8
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters
_KEY = re.compile(r"noc_([a-z0-9]{8})_[A-Za-z0-9_-]{43}")
MAX_GRACE = 30 * 86400  # seconds a replaced key may stay valid after `rotate --grace`

# Where each format's sender posts, and how it gives the key.
PATHS = {"pagerduty": "/v2/enqueue", "alertmanager": "/api/v1/alertmanager", "native": "/api/v1/alerts"}
HOW = {
    "pagerduty": 'POST /v2/enqueue, the key as the event\'s "routing_key"',
    "alertmanager": "POST /api/v1/alertmanager, the key as `Authorization: Bearer KEY` "
                    "(http_config.authorization) or as the basic-auth password",
    "native": "POST /api/v1/alerts, the key as `Authorization: Bearer KEY`",
}


def username_of(name: str) -> str:
    """The username of an integration's service identity."""
    return USERNAME_PREFIX + name


def is_integration(username: str | None) -> bool:
    """Whether a username is an integration's service identity (not a person's login)."""
    return bool(username) and str(username).startswith(USERNAME_PREFIX)


def managed_elsewhere(username: str) -> Conflict:
    """The refusal (exit 4) of `user grant/revoke/db-role` for an integration's identity."""
    name = username[len(USERNAME_PREFIX):]
    return Conflict(f"{username!r} is the identity of integration {name!r}: it holds noc:ingest over the"
                            " integration's scope and nothing else",
                            f"see `nocctl integration show {name}`; for another scope add another integration")


# ---------------------------------------------------------------- keys

def hash_key(key: str) -> str:
    """SHA-256 (hex) of the whole key: what is stored. (A fast hash suits a key of 256
    random bits; see `Integration.key_hash`.)"""
    return hashlib.sha256(key.encode()).hexdigest()


def _new_prefix(session: Session) -> str:
    """A prefix no integration has (36^8 of them: a collision is rare, but checked; the
    unique constraint still guards against a concurrent add)."""
    while True:
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        if session.scalar(select(Integration.id).where(Integration.key_prefix == prefix)) is None:
            return prefix


def _new_key(prefix: str) -> str:
    return f"{KEY_START}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def key_prefix(key: object) -> str | None:
    """The prefix of a well-formed key (None for anything else): safe to log."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    return match[1] if match else None


# ---------------------------------------------------------------- for the server

@dataclass(frozen=True)
class Resolved:
    """A live integration, found by its key (`resolve_key`).

    `client`/`site` are the codes of its scope (both None: tenant-wide; a site integration
    names its site and the site's client). `previous_key`: the key presented is the one a
    `rotate --grace` replaced (still valid until the grace period ends)."""

    integration_id: int
    name: str
    tenant_id: int
    tenant: str  # the tenant's slug
    format: str  # pagerduty | alertmanager | native
    person_id: int
    username: str  # integration:NAME
    client: str | None = None
    site: str | None = None
    previous_key: bool = False

    def defaults(self) -> dict[str, str | None]:
        """`client`/`site` for `ingest.options.Options`: the scope's unit as the default of
        records that name none (a site integration: its site)."""
        return {"client": None, "site": self.site} if self.site else {"client": self.client, "site": None}


@cache
def _by_prefix() -> Select:
    """`resolve_key`'s statement, built once (building it, aliases and all, cost more than
    running it): the integration of the `prefix` parameter, with its tenant, identity and
    scope."""
    unit, client = aliased(BusinessUnit), aliased(BusinessUnit)
    return (select(Integration.id, Integration.name, Integration.tenant_id, Tenant.slug, Integration.format,
                   Integration.person_id, Person.username, Person.active, Integration.key_hash,
                   Integration.previous_key_hash, Integration.previous_key_expires_at, Integration.revoked_at,
                   unit.kind, unit.code, client.code.label("client_code"))
            .join(Tenant, Tenant.id == Integration.tenant_id)
            .join(Person, Person.id == Integration.person_id)
            .outerjoin(unit, unit.id == Integration.unit_id)
            .outerjoin(client, client.id == unit.client_id)
            .where(Integration.key_prefix == bindparam("prefix")))


def resolve_key(session: Session, key: str, now: datetime | None = None) -> Resolved | None:
    """The live integration `key` belongs to, or None: a malformed key, no integration with
    its prefix, a hash that differs (compared in constant time), a revoked integration, an
    inactive identity, or the replaced key of a rotation whose grace period is over.

    One indexed lookup by prefix (unique across the database: the key names its tenant).
    Reads in `session`'s transaction (one begins if none is open; the caller ends it)."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    digest = hash_key(key)
    row = session.execute(_by_prefix(), {"prefix": prefix}).first()
    if row is None:
        return None
    current = hmac.compare_digest(digest, row.key_hash)
    previous = False
    if not current and row.previous_key_hash is not None and row.previous_key_expires_at is not None:
        previous = (hmac.compare_digest(digest, row.previous_key_hash)
                    and (now or clock.now()) < row.previous_key_expires_at)
    if not (current or previous) or row.revoked_at is not None or not row.active:
        return None
    site = row.code if row.kind == "SITE" else None
    return Resolved(row.id, row.name, row.tenant_id, row.slug, row.format, row.person_id, row.username,
                    row.client_code, site, previous)


def actor(resolved: Resolved, os_user: str, host: str) -> Actor:
    """The integration's identity acting, from the server's login and host: audit rows of
    what it changes name the integration's person as actor and this login as os_user."""
    return Actor(resolved.tenant_id, resolved.person_id, resolved.username, os_user, host)


@contextmanager
def acting_as(resolved: Resolved, os_user: str, host: str) -> Iterator[Caller]:
    """A Caller that authenticates as the integration's identity, for `Ingest`::

        with integrations.acting_as(resolved, login, host) as caller:
            Ingest(session_factory, caller, options).run(documents, session=session)

    The key was the proof: this is a delegation (`rbac.delegating`) of the code path inside
    the block only, needing no noc:impersonate. `authenticate` still reads the identity in
    the ingest's own transaction, so an integration revoked meanwhile (its person made
    inactive) is refused there (PermissionDenied, exit 77; the server's 401). The ingest's
    dead letters name the integration's person as sender."""
    by = actor(resolved, os_user, host)
    with rbac.delegating(by, f"integration {resolved.name}") as delegation:
        yield Caller(resolved.tenant, resolved.username, os_user, host, "an integration key", delegation)


# ---------------------------------------------------------------- the commands

def _scope_text(kind: str | None, code: str | None) -> str:
    return "tenant" if kind is None else f"{kind.lower()} {code}"


def _view(row: Any) -> dict[str, Any]:
    """What is shown of an integration (never the key or its hash)."""
    integration: Integration = row.Integration
    kind = row.kind
    return {
        "name": integration.name,
        "format": integration.format,
        "scope": _scope_text(kind, row.code),
        "client": row.client_code,
        "site": row.code if kind == "SITE" else None,
        "key_prefix": integration.key_prefix,
        "status": "revoked" if integration.revoked_at is not None else "active",
        "created_at": integration.created_at,
        "rotated_at": integration.rotated_at,
        "revoked_at": integration.revoked_at,
        "previous_key_expires_at": integration.previous_key_expires_at,
        "username": row.username,
        "path": PATHS[integration.format],
    }


def _query():
    unit, client = aliased(BusinessUnit), aliased(BusinessUnit)
    query = (select(Integration, unit.kind, unit.code, unit.id.label("unit_id"), unit.client_id,
                    client.code.label("client_code"), Person.username)
             .join(Person, Person.id == Integration.person_id)
             .outerjoin(unit, unit.id == Integration.unit_id)
             .outerjoin(client, client.id == unit.client_id))
    return query, unit


def _ids(row: Any) -> tuple[int | None, int | None]:
    """(client_id, site_id) of an integration's scope (both None: tenant-wide)."""
    if row.kind is None:
        return None, None
    return row.client_id, row.unit_id if row.kind == "SITE" else None


def _find(session: Session, scope: Scope, name: str, lock: bool = False) -> Any:
    """The integration `name`: not found (3) when there is none or the caller may not know
    of its scope; refused (77) without noc:configure over it."""
    query, _ = _query()
    query = query.where(Integration.tenant_id == scope.actor.tenant_id, Integration.name == name)
    if lock:
        query = query.with_for_update(of=Integration)
    row = session.execute(query).first()
    missing = NotFound(f"no integration {name!r}", "see `nocctl integration list`")
    if row is None:
        raise missing
    client_id, site_id = _ids(row)
    if client_id is None:
        known = bool(scope.view) or bool(scope.coverage(CONFIGURE))
    else:
        known = scope.knows(client_id, site_id, CONFIGURE)
    if not known:
        raise missing
    scope.require(CONFIGURE, client_id, site_id, what=f"integration {name}")
    return row


def _check_new_name(session: Session, scope: Scope, name: str) -> None:
    if not NAME.match(name or ""):
        raise BadInput(f"invalid integration name {name!r}", "use letters, digits and _ . - (up to 64)")
    query, _ = _query()
    row = session.execute(query.where(Integration.tenant_id == scope.actor.tenant_id,
                                      Integration.name == name)).first()
    taken = row is not None or session.scalar(select(Person.id).where(
        Person.tenant_id == scope.actor.tenant_id, Person.username == username_of(name))) is not None
    if not taken:
        return
    if row is not None:
        client_id, site_id = _ids(row)
        if client_id is None or scope.knows(client_id, site_id, CONFIGURE):
            state = " (revoked: names are not reused)" if row.Integration.revoked_at is not None else ""
            raise Conflict(f"integration {name!r} already exists{state}", "pick another name")
    raise Conflict(f"the integration name {name!r} is already in use in this tenant", "pick another name")


@dataclass
class Issued:
    """An integration and its key, shown once (`add`, `rotate`)."""

    integration: dict[str, Any]
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.integration, "key": self.key}


def _audit_details(change: str, view: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"change": change, "name": view["name"], "format": view["format"], "scope": view["scope"],
            "key_prefix": view["key_prefix"], **more}


def add(session: Session, caller: Caller, name: str, fmt: str, client: str | None = None,
        site: str | None = None) -> Issued:
    """A new integration of format `fmt` for the tenant (neither client nor site), a client or
    a site, with its identity and key. The key is returned here and never again."""
    if fmt not in INTEGRATION_FORMATS:
        raise UsageError(f"unknown integration format {fmt!r}", "one of: " + ", ".join(INTEGRATION_FORMATS))
    if client and site:
        raise UsageError("give --client or --site, not both")
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        me = scope.actor
        unit = None
        if client or site:
            unit = scope.unit(session, "CLIENT" if client else "SITE", client or site or "", CONFIGURE)
        else:
            scope.require(CONFIGURE)
        _check_new_name(session, scope, name)
        username = username_of(name)
        person = Person(tenant_id=me.tenant_id, username=username, name=f"integration {name} ({fmt})",
                        active=True, created_at=now)
        session.add(person)
        session.flush()
        session.add(AccessGrant(tenant_id=me.tenant_id, person_id=person.id, capability=INGEST,
                                scope_kind=unit.kind if unit else "TENANT", unit_id=unit.id if unit else None,
                                created_at=now))
        prefix = _new_prefix(session)
        key = _new_key(prefix)
        integration = Integration(tenant_id=me.tenant_id, name=name, format=fmt, person_id=person.id,
                                  unit_id=unit.id if unit else None, key_prefix=prefix, key_hash=hash_key(key),
                                  created_at=now)
        session.add(integration)
        session.flush()
        view = _view(_find(session, scope, name))
        audit.record(session, me, "CONFIG_CHANGE", "integration", integration.id,
                     _audit_details("integration add", view, username=username),
                     unit.client_id if unit else None, unit.site_id if unit else None)
    return Issued(view, key)


def list_integrations(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """The integrations over whose scope the caller holds noc:configure (77 when nowhere),
    revoked ones too, by name."""
    with session.begin():
        scope = access.for_caller(session, caller)
        configure = scope.require_somewhere(CONFIGURE)
        query, unit = _query()
        rows = session.execute(query.where(Integration.tenant_id == scope.actor.tenant_id,
                                           configure.where(unit.client_id, unit.id))
                               .order_by(Integration.name)).all()
        return [_view(row) for row in rows]


def show(session: Session, caller: Caller, name: str) -> dict[str, Any]:
    with session.begin():
        return _view(_find(session, access.for_caller(session, caller), name))


def revoke(session: Session, caller: Caller, name: str) -> tuple[dict[str, Any], bool]:
    """Revoke the integration: its key (and any previous one) stops working at once and its
    identity is made inactive. Returns (the integration, whether it changed): revoking a
    revoked integration changes nothing."""
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        row = _find(session, scope, name, lock=True)
        integration: Integration = row.Integration
        if integration.revoked_at is not None:
            return _view(row), False
        integration.revoked_at = now
        integration.previous_key_hash = None
        integration.previous_key_expires_at = None
        person = session.get(Person, integration.person_id)
        assert person is not None  # integration.person_id is a foreign key
        person.active = False
        session.flush()
        view = _view(row)
        client_id, site_id = _ids(row)
        audit.record(session, scope.actor, "CONFIG_CHANGE", "integration", integration.id,
                     _audit_details("integration revoke", view), client_id, site_id)
    return view, True


def rotate(session: Session, caller: Caller, name: str, grace: int = 0) -> Issued:
    """A new key for the integration (same prefix), returned here and never again. The
    replaced key stops working at once, or after `grace` seconds (at most `MAX_GRACE`; a
    key replaced by an earlier rotation stops at once either way). A revoked integration
    is not rotated (exit 4): add a new one."""
    if grace < 0 or grace > MAX_GRACE:
        raise BadInput(f"grace {clock.format_duration(grace)} is out of range",
                       f"give 0 to {clock.format_duration(MAX_GRACE)}")
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        row = _find(session, scope, name, lock=True)
        integration: Integration = row.Integration
        if integration.revoked_at is not None:
            raise Conflict(f"integration {name!r} is revoked", "add a new integration instead")
        key = _new_key(integration.key_prefix)
        integration.previous_key_hash = integration.key_hash if grace else None
        integration.previous_key_expires_at = now + timedelta(seconds=grace) if grace else None
        integration.key_hash = hash_key(key)
        integration.rotated_at = now
        session.flush()
        view = _view(row)
        client_id, site_id = _ids(row)
        audit.record(session, scope.actor, "CONFIG_CHANGE", "integration", integration.id,
                     _audit_details("integration rotate", view, grace_seconds=grace), client_id, site_id)
    return Issued(view, key)

