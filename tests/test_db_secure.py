"""PostgreSQL multi-user mode: `nocctl db secure`, `nocctl user db-role` and the row-level
security they set up, checked by connecting *as* the roles (psycopg, `user=ROLE`, the
server's trust authentication) and by running nocctl as them. On SQLite: only the refusal.

Roles are cluster-wide: every role a test makes starts with the name of its throw-away
database (random), and is dropped after the database."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from conftest import BACKEND, LOGIN, PostgresServer
from nocctl.models import Base
from nocctl.services import db_secure

needs_pg = pytest.mark.skipif(BACKEND != "postgresql", reason="multi-user mode is PostgreSQL's")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _invoke(url: str, config, *args: str, input: str | None = None):
    from nocctl.cli import cli as root

    env = {"NOC_DATABASE_URL": url, "NOC_CONFIG": str(config), "NOC_TENANT": None, "NOC_ACTOR": None,
           "NOC_NOW": None}
    return CliRunner().invoke(root, list(args), input=input, env=env, catch_exceptions=False)


def _ok(result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def connect(url: str, role: str | None = None):
    """A psycopg connection to the database of `url`, as `role` (autocommit)."""
    import psycopg

    parsed = make_url(url)
    return psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, dbname=parsed.database,
                           user=role or parsed.username, autocommit=True)


def drop_roles(server: PostgresServer, prefix: str) -> None:
    with server.admin.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %(p)s) ORDER BY rolname DESC",
            {"p": prefix}).scalars().all()
        for name in names:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


# ---------------------------------------------------------------- SQLite: exit 2


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite refusal")
def test_sqlite_refuses_multi_user_mode(admin_cli):
    for args in (("db", "secure"), ("user", "db-role", LOGIN)):
        result = admin_cli(*args)
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
        assert result.stderr == f"nocctl: error: {db_secure.SQLITE_REFUSAL}\n"


def test_every_table_has_rules():
    """A new model's table must be named in db_secure.TABLES (else it is closed to persons)."""
    assert set(db_secure.TABLES) == set(Base.metadata.tables)
    scoped = {"alert", "incident", "incident_alert", "maintenance_window", "audit_log", "notification", "snapshot",
              "feed_record", "ingest_reject", "operator_pref"}
    assert set(db_secure.SCOPED_TABLES) == scoped


def test_rule_is_the_scope_objects():
    """The SQL of a grant's coverage reads the tenant-wide, client and site columns the way
    access.Coverage.where does, each array once per statement."""
    sql = db_secure.covers(["noc:view_client"])
    assert sql == ("(tenant_id = ANY ((SELECT noc_tenant_wide('{noc:view_client}'::text[]))::bigint[])"
                   " OR client_id = ANY ((SELECT noc_units('{noc:view_client}'::text[]))::bigint[])"
                   " OR site_id = ANY ((SELECT noc_units('{noc:view_client}'::text[]))::bigint[]))")


# ---------------------------------------------------------------- a secured database


