"""Integrations (`nocctl integration …`, `services/integrations.py`): keys for the senders of
`nocctl serve`, stored hashed, each acting as a service identity with noc:ingest over its
scope only. Both databases."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from conftest import LOGIN
from ingest_helpers import ndjson
from nocctl import clock
from nocctl.errors import PermissionDenied
from nocctl.models import AccessGrant, Alert, AuditLog, IngestReject, Integration, Person
from nocctl.services import integrations, rbac, schema
from nocctl.services.ingest.options import Options
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.ingest.reader import read_documents
from nocctl.services.rbac import Caller

KEY = re.compile(r"^noc_([a-z0-9]{8})_[A-Za-z0-9_-]{43}$")
HOST = "serve-host"


@pytest.fixture
def org(admin_cli):
    """Clients A (sites A1, A2) and B (site B1); bob sees A only (no noc:configure), carol
    configures A; both may be acted as by the admin (`--as`, noc:impersonate)."""
    for args in (("org", "client", "add", "A", "--name", "A"), ("org", "client", "add", "B", "--name", "B"),
                 ("org", "site", "add", "A1", "--client", "A", "--name", "A1"),
                 ("org", "site", "add", "B1", "--client", "B", "--name", "B1"),
                 ("org", "site", "add", "A2", "--client", "A", "--name", "A2"),
                 ("user", "add", "bob"), ("user", "grant", "bob", "noc:view_client", "--client", "A"),
                 ("user", "add", "carol"), ("user", "grant", "carol", "noc:configure", "--client", "A"),
                 ("user", "grant", "carol", "noc:view_client", "--client", "A")):
        result = admin_cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    return admin_cli


def add(cli, name: str, *args: str, fmt: str = "alertmanager") -> str:
    result = cli("integration", "add", name, "--format", fmt, *args)
    assert result.exit_code == 0, result.stderr
    key = result.stdout.strip()
    assert KEY.match(key), result.stdout
    return key


def resolve(new_session, key: str, now=None):
    with new_session() as session:
        return integrations.resolve_key(session, key, now)


def run_ingest(new_session, resolved, *records: dict, fmt: str = "native"):
    rejects: list = []
    documents = read_documents([ndjson(*records).encode()], "http")
    with integrations.acting_as(resolved, "noc-serve", HOST) as caller:
        summary = Ingest(new_session, caller, Options(fmt, **resolved.defaults()), rejects.append).run(documents)
    return summary, rejects


def record(client: str | None = None, site: str | None = None, action: str = "trigger", key: str = "k1", **extra):
    r = {"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "down", "action": action, "dedup_key": key,
         **extra}
    if client:
        r["client"] = client
    if site:
        r["site"] = site
    return r


# ---------------------------------------------------------------- the key: once, hashed


def test_add_prints_the_key_once_and_stores_only_its_hash(org, engine):
    added = org("integration", "add", "prom-a", "--format", "alertmanager", "--client", "A")
    assert added.exit_code == 0, added.stderr
    key = added.stdout.strip()
    assert added.stdout == key + "\n" and KEY.match(key)
    prefix, secret = key[4:12], key[13:]
    assert "shown this once" in added.stderr and "/api/v1/alertmanager" in added.stderr
    with engine.connect() as conn:
        row = conn.execute(select(Integration)).one()
        assert (row.name, row.format, row.key_prefix) == ("prom-a", "alertmanager", prefix)
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        # The key is nowhere in the database: not in any column of any row.
        for table in schema_tables(conn):
            dump = json.dumps([list(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}"))])
            assert secret not in dump, table
    # Never shown again: list (every format), show, audit.
    for args in (("integration", "list"), ("integration", "list", "--format", "json"),
                 ("integration", "list", "--format", "csv"), ("integration", "list", "--format", "ndjson"),
                 ("integration", "show", "prom-a"), ("integration", "show", "prom-a", "--json"),
                 ("audit", "list", "--format", "json")):
        shown = org(*args)
        assert shown.exit_code == 0, (args, shown.stderr)
        assert secret not in shown.stdout and "key_hash" not in shown.stdout, args
    listed = json.loads(org("integration", "list", "--format", "json").stdout)
    assert listed == [{"name": "prom-a", "format": "alertmanager", "scope": "client A", "key_prefix": prefix,
                       "status": "active", "created_at": listed[0]["created_at"], "rotated_at": None,
                       "revoked_at": None}]
    shown = json.loads(org("integration", "show", "prom-a", "--format", "json").stdout)
    assert shown["username"] == "integration:prom-a" and shown["client"] == "A" and shown["site"] is None
    assert shown["path"] == "/api/v1/alertmanager" and "key" not in shown


def schema_tables(conn) -> list[str]:
    from nocctl.models import Base

    return sorted(Base.metadata.tables)


def test_add_json_and_the_scopes(org):
    result = org("integration", "add", "pd-s", "--format", "pagerduty", "--site", "A1", "--json")
    assert result.exit_code == 0, result.stderr
    issued = json.loads(result.stdout)
    assert KEY.match(issued["key"]) and issued["key"][4:12] == issued["key_prefix"]
    assert (issued["scope"], issued["client"], issued["site"], issued["path"]) == ("site A1", "A", "A1", "/v2/enqueue")
    add(org, "all", fmt="native")
    rows = {r["name"]: r["scope"] for r in json.loads(org("integration", "list", "--format", "json").stdout)}
    assert rows == {"pd-s": "site A1", "all": "tenant"}


@pytest.mark.parametrize(("args", "code", "words"), [
    (("bad name", "--format", "native"), 65, "invalid integration name"),
    (("x", "--format", "native", "--client", "A", "--site", "A1"), 2, "not both"),
    (("x", "--format", "zabbix"), 2, "Invalid value for '--format'"),
    (("x", "--format", "native", "--client", "NOPE"), 3, "no client 'NOPE'"),
])
def test_add_refusals(org, args, code, words):
    result = org("integration", "add", *args)
    assert result.exit_code == code, result.stderr
    assert words in result.stderr and result.stdout == ""


def test_a_name_is_taken_once_revoked_ones_too(org, engine):
    add(org, "x")
    again = org("integration", "add", "x", "--format", "native")
    assert again.exit_code == 4 and "already exists" in again.stderr
    assert org("integration", "revoke", "x").exit_code == 0
    again = org("integration", "add", "x", "--format", "native")
    assert again.exit_code == 4 and "revoked" in again.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(text("count(*)")).select_from(Integration)) == 1


# ---------------------------------------------------------------- resolve_key


def test_resolve_key(org, new_session):
    key = add(org, "prom-a", "--client", "A")
    site_key = add(org, "pd-a1", "--site", "A1", fmt="pagerduty")
    found = resolve(new_session, key)
    assert found is not None
    with new_session() as session:
        person = session.scalar(select(Person).where(Person.username == "integration:prom-a"))
        assert person is not None and person.active
        integration_id = session.scalar(select(Integration.id).where(Integration.name == "prom-a"))
    assert found == integrations.Resolved(integration_id, "prom-a", found.tenant_id, "default", "alertmanager",
                                          person.id, "integration:prom-a", "A", None, False)
    assert found.defaults() == {"client": "A", "site": None}
    by_site = resolve(new_session, site_key)
    assert by_site is not None and (by_site.client, by_site.site, by_site.format) == ("A", "A1", "pagerduty")
    assert by_site.defaults() == {"client": None, "site": "A1"}
    # Wrong secret with a real prefix, an unknown prefix, malformed keys: None.
    wrong = key[:13] + ("A" if key[13] != "A" else "B") + key[14:]
    for bad in (wrong, "noc_zzzzzzzz_" + key[13:], key + "x", key[:-1], key.upper(), " " + key, key + "\n", "",
                "Bearer " + key, None, 12):
        assert resolve(new_session, bad) is None, bad  # type: ignore[arg-type]
    actor = integrations.actor(found, "noc-serve", HOST)
    assert actor == rbac.Actor(found.tenant_id, person.id, "integration:prom-a", "noc-serve", HOST)


def test_a_revoked_key_resolves_to_nothing(org, new_session):
    key = add(org, "prom-a", "--client", "A")
    assert resolve(new_session, key) is not None
    revoked = org("integration", "revoke", "prom-a")
    assert revoked.exit_code == 0 and revoked.stdout == "revoked integration prom-a\n"
    assert resolve(new_session, key) is None
    # Idempotent: exit 0, says so, changes nothing.
    again = org("integration", "revoke", "prom-a")
    assert again.exit_code == 0 and "revoked already" in again.stderr and again.stdout == ""
    shown = json.loads(org("integration", "show", "prom-a", "--json").stdout)
    assert shown["status"] == "revoked" and shown["revoked_at"]
    # Its identity is inactive: not even an impersonator may act as it now.
    assert org("--as", "integration:prom-a", "alert", "list").exit_code == 77
    # A revoked integration is not rotated back to life.
    rotated = org("integration", "rotate", "prom-a")
    assert rotated.exit_code == 4 and "revoked" in rotated.stderr and rotated.stdout == ""


def test_the_integration_and_its_identity_must_both_be_live(org, new_session, engine):
    """Revoked (whatever its identity's state) or its identity inactive (whatever the
    integration's): either one refuses the key."""
    key = add(org, "prom-a", "--client", "A")
    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET active = false WHERE username = 'integration:prom-a'"))
    assert resolve(new_session, key) is None
    assert org("integration", "revoke", "prom-a").exit_code == 0
    with engine.begin() as conn:  # made active again behind nocctl's back: still revoked
        conn.execute(text("UPDATE person SET active = true WHERE username = 'integration:prom-a'"))
    assert resolve(new_session, key) is None


def test_rotate_replaces_the_key_at_once(org, new_session):
    old = add(org, "prom-a", "--client", "A")
    rotated = org("integration", "rotate", "prom-a")
    assert rotated.exit_code == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert KEY.match(new) and new != old and new[:12] == old[:12]  # the prefix stays
    assert resolve(new_session, old) is None
    assert resolve(new_session, new) is not None
    shown = json.loads(org("integration", "show", "prom-a", "--json").stdout)
    assert shown["rotated_at"] and shown["previous_key_expires_at"] is None


def test_rotate_with_a_grace_period_keeps_the_old_key_a_while(org, new_session):
    old = add(org, "prom-a", "--client", "A")
    rotated = org("integration", "rotate", "prom-a", "--grace", "1h", "--json")
    assert rotated.exit_code == 0, rotated.stderr
    issued = json.loads(rotated.stdout)
    new, until = issued["key"], clock.parse_instant(issued["previous_key_expires_at"])
    found = resolve(new_session, old)
    assert found is not None and found.previous_key
    assert resolve(new_session, old, until - timedelta(seconds=1)) is not None
    assert resolve(new_session, old, until) is None
    current = resolve(new_session, new, until + timedelta(days=1))
    assert current is not None and not current.previous_key
    # A second rotation ends the first one's grace at once (one previous key at most).
    third = org("integration", "rotate", "prom-a").stdout.strip()
    assert resolve(new_session, old) is None and resolve(new_session, new) is None
    assert resolve(new_session, third) is not None
    # Revoking ends every key.
    newer = org("integration", "rotate", "prom-a", "--grace", "1h").stdout.strip()
    assert resolve(new_session, third) is not None
    assert org("integration", "revoke", "prom-a").exit_code == 0
    assert resolve(new_session, third) is None and resolve(new_session, newer) is None
    assert org("integration", "rotate", "x", "--grace", "1y").exit_code == 65


# ---------------------------------------------------------------- the identity and its scope


def test_a_client_key_ingests_for_its_client_only(org, new_session, engine):
    key_a, key_all = add(org, "prom-a", "--client", "A"), add(org, "all", fmt="native")
    a, every = resolve(new_session, key_a), resolve(new_session, key_all)
    assert a is not None and every is not None
    # The tenant-wide integration opens an alert in A and one in B.
    summary, rejects = run_ingest(new_session, every, record("A", key="ka"), record("B", key="kb"),
                                  record(site="B1", key="kb1"))
    assert (summary.created, summary.rejected) == (3, 0), rejects
    # A's key: A's site and A by default; B and B's site are unknown to it; B's alerts are
    # out of its reach for acknowledge and resolve.
    summary, rejects = run_ingest(new_session, a, record(site="A1", key="ka1"), record(key="ka-default"),
                                  record("B", key="kb2"), record(site="B1", key="kb3"),
                                  record(action="resolve", key="kb"), record(action="acknowledge", key="kb1"),
                                  record(action="resolve", key="ka"))
    assert (summary.created, summary.resolved, summary.acknowledged, summary.rejected) == (2, 1, 0, 2), rejects
    assert sorted(r.reason for r in rejects) == ["unknown client 'B'", "unknown site 'B1'"]
    with engine.connect() as conn:
        states = dict(conn.execute(select(Alert.dedup_key, Alert.status)).all())
        assert states == {"ka": "RESOLVED", "kb": "NEW", "kb1": "NEW", "ka1": "NEW", "ka-default": "NEW"}
        # The dead letters name the integration as sender; the resolve was audited as it,
        # with the server's login.
        person_a = conn.scalar(select(Person.id).where(Person.username == "integration:prom-a"))
        senders = conn.execute(select(IngestReject.sender_person_id, IngestReject.sender_login)).all()
        assert set(senders) == {(person_a, "noc-serve")}
        resolved = conn.execute(select(AuditLog.actor_id, AuditLog.os_user, AuditLog.host, AuditLog.details)
                                .where(AuditLog.action == "RESOLVE")).one()
        assert resolved[:3] == (person_a, "noc-serve", HOST)
        assert "impersonated_by" not in (resolved.details or {})


def test_a_site_key_ingests_for_its_site_only(org, new_session, engine):
    found = resolve(new_session, add(org, "pd-a1", "--site", "A1", fmt="native"))
    assert found is not None
    summary, rejects = run_ingest(new_session, found, record(key="k-default"), record(site="A1", key="k-a1"),
                                  record(site="A2", key="k-a2"), record("A", key="k-a"))
    assert (summary.created, summary.rejected) == (2, 2), rejects
    assert sorted(r.reason for r in rejects) == ["'integration:pd-a1' lacks noc:ingest for 'A'",
                                                 "unknown site 'A2'"]
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(Alert.dedup_key))) == ["k-a1", "k-default"]


