"""People, grants and visibility (DESIGN §3, People and RBAC), through the services.

The org used here: clients A and B; sites a1 and a2 of A, b1 of B."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from conftest import LOGIN, as_person
from nocctl import clock
from nocctl.errors import BadInput, ExitCode, NotFound, PermissionDenied
from nocctl.models import AccessGrant, AuditLog, BusinessUnit, Person
from nocctl.services import access, audit, org, people
from nocctl.services.rbac import Caller

ALL_UNITS = {"A", "a1", "a2", "B", "b1"}


@pytest.fixture
def org_ab(new_session, initialised):
    """Clients A, B with sites a1, a2 (A) and b1 (B); people with different grants."""
    admin = initialised
    org.add_client(new_session(), admin, "A", "Alpha")
    org.add_client(new_session(), admin, "B", "Bravo")
    org.add_site(new_session(), admin, "a1", "A", "Alpha One", city="Pune", state="Maharashtra")
    org.add_site(new_session(), admin, "a2", "A", "Alpha Two", city="Nashik", state="Maharashtra")
    org.add_site(new_session(), admin, "b1", "B", "Bravo One", city="Surat", state="Gujarat")
    for username in ("alice", "sam", "vera", "nobody", "cfg", "cfgonly"):
        people.add(new_session(), admin, username)
    people.grant(new_session(), admin, "alice", "noc:view_client", client="A")
    people.grant(new_session(), admin, "sam", "noc:view_assigned_sites", site="a1")
    people.grant(new_session(), admin, "vera", "noc:view_all_clients")
    people.grant(new_session(), admin, "cfg", "noc:configure", client="A")
    people.grant(new_session(), admin, "cfg", "noc:view_client", client="A")
    people.grant(new_session(), admin, "cfgonly", "noc:configure", client="A")
    return admin


def codes(new_session, caller: Caller, **filters) -> set[str]:
    return {row["code"] for row in org.list_units(new_session(), caller, **filters)}


def unit_ids(new_session) -> dict[str, int]:
    with new_session() as session:
        return dict(session.execute(select(BusinessUnit.code, BusinessUnit.id)).all())


# ---------------------------------------------------------------- visibility

@pytest.mark.parametrize("username, expected", [
    ("alice", {"A", "a1", "a2"}),       # noc:view_client --client A: the client and its sites
    ("sam", {"a1"}),                    # noc:view_assigned_sites --site a1: that site only
    ("vera", ALL_UNITS),                # noc:view_all_clients: the whole tenant
    ("nobody", set()),                  # no grants: nothing
    ("cfgonly", set()),                 # noc:configure is not a view capability
])
def test_list_units_shows_exactly_what_the_grants_allow(new_session, org_ab, username, expected):
    assert codes(new_session, as_person(username)) == expected
    assert codes(new_session, org_ab) == ALL_UNITS  # the admin sees everything


def test_filters_narrow_visibility_but_never_widen_it(new_session, org_ab):
    assert codes(new_session, as_person("alice"), kind="site") == {"a1", "a2"}
    with pytest.raises(NotFound, match="no client 'B'"):  # hidden: not found, like a missing one
        codes(new_session, as_person("alice"), client="B")
    assert codes(new_session, as_person("vera"), client="B") == {"B", "b1"}
    assert codes(new_session, as_person("sam"), kind="client") == set()


def test_tree_follows_visibility(new_session, org_ab):
    sam_tree = org.tree(new_session(), as_person("sam"))
    # The site's client appears as its parent, with only the visible site under it.
    assert [c["code"] for c in sam_tree] == ["A"]
    assert [s["code"] for st in sam_tree[0]["states"] for c in st["cities"] for s in c["sites"]] == ["a1"]
    assert org.tree(new_session(), as_person("nobody")) == []
    assert [c["code"] for c in org.tree(new_session(), as_person("vera"))] == ["A", "B"]


def test_visibility_filters_are_sql_expressions(new_session, org_ab):
    """The filters compose into any query (and decide client-level objects too)."""
    ids = unit_ids(new_session)
    expected = {"alice": {"A", "a1", "a2"}, "sam": {"a1"}, "vera": ALL_UNITS, "nobody": set()}
    with new_session() as session:
        for username, visible_codes in expected.items():
            scope = access.for_caller(session, as_person(username))
            query = select(BusinessUnit.code).where(BusinessUnit.tenant_id == scope.actor.tenant_id,
                                                    scope.visible(BusinessUnit.client_id, BusinessUnit.id))
            assert set(session.scalars(query)) == visible_codes, username

        def sees(username, client, site=None):
            return access.for_caller(session, as_person(username)).sees(ids[client], ids[site] if site else None)

        # An object at site a1 / a client-level object of A / an object at b1.
        assert [sees("alice", "A", "a1"), sees("alice", "A"), sees("alice", "B", "b1")] == [True, True, False]
        assert [sees("sam", "A", "a1"), sees("sam", "A"), sees("sam", "A", "a2")] == [True, False, False]
        assert [sees("vera", "B", "b1"), sees("vera", "B")] == [True, True]
        assert [sees("nobody", "A", "a1"), sees("nobody", "A")] == [False, False]


def test_revoking_the_view_grant_hides_the_units_again(new_session, org_ab):
    people.revoke(new_session(), org_ab, "alice", "noc:view_client", client="A")
    assert codes(new_session, as_person("alice")) == set()


# ---------------------------------------------------------------- scoped configure

def test_client_scoped_configure_adds_sites_to_its_own_client_only(new_session, org_ab):
    cfg = as_person("cfg")
    site = org.add_site(new_session(), cfg, "a3", "A", "Alpha Three", city="Pune")
    assert (site["code"], site["client"], site["city"]) == ("a3", "A", "Pune")
    assert "a3" in codes(new_session, cfg)

    with pytest.raises(NotFound) as raised:  # B is hidden from cfg: not found, like a missing client
        org.add_site(new_session(), cfg, "b2", "B", "Bravo Two")
    assert raised.value.exit_code == ExitCode.NOT_FOUND == 3
    assert str(raised.value) == "no client 'B'; see `nocctl org list`"
    with pytest.raises(PermissionDenied):  # a new client needs tenant-wide configure
        org.add_client(new_session(), cfg, "C", "Charlie")
    assert codes(new_session, org_ab) == ALL_UNITS | {"a3"}


def test_configure_without_view_can_still_add_and_is_told_what_it_added(new_session, org_ab):
    site = org.add_site(new_session(), as_person("cfgonly"), "a4", "A", "Alpha Four")
    assert (site["code"], site["client"]) == ("a4", "A")
    assert "a4" in codes(new_session, org_ab)
    assert codes(new_session, as_person("cfgonly")) == set()


def test_client_scoped_configure_grants_only_within_its_client(new_session, org_ab):
    cfg = as_person("cfg")
    assert people.grant(new_session(), cfg, "nobody", "noc:view_client", client="A") is True
    assert people.grant(new_session(), cfg, "nobody", "noc:view_assigned_sites", site="a2") is True
    with pytest.raises(NotFound):  # B and b1 are hidden from cfg: not found, never 77
        people.grant(new_session(), cfg, "nobody", "noc:view_client", client="B")
    with pytest.raises(NotFound):
        people.grant(new_session(), cfg, "nobody", "noc:view_assigned_sites", site="b1")
    with pytest.raises(PermissionDenied):  # no escalation to tenant-wide powers
        people.grant(new_session(), cfg, "cfg", "noc:view_all_clients")
    assert codes(new_session, as_person("nobody")) == {"A", "a1", "a2"}


def test_viewer_cannot_change_anything(new_session, org_ab):
    alice = as_person("alice")
    with pytest.raises(PermissionDenied):
        org.add_site(new_session(), alice, "a9", "A", "Nine")
    with pytest.raises(PermissionDenied):
        people.grant(new_session(), alice, "alice", "noc:configure", client="A")
    with pytest.raises(PermissionDenied):
        people.add(new_session(), alice, "newbie")
    assert codes(new_session, org_ab) == ALL_UNITS


# ---------------------------------------------------------------- who is acting

def test_unknown_person_is_refused_with_exit_77(new_session, org_ab):
    with pytest.raises(PermissionDenied) as raised:
        org.list_units(new_session(), as_person("ghost"))
    assert raised.value.exit_code == 77
    assert "'ghost' is not a NOC operator" in raised.value.message
    assert "nocctl user add ghost" in raised.value.remedy
    # The OS login is the acting person when no --as is given.
    with pytest.raises(PermissionDenied, match="'not-a-login'"):
        org.list_units(new_session(), Caller(tenant="default", os_user="not-a-login", host="h"))


def test_inactive_person_is_refused(new_session, org_ab):
    with new_session.begin() as session:
        session.execute(update(Person).where(Person.username == "vera").values(active=False))
    with pytest.raises(PermissionDenied, match="not an active NOC operator") as raised:
        org.list_units(new_session(), as_person("vera"))
    assert raised.value.exit_code == 77


def test_unknown_tenant_is_not_found(new_session, org_ab):
    with pytest.raises(NotFound, match="tenant 'elsewhere' does not exist"):
        org.list_units(new_session(), Caller(tenant="elsewhere", os_user=LOGIN))


# ---------------------------------------------------------------- grant and revoke

def grant_rows(new_session, username: str) -> list[tuple]:
    with new_session() as session:
        unit = select(BusinessUnit.code).where(BusinessUnit.id == AccessGrant.unit_id).scalar_subquery()
        return [tuple(row) for row in session.execute(
            select(AccessGrant.capability, AccessGrant.scope_kind, unit)
            .join(Person, Person.id == AccessGrant.person_id).where(Person.username == username)
            .order_by(AccessGrant.capability, AccessGrant.scope_kind)
        ).all()]


def audit_count(new_session) -> int:
    with new_session() as session:
        return session.scalar(select(func.count()).select_from(AuditLog))


def test_grant_is_idempotent(new_session, org_ab):
    before = audit_count(new_session)
    assert people.grant(new_session(), org_ab, "nobody", "noc:view_client", client="B") is True
    assert people.grant(new_session(), org_ab, "nobody", "noc:view_client", client="B") is False
    assert grant_rows(new_session, "nobody") == [("noc:view_client", "CLIENT", "B")]
    assert audit_count(new_session) == before + 1  # the no-op is not audited
    # The same capability at another scope is a different grant.
    assert people.grant(new_session(), org_ab, "nobody", "noc:view_client", client="A") is True
    assert people.grant(new_session(), org_ab, "nobody", "noc:view_client") is True
    assert people.grant(new_session(), org_ab, "nobody", "noc:view_client") is False
    assert len(grant_rows(new_session, "nobody")) == 3
    shown = people.show(new_session(), org_ab, "nobody").grants
    assert {"capability": "noc:view_client", "scope": "tenant", "unit": None} in shown
    assert {"capability": "noc:view_client", "scope": "client", "unit": "B"} in shown


def test_revoke(new_session, org_ab):
    before = audit_count(new_session)
    with pytest.raises(NotFound, match="does not hold noc:view_client on client B") as raised:
        people.revoke(new_session(), org_ab, "alice", "noc:view_client", client="B")
    assert raised.value.exit_code == 3
    with pytest.raises(NotFound, match="tenant-wide"):
        people.revoke(new_session(), org_ab, "alice", "noc:view_client")
    assert grant_rows(new_session, "alice") == [("noc:view_client", "CLIENT", "A")]
    assert audit_count(new_session) == before

    people.revoke(new_session(), org_ab, "alice", "noc:view_client", client="A")
    assert grant_rows(new_session, "alice") == []
    with pytest.raises(NotFound):
        people.revoke(new_session(), org_ab, "alice", "noc:view_client", client="A")
    assert audit_count(new_session) == before + 1


@pytest.mark.parametrize("scope", [{"client": "A"}, {"site": "a1"}])
def test_view_all_clients_cannot_be_scoped(new_session, org_ab, scope):
    with pytest.raises(BadInput, match="noc:view_all_clients is tenant-wide") as raised:
        people.grant(new_session(), org_ab, "nobody", "noc:view_all_clients", **scope)
    assert raised.value.exit_code == 65
    with pytest.raises(BadInput):
        people.revoke(new_session(), org_ab, "vera", "noc:view_all_clients", **scope)
    assert grant_rows(new_session, "nobody") == []


@pytest.mark.parametrize("capability", ["noc:fly", "view_client", "NOC:VIEW", ""])
def test_unknown_capability_is_bad_input(new_session, org_ab, capability):
    with pytest.raises(BadInput, match="unknown capability") as raised:
        people.grant(new_session(), org_ab, "nobody", capability)
    assert "noc:view_client" in raised.value.remedy  # lists the valid ones
    with pytest.raises(BadInput, match="unknown capability"):
        people.revoke(new_session(), org_ab, "alice", capability, client="A")
    assert grant_rows(new_session, "nobody") == []


def test_grant_to_unknown_person_or_scope_is_not_found(new_session, org_ab):
    with pytest.raises(NotFound, match="no person 'ghost'"):
        people.grant(new_session(), org_ab, "ghost", "noc:view")
    with pytest.raises(NotFound, match="no client 'Z'"):
        people.grant(new_session(), org_ab, "nobody", "noc:view_client", client="Z")
    with pytest.raises(NotFound, match="no client 'a1'"):  # a site is not a client
        people.grant(new_session(), org_ab, "nobody", "noc:view_client", client="a1")
    with pytest.raises(NotFound, match="no site 'A'"):
        people.grant(new_session(), org_ab, "nobody", "noc:view_assigned_sites", site="A")
    assert grant_rows(new_session, "nobody") == []


# ---------------------------------------------------------------- audit trail

def test_grant_and_revoke_are_audited_in_a_consistent_hash_chain(new_session, org_ab):
    with new_session() as session:
        first_new = session.scalar(select(func.max(AuditLog.id)))
        ids = dict(session.execute(select(Person.username, Person.id)).all())
    people.grant(new_session(), org_ab, "nobody", "noc:ack_alerts", site="b1")
    people.grant(new_session(), org_ab, "nobody", "noc:ack_alerts", site="b1")  # no-op
    people.grant(new_session(), as_person("cfg"), "nobody", "noc:view_client", client="A")
    people.revoke(new_session(), org_ab, "nobody", "noc:ack_alerts", site="b1")

    with new_session() as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    new = [r for r in rows if r.id > first_new]
    assert [(r.action, r.target_type, r.target_id, r.details) for r in new] == [
        ("CONFIG_CHANGE", "person", str(ids["nobody"]),
         {"change": "grant", "username": "nobody", "capability": "noc:ack_alerts", "scope": "site", "unit": "b1"}),
        ("CONFIG_CHANGE", "person", str(ids["nobody"]),
         {"change": "grant", "username": "nobody", "capability": "noc:view_client", "scope": "client", "unit": "A",
          "impersonated_by": LOGIN}),  # cfg acted through --as: the real caller is kept
        ("CONFIG_CHANGE", "person", str(ids["nobody"]),
         {"change": "revoke", "username": "nobody", "capability": "noc:ack_alerts", "scope": "site", "unit": "b1"}),
    ]
    # The acting person and the OS login are both recorded (cfg acted through --as).
    assert [(r.actor_id, r.os_user, r.host) for r in new] == [
        (ids[LOGIN], LOGIN, "testhost"), (ids["cfg"], LOGIN, "testhost"), (ids[LOGIN], LOGIN, "testhost")]

    # The whole chain, from `init` on, links up and every hash recomputes.
    assert rows[0].prev_hash is None
    for previous, row in zip([None] + rows[:-1], rows, strict=True):
        assert row.prev_hash == (previous.hash if previous else None)
        assert row.at.utcoffset().total_seconds() == 0
        fields = {
            "tenant_id": row.tenant_id, "at": clock.isoformat(row.at), "actor_id": row.actor_id,
            "os_user": row.os_user, "host": row.host, "action": row.action, "target_type": row.target_type,
            "target_id": row.target_id, "details": row.details,
        }
        assert audit.row_hash(row.prev_hash, fields) == row.hash, row.id
    assert len({r.hash for r in rows}) == len(rows)

    # A changed detail no longer matches its stored hash.
    last = rows[-1]
    forged = {"tenant_id": last.tenant_id, "at": clock.isoformat(last.at), "actor_id": last.actor_id,
              "os_user": last.os_user, "host": last.host, "action": last.action, "target_type": last.target_type,
              "target_id": last.target_id, "details": {**last.details, "capability": "noc:configure"}}
    assert audit.row_hash(last.prev_hash, forged) != last.hash