class World:
    """A secured database: clients A (site A1) and B (site B1); alice with view_client,
    ack_alerts and audit_view over A and a login role; feeder, a service login with
    tenant-wide noc:ingest; rows of A and B in every scoped table."""

    def __init__(self, server: PostgresServer, config):
        self.server, self.config = server, config
        self.url = server.create()
        self.db = make_url(self.url).database
        self.alice_role = f"{self.db}_alice"
        self.feeder_role = f"{self.db}_feed"
        self.ids: dict[str, int] = {}

    def cli(self, *args: str, role: str | None = None, input: str | None = None):
        return _invoke(as_role(self.url, role) if role else self.url, self.config, *args, input=input)

    def sql(self, statement: str, params: dict | None = None, role: str | None = None) -> list[tuple]:
        with connect(self.url, role) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def build(self) -> None:
        _ok(self.cli("init"))
        first = _ok(self.cli("db", "secure"))
        assert first.splitlines()[-1] == "secured"
        assert f"owner     {self.db}_owner (created)" in first
        for args in (("org", "client", "add", "A", "--name", "A"), ("org", "client", "add", "B", "--name", "B"),
                     ("org", "site", "add", "A1", "--client", "A", "--name", "A1"),
                     ("org", "site", "add", "B1", "--client", "B", "--name", "B1"),
                     ("user", "add", "alice"), ("user", "add", "feeder"), ("user", "add", "bob"),
                     ("user", "grant", "bob", "noc:view_all_clients"),
                     ("user", "grant", "bob", "noc:ack_alerts", "--client", "A"),
                     ("user", "grant", "alice", "noc:view_client", "--client", "A"),
                     ("user", "grant", "alice", "noc:ack_alerts", "--client", "A"),
                     ("user", "grant", "alice", "noc:audit_view", "--client", "A"),
                     ("user", "grant", "feeder", "noc:ingest")):
            _ok(self.cli(*args))
        mapped = json.loads(_ok(self.cli("user", "db-role", "alice", self.alice_role, "--format", "json")))
        assert mapped == {"username": "alice", "db_role": self.alice_role, "group": "person", "role_created": True,
                          "previous_db_role": None, "changed": True}
        _ok(self.cli("user", "db-role", "feeder", self.feeder_role, "--service"))
        self.bob_role = f"{self.db}_bob"
        _ok(self.cli("user", "db-role", "bob", self.bob_role))
        units = dict(self.sql("SELECT code, id FROM business_unit"))
        self.ids.update(units)
        people = dict(self.sql("SELECT username, id FROM person"))
        self.ids.update({f"person:{k}": v for k, v in people.items()})
        self.tenant = self.sql("SELECT id FROM tenant")[0][0]
        self.seed()

    def seed(self) -> None:
        """Rows of A and of B: alerts through the service login's ingest, an ack (audited) by
        the admin for each client, the other tables with SQL as the superuser."""
        records = [{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "client": c, "site": s, "message": f"{c} {s}",
                    "entity_id": f"dev-{c}-{s}"} for c, s in (("A", "A1"), ("A", None), ("B", "B1"), ("B", None))]
        ingested = self.cli("ingest", "-", role=self.feeder_role, input="\n".join(json.dumps(r) for r in records))
        _ok(ingested)
        alerts = self.sql("SELECT id, client_id, site_id FROM alert ORDER BY id")
        assert len(alerts) == 4
        by_client = {}
        for alert_id, client_id, _site in alerts:
            by_client.setdefault(client_id, []).append(alert_id)
        a, b, a1, b1 = self.ids["A"], self.ids["B"], self.ids["A1"], self.ids["B1"]
        # An audited change in each client (the admin: its login is the superuser).
        _ok(self.cli("alert", "ack", str(by_client[a][-1]), str(by_client[b][-1])))
        t, alice, root = self.tenant, self.ids["person:alice"], self.ids[f"person:{LOGIN}"]
        feeder = self.ids["person:feeder"]
        params = {"t": t, "now": NOW, "a": a, "b": b, "a1": a1, "b1": b1}
        with connect(self.url) as conn:
            for client, site in ((a, a1), (b, b1)):
                p = {**params, "c": client, "s": site}
                incident = conn.execute(
                    "INSERT INTO incident (tenant_id, title, severity, status, client_id, site_id, created_at)"
                    " VALUES (%(t)s, 'x', 'HIGH', 'NEW', %(c)s, %(s)s, %(now)s) RETURNING id", p).fetchone()[0]
                conn.execute("INSERT INTO incident_alert (incident_id, alert_id, tenant_id, added_at)"
                             " VALUES (%(i)s, %(al)s, %(t)s, %(now)s)",
                             {**p, "i": incident, "al": by_client[client][0]})
                conn.execute("INSERT INTO notification (tenant_id, created_at, kind, channel, client_id, site_id,"
                             " payload, status, next_attempt_at) VALUES (%(t)s, %(now)s, 'ESCALATION', 'mail',"
                             " %(c)s, %(s)s, '{}', 'FAILED', %(now)s)", p)
                conn.execute("INSERT INTO snapshot (tenant_id, scope, unit_id, client_id, site_id, window_start,"
                             " window_end, in_maintenance, metrics, created_at) VALUES (%(t)s, 'SITE', %(s)s, %(c)s,"
                             " %(s)s, %(now)s, %(now)s, false, '{}', %(now)s)", p)
                conn.execute("INSERT INTO feed_record (tenant_id, kind, external_id, client_id, site_id, updated_at,"
                             " received_at) VALUES (%(t)s, 'ticket', %(e)s, %(c)s, %(s)s, %(now)s, %(now)s)",
                             {**p, "e": f"T-{client}"})
                for kind, c, s in (("CLIENT", client, None), ("SITE", client, site)):
                    conn.execute("INSERT INTO maintenance_window (tenant_id, scope_kind, client_id, site_id,"
                                 " suppress_all, starts_at, ends_at, reason, created_at) VALUES (%(t)s, %(k)s, %(c)s,"
                                 " %(s)s, true, %(now)s, %(now)s, 'x', %(now)s)", {**p, "k": kind, "c": c, "s": s})
            conn.execute("INSERT INTO maintenance_window (tenant_id, scope_kind, suppress_all, starts_at, ends_at,"
                         " reason, created_at) VALUES (%(t)s, 'TENANT', true, %(now)s, %(now)s, 'x', %(now)s)", params)
            for sender in (alice, feeder, None):
                conn.execute("INSERT INTO ingest_reject (tenant_id, received_at, source, reason, raw, raw_hash,"
                             " sender_person_id, sender_system) VALUES (%(t)s, %(now)s, '-', 'bad', 'x', %(h)s, %(p)s,"
                             " %(sys)s)", {**params, "h": uuid.uuid4().hex, "p": sender, "sys": sender is None})
            for person in (alice, root):
                conn.execute("INSERT INTO operator_pref (tenant_id, person_id, updated_at) VALUES (%(t)s, %(p)s,"
                             " %(now)s)", {**params, "p": person})

    def close(self) -> None:
        self.server.drop(self.url)
        drop_roles(self.server, self.db)