def test_the_identity_holds_noc_ingest_over_its_scope_and_nothing_else(org, engine):
    add(org, "prom-a", "--client", "A")
    add(org, "pd-s", "--site", "B1", fmt="pagerduty")
    add(org, "all", fmt="native")
    with engine.connect() as conn:
        grants = conn.execute(
            text("SELECT p.username, g.capability, g.scope_kind, u.code FROM access_grant g JOIN person p"
                 " ON p.id = g.person_id LEFT JOIN business_unit u ON u.id = g.unit_id"
                 " WHERE p.username LIKE 'integration:%' ORDER BY p.username")).all()
    assert [tuple(g) for g in grants] == [("integration:all", "noc:ingest", "TENANT", None),
                                          ("integration:pd-s", "noc:ingest", "SITE", "B1"),
                                          ("integration:prom-a", "noc:ingest", "CLIENT", "A")]
    # `user grant/revoke` and `user add` cannot change an integration's identity.
    assert org("user", "grant", "integration:prom-a", "noc:configure").exit_code == 4
    assert org("user", "grant", "integration:prom-a", "noc:ingest", "--client", "B").exit_code == 4
    assert org("user", "revoke", "integration:prom-a", "noc:ingest", "--client", "A").exit_code == 4
    assert org("user", "add", "integration:evil").exit_code == 65
    with engine.connect() as conn:
        assert conn.scalar(select(text("count(*)")).select_from(AccessGrant)
                           .join(Person, Person.id == AccessGrant.person_id)
                           .where(Person.username.like("integration:%"))) == 3


