"""The access scope itself (nocctl.services.access): the SQL filter and the check of rows in
hand give the same answer for every kind of grant and row, and a lookup by code tells "not
found" (3) from "not permitted" (77) the same way everywhere.

The org: clients A and B; sites a1 and a2 of A, b1 of B."""
from __future__ import annotations

import pytest
from sqlalchemy import Integer, cast, literal, select, union_all

from conftest import as_person
from nocctl.errors import NotFound, PermissionDenied
from nocctl.models import BusinessUnit
from nocctl.services import access, org, people

# Who holds what (besides the admin).
GRANTS = {
    "tenant": [("noc:view", {}), ("noc:ack_alerts", {})],
    "client": [("noc:view_client", {"client": "A"}), ("noc:ack_alerts", {"client": "A"})],
    "site": [("noc:view_assigned_sites", {"site": "a1"}), ("noc:ack_alerts", {"site": "a1"})],
    "nothing": [],
    "blind_ack": [("noc:ack_alerts", {"client": "A"})],  # may act on A, sees nothing
}

# Rows by (client, site) code; None: no client (tenant-level) or no site (client-level).
ROWS = [("A", "a1"), ("A", "a2"), ("A", None), ("B", "b1"), ("B", None), (None, None)]

# What each grant covers among ROWS.
COVERED = {
    "tenant": set(ROWS),
    "client": {("A", "a1"), ("A", "a2"), ("A", None)},  # the client's own rows and its sites'
    "site": {("A", "a1")},  # that site only: not the client-level row, not a sibling site
    "nothing": set(),
}


@pytest.fixture
def org_ab(new_session, initialised):
    admin = initialised
    org.add_client(new_session(), admin, "A", "Alpha")
    org.add_client(new_session(), admin, "B", "Bravo")
    org.add_site(new_session(), admin, "a1", "A", "Alpha One")
    org.add_site(new_session(), admin, "a2", "A", "Alpha Two")
    org.add_site(new_session(), admin, "b1", "B", "Bravo One")
    for username, grants in GRANTS.items():
        people.add(new_session(), admin, username)
        for capability, where in grants:
            people.grant(new_session(), admin, username, capability, **where)
    with new_session() as session:
        return dict(session.execute(select(BusinessUnit.code, BusinessUnit.id)).all())


def ids_of(ids: dict[str, int], row: tuple[str | None, str | None]) -> tuple[int | None, int | None]:
    return tuple(ids[code] if code else None for code in row)  # type: ignore[return-value]


def rows_table(ids: dict[str, int]):
    """ROWS as an SQL table (n, client_id, site_id), so the filter runs in the database."""
    def number(value: int | None):
        return cast(literal(value, Integer), Integer)

    return union_all(*(select(literal(n, Integer).label("n"), number(client).label("client_id"),
                              number(site).label("site_id"))
                       for n, (client, site) in enumerate(ids_of(ids, row) for row in ROWS))).subquery()


def passing_sql(session, condition_of, ids) -> set[tuple[str | None, str | None]]:
    table = rows_table(ids)
    return {ROWS[n] for n in session.scalars(select(table.c.n).where(condition_of(table.c.client_id,
                                                                                  table.c.site_id)))}


def passing_python(check, ids) -> set[tuple[str | None, str | None]]:
    return {row for row in ROWS if check(*ids_of(ids, row))}


@pytest.mark.parametrize("username", sorted(COVERED))
def test_the_sql_filter_and_the_check_in_hand_agree_on_every_kind_of_row(new_session, org_ab, username):
    with new_session() as session:
        scope = access.for_caller(session, as_person(username))
        seen_sql = passing_sql(session, scope.visible, org_ab)
        seen_python = passing_python(scope.sees, org_ab)
        acts_sql = passing_sql(session, lambda c, s: scope.where("noc:ack_alerts", c, s), org_ab)
        acts_python = passing_python(lambda c, s: scope.holds("noc:ack_alerts", c, s), org_ab)
    assert seen_sql == seen_python == COVERED[username]
    assert acts_sql == acts_python == COVERED[username]


@pytest.mark.parametrize("username, clients", [
    ("tenant", {"A", "B"}), ("client", {"A"}), ("site", {"A"}), ("nothing", set()), ("blind_ack", set())])
def test_a_client_is_seen_through_itself_or_one_of_its_sites_in_sql_and_in_hand(new_session, org_ab, username,
                                                                                 clients):
    with new_session() as session:
        scope = access.for_caller(session, as_person(username))
        in_sql = set(session.scalars(select(BusinessUnit.code).where(
            BusinessUnit.kind == "CLIENT", scope.visible_client(BusinessUnit.id))))
        in_hand = {code for code in ("A", "B") if scope.sees_client(org_ab[code])}
    assert in_sql == in_hand == clients


