"""Access scope: what the acting person may see and do (DESIGN §3 People and RBAC, §3a).
Every command and pass asks here; nothing else reads `access_grant` to decide.

The rule, stated once. A grant gives one capability over the tenant, one client or one
site. It *covers* a row with (client_id, site_id) when it is tenant-wide or its unit is the
row's client or the row's site: a client grant covers the client's own (client-level) rows
and every row of its sites, a site grant that site's rows only, and a tenant-level row (no
client) is covered by tenant-wide grants alone. A person *sees* a row when a grant of a
view capability covers it, and *sees a client* when they see it or one of its sites.

Looking a client or site up by code (`Scope.client`, `Scope.site`): a unit the person
neither sees nor holds the wanted capability over is "not found" (exit 3: an invisible
object never answers 77); one they know of but may not act on is refused (exit 77) with
the grant to ask for.

The person's grants are read once per transaction into a `Scope`. For a capability they
reduce to a `Coverage` (tenant-wide, or which units and which clients), and both the SQL
filter (`Coverage.where`) and the check of rows already in hand (`Coverage.covers`) are
read off that one value, so the two cannot drift apart: a tenant-wide grant filters
nothing (no per-row test over a million alerts), otherwise the granted ids are an IN list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, false, or_, select, true
from sqlalchemy.orm import Session, aliased

from nocctl.errors import BadInput, NotFound, PermissionDenied
from nocctl.models import AccessGrant, BusinessUnit
from nocctl.services.rbac import Actor, Caller, authenticate
from nocctl.vocabulary import CAPABILITIES, TENANT_WIDE_CAPABILITIES, VIEW_CAPABILITIES

INGEST = "noc:ingest"
TENANT_WIDE_ONLY = TENANT_WIDE_CAPABILITIES

# A column of client or site ids in a query (an ORM attribute or a table column).
IdColumn = SQLColumnExpression[Any]


# ---------------------------------------------------------------- the remedy and the refusals

def grant_remedy(username: str, capability: str, scope_hint: str = "") -> str:
    """The remedy of every refusal for want of a grant: the command an admin runs."""
    return f"an admin can run `nocctl user grant {username} {capability}{scope_hint}`"


def refusal(username: str, capability: str, where: str = "") -> PermissionDenied:
    """Exit 77 for want of `capability`; `where` is "tenant-wide", "for client ACME", … or
    empty when the capability is missing everywhere."""
    return PermissionDenied(f"{username!r} lacks {capability}" + (f" {where}" if where else ""),
                            grant_remedy(username, capability))


def unit_not_found(kind: str, code: str) -> NotFound:
    """Exit 3 for a client or site that does not exist or that the person may not know of:
    the same words for both, so a refusal never betrays that a hidden unit exists."""
    return NotFound(f"no {kind.lower()} {code!r}", "see `nocctl org list`")


def check_capability(capability: str) -> str:
    if capability not in CAPABILITIES:
        raise BadInput(f"unknown capability {capability!r}", "one of: " + ", ".join(CAPABILITIES))
    return capability


# ---------------------------------------------------------------- grants and what they cover

@dataclass(frozen=True)
class Grant:
    capability: str
    unit_id: int | None  # None: tenant-wide
    client_id: int | None  # the unit's client (a client's own id); None when tenant-wide


@dataclass(frozen=True)
class Coverage:
    """Where some capabilities hold: the whole tenant, or the granted `units` (client and
    site ids); `clients` are those units' clients ("a client or one of its sites")."""

    tenant_wide: bool = False
    units: frozenset[int] = frozenset()
    clients: frozenset[int] = frozenset()

    @classmethod
    def of(cls, grants: list[Grant]) -> Coverage:
        return cls(any(g.unit_id is None for g in grants),
                   frozenset(g.unit_id for g in grants if g.unit_id is not None),
                   frozenset(g.client_id for g in grants if g.client_id is not None))

    def __bool__(self) -> bool:
        """Held somewhere at all."""
        return self.tenant_wide or bool(self.units)

    def covers(self, client_id: int | None, site_id: int | None = None) -> bool:
        """The rule, for a row in hand (the same as `where`)."""
        return self.tenant_wide or client_id in self.units or site_id in self.units

    def where(self, client_col: IdColumn, site_col: IdColumn | None = None) -> ColumnElement[bool]:
        """The rule, as SQL over a row's client and site columns (the same as `covers`)."""
        if self.tenant_wide:
            return true()
        if not self.units:
            return false()
        units = sorted(self.units)
        return or_(*(column.in_(units) for column in (client_col, site_col) if column is not None))

    def covers_client(self, client_id: int | None) -> bool:
        """The client or one of its sites is covered."""
        return self.tenant_wide or client_id in self.clients

    def where_client(self, client_col: IdColumn) -> ColumnElement[bool]:
        """SQL of `covers_client` over a column of client ids."""
        if self.tenant_wide:
            return true()
        return client_col.in_(sorted(self.clients)) if self.clients else false()