def test_the_identity_is_not_claimable_without_noc_impersonate(org, new_session):
    add(org, "prom-a", "--client", "A")
    with new_session() as session, session.begin():
        # bob (no noc:impersonate) claims it: 77, whatever the claim.
        bob = Caller(tenant="default", username="integration:prom-a", os_user="bob", host="h", claimed_via="--as")
        with pytest.raises(PermissionDenied, match="needs noc:impersonate"):
            rbac.authenticate(session, bob)
        # Nobody's login is the identity's name (`:` cannot be in a login); the admin, who
        # may impersonate, may act as it like as anyone (audited with both).
        admin = Caller(tenant="default", username="integration:prom-a", os_user=LOGIN, host="h", claimed_via="--as")
        acting = rbac.authenticate(session, admin)
        assert (acting.username, acting.impersonated_by) == ("integration:prom-a", LOGIN)
    # A delegation of `acting_as` is honoured only inside its block.
    found = resolve(new_session, add(org, "other"))
    assert found is not None
    with integrations.acting_as(found, "noc-serve", HOST) as caller:
        pass
    with new_session() as session, session.begin(), pytest.raises(PermissionDenied):
        rbac.authenticate(session, caller)


def test_people_listing_shows_the_identities_to_those_who_see_their_scope(org):
    add(org, "prom-a", "--client", "A")
    add(org, "prom-b", "--client", "B")
    everyone = {p["username"] for p in json.loads(org("user", "list", "--format", "json").stdout)}
    assert {"integration:prom-a", "integration:prom-b"} <= everyone
    bobs = {p["username"] for p in json.loads(org("--as", "bob", "user", "list", "--format", "json").stdout)}
    assert "integration:prom-a" in bobs and "integration:prom-b" not in bobs
    assert org("--as", "bob", "user", "show", "integration:prom-b").exit_code == 3