def test_a_capability_held_nowhere_covers_nothing_and_filters_everything_out(new_session, org_ab):
    with new_session() as session:
        scope = access.for_caller(session, as_person("client"))
        assert passing_sql(session, lambda c, s: scope.where("noc:escalate", c, s), org_ab) == set()
        assert passing_python(lambda c, s: scope.holds("noc:escalate", c, s), org_ab) == set()
        with pytest.raises(PermissionDenied) as raised:
            scope.require_somewhere("noc:escalate")
    assert str(raised.value) == ("'client' lacks noc:escalate; an admin can run "
                                 "`nocctl user grant client noc:escalate`")


# ---------------------------------------------------------------- lookups by code

def lookup(new_session, username: str, kind: str, code: str, capability: str | None = None):
    with new_session() as session:
        return access.for_caller(session, as_person(username)).unit(session, kind, code, capability)


@pytest.mark.parametrize("username, kind, code, capability", [
    ("client", "CLIENT", "B", None),           # another client: hidden
    ("client", "SITE", "b1", None),            # a site of another client
    ("site", "SITE", "a2", None),              # a sibling of the granted site
    ("site", "SITE", "a2", "noc:ack_alerts"),  # hidden and not permitted either: still 3, never 77
    ("nothing", "CLIENT", "A", None),
    ("tenant", "CLIENT", "ZZ", None),          # does not exist: the same words
    ("tenant", "SITE", "A", None),             # a client is not a site
    ("tenant", "CLIENT", "a1", None),          # nor a site a client
])
def test_a_unit_one_may_not_know_of_is_not_found(new_session, org_ab, username, kind, code, capability):
    with pytest.raises(NotFound) as raised:
        lookup(new_session, username, kind, code, capability)
    assert raised.value.exit_code == 3
    assert str(raised.value) == f"no {kind.lower()} {code!r}; see `nocctl org list`"


@pytest.mark.parametrize("username, kind, code", [
    ("site", "CLIENT", "A"),        # seen through its site, but a site grant does not act on the client
    ("client", "SITE", "a1"),       # seen; `noc:configure` is held nowhere
    ("tenant", "CLIENT", "B"),
])
def test_a_unit_one_sees_but_may_not_act_on_is_refused_naming_the_grant(new_session, org_ab, username, kind, code):
    with pytest.raises(PermissionDenied) as raised:
        lookup(new_session, username, kind, code, "noc:configure")
    assert raised.value.exit_code == 77
    assert str(raised.value) == (f"{username!r} lacks noc:configure for {kind.lower()} {code}; "
                                 f"an admin can run `nocctl user grant {username} noc:configure`")


@pytest.mark.parametrize("username, kind, code, capability", [
    ("site", "CLIENT", "A", None),                 # seen through one of its sites
    ("site", "SITE", "a1", "noc:ack_alerts"),
    ("client", "SITE", "a2", "noc:ack_alerts"),    # a client grant covers its sites
    ("tenant", "SITE", "b1", "noc:ack_alerts"),
    ("blind_ack", "CLIENT", "A", "noc:ack_alerts"),  # not seen, but the grant names it: no secret to them
])
def test_a_unit_one_sees_or_may_act_on_is_found(new_session, org_ab, username, kind, code, capability):
    unit = lookup(new_session, username, kind, code, capability)
    assert (unit.id, unit.code, unit.kind) == (org_ab[code], code, kind)
    assert unit.client_id == org_ab[code[0].upper()]
    assert unit.site_id == (org_ab[code] if kind == "SITE" else None)


def test_no_view_at_all_is_refused_by_the_views_of_what_one_sees(new_session, org_ab):
    with new_session() as session:
        access.for_caller(session, as_person("site")).require_view()  # some view: enough
        with pytest.raises(PermissionDenied) as raised:
            access.for_caller(session, as_person("blind_ack")).require_view()
    assert str(raised.value) == ("'blind_ack' has no view capability; an admin can run "
                                 "`nocctl user grant blind_ack noc:view_client --client CODE`")


def test_a_system_scope_covers_every_row_for_every_capability(new_session, org_ab):
    with new_session() as session:
        scope = access.Scope.system(access.for_caller(session, as_person("nothing")).actor)
        assert passing_sql(session, scope.visible, org_ab) == passing_python(scope.sees, org_ab) == set(ROWS)
        assert passing_python(lambda c, s: scope.holds("noc:ingest", c, s), org_ab) == set(ROWS)