@pytest.fixture(scope="module")
def world(pg_server, tmp_path_factory):
    if pg_server is None:
        pytest.skip("multi-user mode is PostgreSQL's")
    config = tmp_path_factory.mktemp("secure") / "config.toml"
    config.write_text("")
    built = World(pg_server, config)
    try:
        built.build()
        yield built
    finally:
        built.close()


# What alice (client A) must see of each scoped table, as SQL over the table run by the
# superuser: the scope rule written out by hand.
EXPECTED = {
    "alert": "client_id = %(a)s",
    "incident": "client_id = %(a)s",
    "incident_alert": "alert_id IN (SELECT id FROM alert WHERE client_id = %(a)s)",
    "maintenance_window": "client_id = %(a)s OR scope_kind = 'TENANT'",
    "audit_log": "client_id = %(a)s",
    "notification": "client_id = %(a)s",
    "snapshot": "client_id = %(a)s",
    "feed_record": "client_id = %(a)s",
    "ingest_reject": "sender_person_id = %(alice)s",
    "operator_pref": "person_id = %(alice)s",
}
KEYS = {"incident_alert": "incident_id, alert_id", "operator_pref": "tenant_id, person_id"}


@needs_pg
def test_secure_twice_changes_nothing(world):
    again = _ok(world.cli("db", "secure"))
    assert again.splitlines()[-1] == "already secured (nothing changed)"
    assert f"person    {world.db}_person (exists)" in again
    report = json.loads(_ok(world.cli("db", "secure", "--format", "json")))
    assert report["changed"] is False and report["unknown_tables"] == []
    assert sorted(report["scoped_tables"]) == sorted(db_secure.SCOPED_TABLES)
    # Every table: row-level security enabled and forced, owned by the owner group.
    rows = world.sql("SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) FROM pg_class"
                     " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'alembic_version'")
    assert {r[0] for r in rows} == set(db_secure.TABLES)
    assert all(r[1:] == (True, True, f"{world.db}_owner") for r in rows), rows
    # Nothing for PUBLIC on the tables, the schema or the database.
    assert world.sql("SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = 'PUBLIC'"
                     " AND table_schema = 'public'") == [(0,)]
    assert world.sql("SELECT has_database_privilege('public', current_database(), 'CONNECT'),"
                     " has_schema_privilege('public', 'public', 'USAGE')") == [(False, False)]
    # Another prefix for a secured database is refused.
    other = world.cli("db", "secure", "--prefix", "zzz")
    assert other.exit_code == 4 and "secured with the roles" in other.stderr


@needs_pg
def test_a_second_database_may_not_share_the_roles(world):
    """Roles are cluster-wide: a second database secured with the first one's prefix is refused."""
    second = world.server.create()
    try:
        _ok(_invoke(second, world.config, "db", "upgrade"))
        refused = _invoke(second, world.config, "db", "secure", "--prefix", world.db)
        assert refused.exit_code == 4, refused.stderr
        assert f"serve the database {world.db!r} already" in refused.stderr
        with connect(second) as conn:
            assert conn.execute("SELECT to_regprocedure('noc_security()')").fetchone() == (None,)
    finally:
        world.server.drop(second)