def test_an_integration_revoked_mid_flight_is_refused_by_the_ingest(org, new_session, engine):
    found = resolve(new_session, add(org, "prom-a", "--client", "A"))
    assert found is not None
    assert org("integration", "revoke", "prom-a").exit_code == 0
    with pytest.raises(PermissionDenied):
        run_ingest(new_session, found, record("A"))
    with engine.connect() as conn:
        assert conn.scalar(select(text("count(*)")).select_from(Alert)) == 0


# ---------------------------------------------------------------- who may configure them


def test_configure_over_the_scope_is_needed(org):
    add(org, "prom-a", "--client", "A")
    add(org, "prom-b", "--client", "B")
    add(org, "all", fmt="native")
    # bob sees A but may not configure: 77 for everything he may know of.
    for args in (("add", "x", "--format", "native", "--client", "A"), ("add", "x", "--format", "native"),
                 ("list",), ("show", "prom-a"), ("revoke", "prom-a"), ("rotate", "prom-a"), ("show", "all"),
                 ("rotate", "all")):
        result = org("--as", "bob", "integration", *args)
        assert result.exit_code == 77, (args, result.stderr)
        assert "lacks noc:configure" in result.stderr and result.stdout == ""
    # ... and B's client and integration do not exist for him (3, the words of a missing one).
    for args, words in ((("add", "x", "--format", "native", "--client", "B"), "no client 'B'"),
                        (("add", "x", "--format", "native", "--site", "B1"), "no site 'B1'"),
                        (("show", "prom-b"), "no integration 'prom-b'"), (("revoke", "prom-b"), "no integration"),
                        (("rotate", "prom-b"), "no integration"), (("show", "nothing"), "no integration")):
        result = org("--as", "bob", "integration", *args)
        assert result.exit_code == 3, (args, result.stderr)
        assert words in result.stderr
    # carol configures A: A's integrations (and a site of A), not B's nor the tenant's.
    made = org("--as", "carol", "integration", "add", "carol-a1", "--format", "native", "--site", "A1")
    assert made.exit_code == 0, made.stderr
    listed = {r["name"] for r in json.loads(org("--as", "carol", "integration", "list", "--format", "json").stdout)}
    assert listed == {"prom-a", "carol-a1"}
    assert org("--as", "carol", "integration", "rotate", "prom-a").exit_code == 0
    assert org("--as", "carol", "integration", "revoke", "carol-a1").exit_code == 0
    assert org("--as", "carol", "integration", "show", "prom-b").exit_code == 3
    assert org("--as", "carol", "integration", "revoke", "all").exit_code == 77
    assert org("--as", "carol", "integration", "add", "y", "--format", "native").exit_code == 77
    # The name of a hidden integration is "in use", not "exists".
    taken = org("--as", "carol", "integration", "add", "prom-b", "--format", "native", "--client", "A")
    assert taken.exit_code == 4 and "already in use" in taken.stderr