@dataclass(frozen=True)
class Unit:
    """A client or site found by code."""

    id: int
    code: str
    kind: str  # CLIENT or SITE
    client_id: int

    @property
    def site_id(self) -> int | None:
        return self.id if self.kind == "SITE" else None


# ---------------------------------------------------------------- the scope

@dataclass(frozen=True)
class Scope:
    """One person's grants, read once, and every question asked of them."""

    actor: Actor
    grants: tuple[Grant, ...]
    view: Coverage = field(init=False)

    def __post_init__(self) -> None:
        # Asked of nearly every row: worked out once.
        object.__setattr__(self, "view", self.coverage(*VIEW_CAPABILITIES))

    @classmethod
    def system(cls, actor: Actor) -> Scope:
        """A cron pass or a system ingest: every capability, tenant-wide."""
        return cls(actor, tuple(Grant(capability, None, None) for capability in CAPABILITIES))

    @property
    def username(self) -> str:
        return self.actor.username

    def coverage(self, *capabilities: str) -> Coverage:
        return Coverage.of([g for g in self.grants if g.capability in capabilities])

    # ------------------------------------------------------------ seeing

    def visible(self, client_col: IdColumn, site_col: IdColumn | None = None) -> ColumnElement[bool]:
        """SQL filter: the rows with these client/site columns that the person sees."""
        return self.view.where(client_col, site_col)

    def visible_client(self, client_col: IdColumn) -> ColumnElement[bool]:
        """SQL filter: client-level objects (a schedule, a client window) whose client the
        person sees, itself or through one of its sites."""
        return self.view.where_client(client_col)

    def sees(self, client_id: int | None, site_id: int | None = None) -> bool:
        return self.view.covers(client_id, site_id)

    def sees_client(self, client_id: int | None) -> bool:
        return self.view.covers_client(client_id)

    def visible_to_viewers(self) -> ColumnElement[bool]:
        """SQL filter of tenant-wide objects that bear on everyone's alerts (a tenant-wide
        maintenance window or on-call schedule): shown to whoever sees anything."""
        return true() if self.view else false()

    def require_view(self) -> None:
        """Exit 77 without any view capability (the views of what one sees: reports, status)."""
        if not self.view:
            raise PermissionDenied(f"{self.username!r} has no view capability",
                                   grant_remedy(self.username, "noc:view_client", " --client CODE"))

    # ------------------------------------------------------------ doing

    def holds(self, capability: str, client_id: int | None = None, site_id: int | None = None) -> bool:
        """`capability` over the client/site (tenant-wide when neither is given)."""
        return self.coverage(capability).covers(client_id, site_id)

    def where(self, capability: str, client_col: IdColumn, site_col: IdColumn | None = None
              ) -> ColumnElement[bool]:
        """SQL filter: the rows over which the person holds `capability`."""
        return self.coverage(capability).where(client_col, site_col)

    def require(self, capability: str, client_id: int | None = None, site_id: int | None = None,
                what: str | None = None) -> None:
        """Exit 77 unless `capability` is held over the client/site (tenant-wide when
        neither is given). `what` names the object ("client ACME", "alert 7"); without it
        the refusal says "tenant-wide"."""
        if not self.holds(capability, client_id, site_id):
            raise refusal(self.username, capability, f"for {what}" if what else "tenant-wide")

    def allowing(self, capability: str, client_id: int | None = None, site_id: int | None = None) -> Grant | None:
        """The grant by which `capability` is held over the client/site (tenant-wide when
        neither is given), the broadest first; None when none is (`user can-i`). The same
        rule as `holds`: each grant is asked through its own coverage."""
        held = [g for g in self.grants if g.capability == capability and Coverage.of([g]).covers(client_id, site_id)]
        return min(held, key=lambda g: (g.unit_id is not None, g.unit_id != g.client_id), default=None)

    def require_somewhere(self, capability: str) -> Coverage:
        """Exit 77 unless `capability` is held in some scope; where it is held, to narrow by."""
        held = self.coverage(capability)
        if not held:
            raise refusal(self.username, capability)
        return held

    # ------------------------------------------------------------ looking up by code

    def client(self, session: Session, code: str, capability: str | None = None) -> Unit:
        return self.unit(session, "CLIENT", code, capability)

    def site(self, session: Session, code: str, capability: str | None = None) -> Unit:
        return self.unit(session, "SITE", code, capability)

    def unit(self, session: Session, kind: str, code: str, capability: str | None = None) -> Unit:
        """The client or site `code`: not found (3) unless the person sees it or holds
        `capability` over it (a grant that names it is no secret to its holder); then 77
        unless they hold `capability` over it."""
        unit = self.known_unit(session, kind, code, capability)
        if capability is not None:
            self.require(capability, unit.client_id, unit.site_id, what=f"{kind.lower()} {code}")
        return unit

    def known_unit(self, session: Session, kind: str, code: str, capability: str | None = None) -> Unit:
        """The client or site `code` when the person may know of it (as `unit`, without
        requiring `capability`): not found (3) otherwise, the same words as a missing one."""
        row = session.execute(select(BusinessUnit.id, BusinessUnit.kind, BusinessUnit.client_id).where(
            BusinessUnit.tenant_id == self.actor.tenant_id, BusinessUnit.code == code)).first()
        if row is None or row.kind != kind:
            raise unit_not_found(kind, code)
        unit = Unit(row.id, code, row.kind, row.client_id)
        if not self.knows(unit.client_id, unit.site_id, capability):
            raise unit_not_found(kind, code)
        return unit

    def knows(self, client_id: int, site_id: int | None = None, capability: str | None = None) -> bool:
        """Whether a site, or a client (`site_id` None: seen through itself or any of its
        sites), or an object of one, may be named to the person at all: they see it, or
        hold `capability` over it."""
        seen = self.sees(client_id, site_id) if site_id is not None else self.sees_client(client_id)
        return seen or (capability is not None and self.holds(capability, client_id, site_id))


def load(session: Session, actor: Actor) -> Scope:
    """The actor's grants, read once inside the caller's transaction."""
    unit = aliased(BusinessUnit)
    rows = session.execute(
        select(AccessGrant.capability, AccessGrant.unit_id, unit.client_id)
        .outerjoin(unit, unit.id == AccessGrant.unit_id)
        .where(AccessGrant.tenant_id == actor.tenant_id, AccessGrant.person_id == actor.person_id)).all()
    return Scope(actor, tuple(Grant(capability, unit_id, client_id) for capability, unit_id, client_id in rows))


def for_caller(session: Session, caller: Caller) -> Scope:
    """Who is acting (exit 77 for an unknown login) and their grants."""
    return load(session, authenticate(session, caller))