@needs_pg
@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_person_role_reads_only_its_scope(world, table):
    key = KEYS.get(table, "id")
    params = {"a": world.ids["A"], "alice": world.ids["person:alice"]}
    everything = world.sql(f"SELECT {key} FROM {table} ORDER BY {key}")
    expected = world.sql(f"SELECT {key} FROM {table} WHERE {EXPECTED[table]} ORDER BY {key}", params)
    seen = world.sql(f"SELECT {key} FROM {table} ORDER BY {key}", role=world.alice_role)
    assert expected, f"no row of client A seeded in {table}"
    assert len(everything) > len(expected), f"no row of client B seeded in {table}"
    assert seen == expected


@needs_pg
def test_person_role_sees_its_tenant_only_in_org_tables(world):
    """People, org and config tables: the rows of the tenants the login is mapped in."""
    for table in ("tenant", "person", "business_unit", "access_grant"):
        assert world.sql(f"SELECT count(*) FROM {table}", role=world.alice_role) == \
            world.sql(f"SELECT count(*) FROM {table}")
    # A login mapped to nobody (a member of the group, mapping removed) sees nothing at all.
    stray = f"{world.db}_stray"
    world.sql(f'CREATE ROLE "{stray}" LOGIN IN ROLE "{world.db}_person"')
    for table in ("tenant", "person", "alert", "audit_log", "access_grant"):
        assert world.sql(f"SELECT count(*) FROM {table}", role=stray) == [(0,)]