def test_every_change_is_audited_without_the_key(org, engine):
    key = add(org, "prom-a", "--client", "A")
    rotated = org("integration", "rotate", "prom-a", "--grace", "30m").stdout.strip()
    assert org("integration", "revoke", "prom-a").exit_code == 0
    assert org("integration", "revoke", "prom-a").exit_code == 0  # nothing changed: no row
    with engine.connect() as conn:
        rows = conn.execute(select(AuditLog.action, AuditLog.target_type, AuditLog.details, AuditLog.client_id,
                                   AuditLog.os_user).where(AuditLog.target_type == "integration")
                            .order_by(AuditLog.id)).all()
        a = conn.scalar(text("SELECT id FROM business_unit WHERE code = 'A'"))
    assert [(r.action, r.details["change"]) for r in rows] == [
        ("CONFIG_CHANGE", "integration add"), ("CONFIG_CHANGE", "integration rotate"),
        ("CONFIG_CHANGE", "integration revoke")]
    assert all(r.client_id == a and r.os_user == LOGIN for r in rows)
    assert rows[0].details == {"change": "integration add", "name": "prom-a", "format": "alertmanager",
                               "scope": "client A", "key_prefix": key[4:12], "username": "integration:prom-a"}
    assert rows[1].details["grace_seconds"] == 1800
    for r in rows:
        assert key[13:] not in json.dumps(r.details) and rotated[13:] not in json.dumps(r.details)
    assert "intact" in org("audit", "verify").stdout


# ---------------------------------------------------------------- the migration


def test_migration_down_and_up_with_integrations(org, engine, new_session):
    key = add(org, "prom-a", "--client", "A")
    schema.downgrade(engine, "0008")
    with engine.connect() as conn:
        assert "integration" not in set(conn.dialect.get_table_names(conn))
        # The identity stays (audit rows name it) but can no longer act.
        assert conn.execute(text("SELECT active FROM person WHERE username = 'integration:prom-a'")).scalar() in (
            False, 0)
    schema.upgrade(engine)
    assert resolve(new_session, key) is None
    assert schema.drift(engine) == []


# ---------------------------------------------------------------- PostgreSQL multi-user mode


@pytest.fixture
def secured(pg_server, tmp_path):
    """A secured database: clients A and B; carol configures A (a login role of the persons
    group); feeder is a service login (what `nocctl serve` runs as)."""
    if pg_server is None:
        pytest.skip("multi-user mode is PostgreSQL's")
    from sqlalchemy.engine import make_url

    from test_db_secure import _invoke, _ok, as_role, drop_roles

    config = tmp_path / "config.toml"
    config.write_text("")
    url = pg_server.create()
    db = make_url(url).database
    roles = {"carol": f"{db}_carol", "feeder": f"{db}_feeder"}

    def cli(*args: str, role: str | None = None):
        return _invoke(as_role(url, roles[role]) if role else url, config, *args)

    try:
        for args in (("init",), ("db", "secure"), ("org", "client", "add", "A", "--name", "A"),
                     ("org", "client", "add", "B", "--name", "B"),
                     ("org", "site", "add", "A1", "--client", "A", "--name", "A1"),
                     ("user", "add", "carol"), ("user", "grant", "carol", "noc:configure", "--client", "A"),
                     ("user", "grant", "carol", "noc:view_client", "--client", "A"),
                     ("user", "db-role", "carol", roles["carol"]), ("user", "add", "feeder"),
                     ("user", "db-role", "feeder", roles["feeder"], "--service")):
            _ok(cli(*args))
        yield url, roles, cli
    finally:
        pg_server.drop(url)
        drop_roles(pg_server, db)