@needs_pg
def test_person_role_cannot_write_outside_its_scope(world):
    import psycopg

    role, b = world.alice_role, world.ids["B"]
    with connect(world.url, role) as conn:
        assert conn.execute("UPDATE alert SET message = 'mine' WHERE client_id = %(b)s", {"b": b}).rowcount == 0
        assert conn.execute("DELETE FROM access_grant").rowcount == 0  # revoking needs noc:configure
        refused = [
            "UPDATE audit_log SET action = 'X'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "ALTER TABLE alert DISABLE ROW LEVEL SECURITY",
            "DROP POLICY noc_person_select ON alert",
            f'SET ROLE "{world.db}_owner"',
            f"UPDATE person SET db_role = '{role}' WHERE username = '{LOGIN}'",  # take the admin's identity
            "DELETE FROM alert",
            # self-escalation: a tenant-wide grant needs a tenant-wide noc:configure
            (f"INSERT INTO access_grant (tenant_id, person_id, capability, scope_kind, created_at) VALUES"
             f" ({world.tenant}, {world.ids['person:alice']}, 'noc:view_all_clients', 'TENANT', now())"),
            # an audit row in someone else's name
            (f"INSERT INTO audit_log (tenant_id, at, actor_id, action, hash) VALUES ({world.tenant}, now(),"
             f" {world.ids['person:' + LOGIN]}, 'CONFIG_CHANGE', 'x')"),
            # an alert for client B (ingest needs noc:ingest there)
            (f"INSERT INTO alert (tenant_id, client_id, alert_type, severity, status, message, dedup_key,"
             f" first_seen_at, last_seen_at, created_at) VALUES ({world.tenant}, {b}, 'X', 'LOW', 'NEW', 'x', 'k',"
             " now(), now(), now())"),
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    assert world.sql("SELECT count(*) FROM alert WHERE message = 'mine'") == [(0,)]


@needs_pg
def test_writes_follow_the_capability_not_the_view(world):
    """bob sees every client but acknowledges only A's alerts: the UPDATE policy, not the
    SELECT one, keeps B's rows out of reach."""
    a, b = world.ids["A"], world.ids["B"]
    with connect(world.url, world.bob_role) as conn:
        seen = conn.execute("SELECT count(*) FROM alert WHERE client_id = %(b)s", {"b": b}).fetchone()[0]
        assert seen > 0
        assert conn.execute("UPDATE alert SET message = message WHERE client_id = %(b)s", {"b": b}).rowcount == 0
        mine = conn.execute("UPDATE alert SET message = message WHERE client_id = %(a)s", {"a": a}).rowcount
        assert mine == world.sql("SELECT count(*) FROM alert WHERE client_id = %(a)s", {"a": a})[0][0]
    # Through nocctl: B's alert is visible to bob but not his to acknowledge (77).
    b_alert = world.sql("SELECT id FROM alert WHERE client_id = %(b)s AND status = 'NEW' LIMIT 1", {"b": b})[0][0]
    assert world.cli("alert", "ack", str(b_alert), role=world.bob_role).exit_code == 77


@needs_pg
def test_nocctl_as_the_person_role_shows_what_psql_shows(world):
    listed = json.loads(_ok(world.cli("alert", "list", "--format", "json", role=world.alice_role)))
    rows = world.sql("SELECT id FROM alert ORDER BY id", role=world.alice_role)
    assert sorted(r["id"] for r in listed) == [r[0] for r in rows]
    assert {r["client"] for r in listed} == {"A"}
    new = [r["id"] for r in listed if r["status"] == "NEW"]
    assert new
    # The person's ack goes through and is audited as alice (identity from session_user);
    # an alert of B is "not found".
    _ok(world.cli("alert", "ack", str(new[0]), role=world.alice_role))
    b_alert = world.sql("SELECT id FROM alert WHERE client_id = %(b)s LIMIT 1", {"b": world.ids["B"]})[0][0]
    assert world.cli("alert", "ack", str(b_alert), role=world.alice_role).exit_code == 3
    last = world.sql("SELECT a.action, p.username, a.target_id FROM audit_log a JOIN person p ON p.id = a.actor_id"
                     " ORDER BY a.id DESC LIMIT 1")
    assert last == [("ACKNOWLEDGE", "alice", str(new[0]))]
    # The chain stays one chain (its head read past RLS) and verifies for the owner: the
    # superuser, and a login that is a member of the owner group.
    assert "intact" in _ok(world.cli("audit", "verify"))
    dba = f"{world.db}_dba"
    world.sql(f'CREATE ROLE "{dba}" LOGIN IN ROLE "{world.db}_owner"')
    verified = _ok(world.cli("audit", "verify", "--format", "json", role=dba))
    assert json.loads(verified)["intact"] is True
    assert json.loads(verified)["rows_checked"] == world.sql("SELECT count(*) FROM audit_log")[0][0]
    # alice's own audit listing: the rows of A only.
    audit_rows = json.loads(_ok(world.cli("audit", "list", "--format", "json", role=world.alice_role)))
    assert audit_rows and {r["client"] for r in audit_rows} == {"A"}


@needs_pg
def test_a_person_running_a_pass_is_refused_not_crashed(world):
    # A pass needs the service login: the database refuses a person's, and the user gets
    # 77 with the remedy, not an internal error.
    result = world.cli("snapshot", "run", "--dry-run", role=world.alice_role)
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert result.stderr.startswith("nocctl: error: the database refused this login (")
    assert "--service" in result.stderr and "Traceback" not in result.stderr


@needs_pg
def test_service_role_ingests_and_reads_every_client(world):
    records = [{"alert_type": "SYNC_DEGRADED", "severity": "LOW", "client": c, "site": s, "message": "svc",
                "entity_id": f"svc-{c}"} for c, s in (("A", "A1"), ("B", "B1"))]
    done = world.cli("ingest", "-", role=world.feeder_role,
                     input="\n".join(json.dumps(r) for r in records))
    _ok(done)
    rows = world.sql("SELECT DISTINCT client_id FROM alert WHERE message = 'svc'", role=world.feeder_role)
    assert sorted(r[0] for r in rows) == sorted([world.ids["A"], world.ids["B"]])
    assert world.sql("SELECT count(*) FROM alert", role=world.feeder_role) == world.sql("SELECT count(*) FROM alert")
    # The services may not rewrite the audit log either (its triggers refuse everyone).
    import psycopg

    with connect(world.url, world.feeder_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM audit_log")


@needs_pg
def test_policies_compute_the_grants_once_per_statement(world):
    """The granted ids are InitPlans (once per statement), never SubPlans (once per row)."""
    with connect(world.url, world.alice_role) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT * FROM alert ORDER BY first_seen_at DESC"))
    assert "InitPlan" in plan and "SubPlan" not in plan, plan


@needs_pg
def test_db_role_refusals(world):
    # Without a tenant-wide noc:configure (alice maps herself): 77.
    denied = world.cli("user", "db-role", "alice", f"{world.db}_x", role=world.alice_role)
    assert denied.exit_code == 77, denied.stderr
    assert world.sql("SELECT count(*) FROM pg_roles WHERE rolname = %(r)s", {"r": f"{world.db}_x"}) == [(0,)]
    # A person's login cannot secure (or re-secure) the database: 77, nothing changed.
    refused = world.cli("db", "secure", role=world.alice_role)
    assert refused.exit_code == 77, refused.stderr
    assert "may not secure this database" in refused.stderr
    # Not an identifier: 2. A superuser or a group role: refused. Unknown person: 3.
    assert world.cli("user", "db-role", "alice", "Not-A-Role").exit_code == 2
    assert world.cli("user", "db-role", "alice", "postgres").exit_code == 4
    assert world.cli("user", "db-role", "alice", f"{world.db}_owner").exit_code == 2
    assert world.cli("user", "db-role", "nobody", f"{world.db}_y").exit_code == 3
    # A role mapped to someone else: 4.
    assert world.cli("user", "db-role", "feeder", world.alice_role).exit_code == 4
    # Mapping again changes nothing and writes no audit row.
    count = world.sql("SELECT count(*) FROM audit_log")
    again = _ok(world.cli("user", "db-role", "alice", world.alice_role))
    assert again == f"alice is mapped to {world.alice_role} already\n"
    assert world.sql("SELECT count(*) FROM audit_log") == count


@needs_pg
def test_db_role_needs_a_secured_database(admin_cli):
    result = admin_cli("user", "db-role", LOGIN)
    assert result.exit_code == 4
    assert "not secured" in result.stderr


@needs_pg
def test_migrations_of_a_secured_database(pg_server, tmp_path):
    """Around a migration the persons' policies are dropped (fail closed) and everything is
    re-applied at head: tables a migration adds are owned by the owner and secured."""
    config = tmp_path / "config.toml"
    config.write_text("")
    url = pg_server.create()
    db = make_url(url).database
    try:
        _ok(_invoke(url, config, "init"))
        _ok(_invoke(url, config, "db", "secure"))
        down = _invoke(url, config, "db", "downgrade", "0005")
        _ok(down)
        assert "policies stay removed" in down.stderr
        with connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_policies WHERE starts_with(policyname, 'noc_person_')"
                                ).fetchone() == (0,)
        below = _invoke(url, config, "db", "secure")  # the policies name columns of head
        assert below.exit_code == 4 and "run `nocctl db upgrade` first" in below.stderr
        up = _invoke(url, config, "db", "upgrade")
        _ok(up)
        assert "row-level security re-applied" in up.stderr
        with connect(url) as conn:
            added = conn.execute("SELECT pg_get_userbyid(relowner), relrowsecurity, relforcerowsecurity FROM pg_class"
                                 " WHERE relname = 'feed_record'").fetchone()
            assert added == (f"{db}_owner", True, True)
            policies = conn.execute("SELECT count(*) FROM pg_policies WHERE tablename = 'feed_record'"
                                    " AND starts_with(policyname, 'noc_person_')").fetchone()
            assert policies == (3,)  # select, insert, update
        assert _ok(_invoke(url, config, "db", "secure")).splitlines()[-1] == "already secured (nothing changed)"
    finally:
        pg_server.drop(url)
        drop_roles(pg_server, db)


@needs_pg
def test_a_person_role_may_run_doctor(world):
    """`nocctl doctor` needs only what reading needs: a person's login of a secured database
    reads the schema revision, its tenant and the passes' last runs (pass_run: by tenant); the
    audit chain needs a tenant-wide noc:audit_view, which alice (client A only) lacks."""
    result = world.cli("doctor", "--format", "json", role=world.alice_role)
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    problems = {name for name, c in checks.items() if c["status"] == "problem"}
    assert problems <= {f"pass {name}" for name in ("snapshot", "escalate", "notify", "retention")}, checks
    assert result.exit_code == (65 if problems else 0), result.stderr
    assert [checks[name]["status"] for name in ("database", "schema", "tenant")] == ["ok"] * 3
    assert checks["audit chain"]["status"] == "info" and "noc:audit_view" in checks["audit chain"]["remedy"]
    assert checks["pass locks"]["detail"] == "no pass is running"