def test_secured_database_lets_a_client_admin_manage_its_integrations(secured):
    import psycopg

    from nocctl.db import make_engine, make_sessionmaker
    from test_db_secure import as_role, connect

    url, roles, cli = secured
    # carol (noc:configure over A) adds, rotates and revokes an integration of A through
    # the row-level security policies of her login; B stays out of reach.
    made = cli("integration", "add", "carol-a", "--format", "alertmanager", "--client", "A", role="carol")
    assert made.exit_code == 0, made.stderr
    assert cli("integration", "add", "carol-b", "--format", "native", "--client", "B", role="carol").exit_code == 3
    key_all = cli("integration", "add", "all", "--format", "native").stdout.strip()
    key_a = cli("integration", "rotate", "carol-a", role="carol").stdout.strip()
    assert KEY.match(key_a) and KEY.match(key_all)
    with connect(url, roles["carol"]) as conn:
        b = conn.execute("SELECT id FROM business_unit WHERE code = 'B'").fetchone()[0]
        # Not the tenant-wide identity, not another person.
        assert conn.execute("UPDATE person SET active = false WHERE username = 'integration:all'").rowcount == 0
        assert conn.execute("UPDATE person SET active = false WHERE username = 'feeder'").rowcount == 0
        assert conn.execute("UPDATE integration SET revoked_at = now() WHERE name = 'all'").rowcount == 0
        person = conn.execute("SELECT id, tenant_id FROM person WHERE username = 'integration:carol-a'").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # an integration of B
            conn.execute("INSERT INTO integration (tenant_id, name, format, person_id, unit_id, key_prefix,"
                         " key_hash, created_at) VALUES (%(t)s, 'evil', 'native', %(p)s, %(b)s, 'evilevil', 'x',"
                         " now())", {"t": person[1], "p": person[0], "b": b})
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a grant beyond her scope
            conn.execute("INSERT INTO access_grant (tenant_id, person_id, capability, scope_kind, unit_id,"
                         " created_at) VALUES (%(t)s, %(p)s, 'noc:ingest', 'CLIENT', %(b)s, now())",
                         {"t": person[1], "p": person[0], "b": b})
    # The server's service login resolves the keys and ingests as each integration.
    engine = make_engine(as_role(url, roles["feeder"]))
    try:
        factory = make_sessionmaker(engine)
        found = resolve(factory, key_a)
        assert found is not None and found.client == "A"
        summary, rejects = run_ingest(factory, found, record("A", key="ka"), record("B", key="kb"))
        assert (summary.created, summary.rejected) == (1, 1), rejects
        revoked = cli("integration", "revoke", "carol-a", role="carol")
        assert revoked.exit_code == 0, revoked.stderr
        assert resolve(factory, key_a) is None
        assert resolve(factory, key_all) is not None
    finally:
        engine.dispose()
