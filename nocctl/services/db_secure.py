"""PostgreSQL multi-user mode (DESIGN §3a): `nocctl db secure` and `nocctl user db-role`.

After `db secure` the database itself is the boundary, whatever program connects:

- **Three group roles** (NOLOGIN), per database: `<prefix>_owner` owns every table, sequence
  and function of nocctl's schema; `<prefix>_person` is the group of people's login roles;
  `<prefix>_service` the group of the service logins (cron passes, ingest feeds, `serve`).
  Roles are cluster-wide, so the prefix defaults to the database's name (two nocctl
  databases on one cluster get their own groups and cannot reach each other: CONNECT is
  revoked from PUBLIC and granted to this database's groups only). The names are kept in
  the database (`noc_security()`), so later runs and `user db-role` find them.
- **Nothing for PUBLIC** (database CONNECT/TEMP, the schema, tables, sequences, functions).
  Persons get SELECT on every table and INSERT/UPDATE/DELETE only where a command of theirs
  writes (`TABLES`); audit_log only SELECT and INSERT; no TRUNCATE, REFERENCES or TRIGGER,
  and they own nothing, so they cannot ALTER a table, disable a trigger or drop a policy.
  Services get SELECT/INSERT/UPDATE/DELETE on every table (the audit log's triggers still
  refuse UPDATE and DELETE to everyone).
- **Row-level security, enabled and forced, on every table.** The owner and the services
  groups have a permissive all-rows policy each (forced RLS then costs them one `true`).
  A person's rows are decided by the person mapped to `session_user` (`person.db_role`,
  active): the rule of `nocctl.services.access`, in SQL. A grant of capability set C covers
  a row with (tenant_id, client_id, site_id) when

      tenant_id = ANY (tenant-wide grants of C)  -- a tenant-wide grant: every row
      OR client_id = ANY (units granted C)       -- a client grant: its own and its sites' rows
      OR site_id = ANY (units granted C)         -- a site grant: that site's rows

  (unit ids are unique across the database, so a site id never matches a client column,
  and a tenant-level row, client NULL, matches the first line only). Each array comes from
  a STABLE SECURITY DEFINER function wrapped in a scalar sub-select, so PostgreSQL runs it
  once per statement as an InitPlan, never per row. Which C: reading needs a view
  capability (audit rows: noc:audit_view), plus noc:ingest where an ingest must read what
  it writes (alerts, incidents, feed records, maintenance windows); writing follows the
  commands' capabilities (an alert UPDATE needs noc:ack_alerts, noc:escalate,
  noc:assign_incidents or noc:ingest over the row — the database holds the union, the
  command still asks for the one it needs). The org/people/config tables are read by
  tenant (the tenants the login is mapped in) and written only with noc:configure in the
  scope the commands ask for; `person.db_role` is not writable by persons at all.
- **The audit chain** stays one chain although a person reads only some of its rows: the
  head is read (and the tenant row locked) through `noc_audit_head()`, which reads past
  RLS for a login of that tenant (`services/audit.py`). A person may INSERT audit rows only
  for their tenant, as themselves (or anyone with noc:impersonate).

Migrations run as the owner (a superuser, or a login that is a member of `<prefix>_owner`);
around a migration of a secured database `db upgrade`/`db downgrade`/`init` drop the
persons' policies first and re-apply everything at head (`before_migration`,
`after_migration`), so the tables a migration adds are owned and secured too. In between,
below head, or after a failed migration, persons see nothing: it fails closed.
A table nocctl does not know gets RLS with no person policy and no person grant: closed.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nocctl.errors import Conflict, NotFound, PermissionDenied, UsageError
from nocctl.vocabulary import VIEW_CAPABILITIES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

    from nocctl.services.rbac import Caller

VERSION = 1
MARKER = "noc_security"  # the function that names this database's roles
POLICY_PREFIX = "noc_"
PERSON_POLICY = "noc_person_"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_IDENTIFIER = 63
GROUP_SUFFIXES = {"owner": "_owner", "person": "_person", "service": "_service"}
MAX_PREFIX = MAX_IDENTIFIER - max(len(s) for s in GROUP_SUFFIXES.values())

INGEST = "noc:ingest"
CONFIGURE = "noc:configure"
VIEW = VIEW_CAPABILITIES
SQLITE_REFUSAL = ("multi-user mode needs PostgreSQL: a SQLite database is one file, guarded by its file"
                  " permissions (0600), not by database roles")


def sqlite_refusal() -> UsageError:
    return UsageError(SQLITE_REFUSAL)


# ---------------------------------------------------------------- the rule, as SQL

def _caps(capabilities: Iterable[str]) -> str:
    """A text[] literal of capability names (no quoting needed: noc:[a-z_]+)."""
    names = sorted(set(capabilities))
    assert all(re.fullmatch(r"noc:[a-z_]+", n) for n in names)
    return "'{" + ",".join(names) + "}'::text[]"


def _in(column: str, function: str, capabilities: Iterable[str] | None = None) -> str:
    """`column = ANY (function(…))`, the array computed once per statement: a scalar
    sub-select is an InitPlan (a bare STABLE call in a filter could run once per row)."""
    arguments = _caps(capabilities) if capabilities is not None else ""
    return f"{column} = ANY ((SELECT {function}({arguments}))::bigint[])"


def covers(capabilities: Iterable[str], client: str | None = "client_id", site: str | None = "site_id") -> str:
    """The rule of `access.Coverage.where` over a row's tenant, client and site columns."""
    capabilities = tuple(capabilities)
    parts = [_in("tenant_id", "noc_tenant_wide", capabilities)]
    parts += [_in(column, "noc_units", capabilities) for column in (client, site) if column]
    return "(" + " OR ".join(parts) + ")"


def _in_tenant(column: str = "tenant_id") -> str:
    """The tenants the login is mapped in (org, people and config tables)."""
    return f"({_in(column, 'noc_tenants')})"


def _mine(column: str) -> str:
    """A person column naming the person mapped to the login."""
    return f"({_in(column, 'noc_people')})"


def _window_visible(capabilities: Sequence[str]) -> str:
    """`maintenance.commands._window_visible`: a tenant-wide window to whoever sees anything,
    a client window to whoever sees the client or one of its sites, a site window by the rule."""
    return (f"({_in('tenant_id', 'noc_tenant_wide', capabilities)}"
            f" OR (scope_kind = 'TENANT' AND {_in('tenant_id', 'noc_tenants_with', capabilities)})"
            f" OR (scope_kind = 'CLIENT' AND {_in('client_id', 'noc_clients', capabilities)})"
            f" OR (scope_kind = 'SITE' AND {covers(capabilities)}))")


def _schedule_configurable(column: str = "schedule_id") -> str:
    """An on-call member or override: noc:configure over its schedule's client (tenant-wide
    for a tenant-wide schedule)."""
    return (f"({_in('tenant_id', 'noc_tenant_wide', [CONFIGURE])} OR EXISTS (SELECT 1 FROM oncall_schedule s"
            f" WHERE s.id = {column} AND {_in('s.client_id', 'noc_units', [CONFIGURE])}))")


CONFIGURE_TENANT = covers([CONFIGURE], None, None)
READ_WITH_INGEST = (*VIEW, INGEST)
ALERT_WRITE = ("noc:ack_alerts", "noc:escalate", "noc:assign_incidents", INGEST)


@dataclass(frozen=True)
class Rules:
    """What the persons group may do on one table: the row rule of each command (SQL over
    the row; None: the privilege is not granted). `update` is both USING and WITH CHECK.
    `update_columns` narrow UPDATE to those columns. `scoped`: the table holds client/site
    data and its reads follow the scope rule (the others are read by tenant)."""

    select: str
    insert: str | None = None
    update: str | None = None
    delete: str | None = None
    update_columns: tuple[str, ...] = ()
    scoped: bool = False


_AUDIT_INSERT = (f"({_in_tenant()} AND ({_mine('actor_id')}"
                 f" OR {_in('tenant_id', 'noc_tenant_wide', ['noc:impersonate'])}))")
_REJECTS = f"({_in('tenant_id', 'noc_tenant_wide', [INGEST])} OR {_mine('sender_person_id')})"
_LINK_VISIBLE = ("(EXISTS (SELECT 1 FROM alert a WHERE a.id = alert_id)"
                 " AND EXISTS (SELECT 1 FROM incident i WHERE i.id = incident_id))")
_GRANT_WRITE = (f"({_in('tenant_id', 'noc_tenant_wide', [CONFIGURE])}"
                f" OR {_in('unit_id', 'noc_units_covered', [CONFIGURE])})")
_UNIT_INSERT = f"({CONFIGURE_TENANT} OR (kind = 'SITE' AND {_in('client_id', 'noc_units', [CONFIGURE])}))"
_PERSON_FIELDS = ("name", "email", "phone", "active")
# Integrations (`services/integrations.py`): written with noc:configure over their scope
# (tenant-wide for a tenant-wide one), like grants. Their identities are people named
# `integration:NAME` (no login can be): one that configures some scope may add one (its
# only grant, noc:ingest, is then held to `_GRANT_WRITE`), and deactivate one of an
# integration it may configure (`integration revoke`).
_INTEGRATION_WRITE = _GRANT_WRITE
_INTEGRATION_PERSON = "starts_with(username, 'integration:')"
_PERSON_INSERT = (f"(({CONFIGURE_TENANT} OR ({_INTEGRATION_PERSON}"
                  f" AND {_in('tenant_id', 'noc_tenants_with', [CONFIGURE])})) AND db_role IS NULL)")
_PERSON_UPDATE = (f"({CONFIGURE_TENANT} OR {_mine('id')} OR ({_INTEGRATION_PERSON} AND EXISTS (SELECT 1 FROM"
                  " integration i WHERE i.person_id = person.id AND"
                  f" ({_in('i.tenant_id', 'noc_tenant_wide', [CONFIGURE])}"
                  f" OR {_in('i.unit_id', 'noc_units_covered', [CONFIGURE])}))))")

# Every table of nocctl's schema (alembic_version aside). tests/test_db_secure.py checks
# that this names every model's table.
TABLES: dict[str, Rules] = {
    # Client/site data: the scope rule.
    "alert": Rules(covers(READ_WITH_INGEST), insert=covers([INGEST]), update=covers(ALERT_WRITE), scoped=True),
    "incident": Rules(covers(READ_WITH_INGEST), insert=covers(["noc:ack_alerts", INGEST]),
                      update=covers(["noc:ack_alerts", "noc:assign_incidents", INGEST]), scoped=True),
    "incident_alert": Rules(_LINK_VISIBLE, insert=_LINK_VISIBLE, scoped=True),
    "maintenance_window": Rules(_window_visible((*READ_WITH_INGEST, "noc:manage_maintenance")),
                                insert=covers(["noc:manage_maintenance"]),
                                update=covers(["noc:manage_maintenance"]), scoped=True),
    "audit_log": Rules(covers(["noc:audit_view"]), insert=_AUDIT_INSERT, scoped=True),
    "notification": Rules(covers(VIEW), update=covers(["noc:escalate"]), scoped=True),
    "snapshot": Rules(covers(VIEW), scoped=True),
    "feed_record": Rules(covers(READ_WITH_INGEST), insert=covers([INGEST]), update=covers([INGEST]), scoped=True),
    # Dead letters carry no client: a tenant-wide noc:ingest reads them all, a feed what it sent.
    "ingest_reject": Rules(_REJECTS, insert="(" + _mine("sender_person_id") + " AND NOT sender_system)",
                           update=_REJECTS, scoped=True),
    "operator_pref": Rules(_mine("person_id"), insert=_mine("person_id"), update=_mine("person_id"), scoped=True),
    # Org, people, configuration: read by tenant, written with noc:configure.
    "tenant": Rules(_in_tenant("id")),
    # db_role: only the DBA maps logins (`user db-role`), never a person's own session.
    "person": Rules(_in_tenant(), insert=_PERSON_INSERT,
                    # their own row too: `prefs set` locks it (FOR UPDATE needs UPDATE)
                    update=_PERSON_UPDATE, update_columns=_PERSON_FIELDS),
    "access_grant": Rules(_in_tenant(), insert=_GRANT_WRITE, delete=_GRANT_WRITE),
    "business_unit": Rules(_in_tenant(), insert=_UNIT_INSERT, update=CONFIGURE_TENANT),
    "escalation_policy": Rules(_in_tenant(), insert=CONFIGURE_TENANT, update=CONFIGURE_TENANT,
                               delete=CONFIGURE_TENANT),
    "oncall_schedule": Rules(_in_tenant(), insert=covers([CONFIGURE], site=None),
                             update=covers([CONFIGURE], site=None)),
    "oncall_member": Rules(_in_tenant(), insert=_schedule_configurable()),
    "oncall_override": Rules(_in_tenant(), insert=_schedule_configurable(), update=_schedule_configurable()),
    "ingest_event": Rules(_in_tenant(), insert=_in_tenant()),
    # Keys are stored hashed (SHA-256 of 256 random bits): reading the hash gives nothing.
    "integration": Rules(_in_tenant(), insert=_INTEGRATION_WRITE, update=_INTEGRATION_WRITE),
    # The last run of each cron pass: written by the passes (services), read by `nocctl doctor`.
    "pass_run": Rules(_in_tenant()),
}
SCOPED_TABLES = tuple(name for name, rules in TABLES.items() if rules.scoped)


# ---------------------------------------------------------------- the functions the policies call

# Each returns an array, is STABLE and runs as the owner (past RLS), with a fixed search
# path. session_user (not current_user) is the login: SET ROLE to a group does not change
# who the person is.
_ME = "p.db_role = session_user::text AND p.active"
# The login's grants of the capabilities `caps`, each joined to its person.
_GRANTS = (f"access_grant g JOIN person p ON p.id = g.person_id AND p.tenant_id = g.tenant_id"
           f" WHERE {_ME} AND g.capability = ANY (caps)")
FUNCTIONS: dict[str, str] = {
    "noc_people()": f"SELECT coalesce(array_agg(p.id), '{{}}') FROM person p WHERE {_ME}",
    "noc_tenants()": f"SELECT coalesce(array_agg(DISTINCT p.tenant_id), '{{}}') FROM person p WHERE {_ME}",
    "noc_tenant_wide(caps text[])":
        f"SELECT coalesce(array_agg(DISTINCT g.tenant_id), '{{}}') FROM {_GRANTS} AND g.unit_id IS NULL",
    "noc_tenants_with(caps text[])": f"SELECT coalesce(array_agg(DISTINCT g.tenant_id), '{{}}') FROM {_GRANTS}",
    "noc_units(caps text[])":
        f"SELECT coalesce(array_agg(DISTINCT g.unit_id), '{{}}') FROM {_GRANTS} AND g.unit_id IS NOT NULL",
    "noc_clients(caps text[])": (
        "SELECT coalesce(array_agg(DISTINCT u.client_id), '{}') FROM business_unit u"
        f" WHERE u.id IN (SELECT g.unit_id FROM {_GRANTS})"),
    "noc_units_covered(caps text[])": (
        "SELECT coalesce(array_agg(u.id), '{}') FROM business_unit u, (SELECT noc_units(caps) AS ids) g"
        " WHERE u.id = ANY (g.ids) OR u.client_id = ANY (g.ids)"),
}
_HEAD_FUNCTION = """
CREATE OR REPLACE FUNCTION noc_audit_head(tid bigint) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @s@, pg_temp AS $fn$
BEGIN
    -- The head of a tenant's audit chain, its writers serialised on the tenant row: for a
    -- login of that tenant, the owner's and the services' logins (audit.record_many).
    IF NOT (tid = ANY (noc_tenants()) OR pg_has_role(session_user, @owner@, 'USAGE')
            OR pg_has_role(session_user, @service@, 'USAGE')) THEN
        RAISE EXCEPTION 'login % does not belong to tenant %', session_user, tid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM 1 FROM tenant WHERE id = tid FOR UPDATE;
    RETURN (SELECT hash FROM audit_log WHERE tenant_id = tid ORDER BY id DESC LIMIT 1);
END $fn$"""


# ---------------------------------------------------------------- roles

@dataclass(frozen=True)
class Roles:
    owner: str
    person: str
    service: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Roles:
        return cls(*(prefix + GROUP_SUFFIXES[group] for group in ("owner", "person", "service")))

    def as_dict(self) -> dict[str, str]:
        return {"owner": self.owner, "person": self.person, "service": self.service}

    def __iter__(self):
        return iter((self.owner, self.person, self.service))


def default_prefix(database: str) -> str:
    """The database's name as an identifier: lower case, other characters `_`, a leading
    digit prefixed, cut to fit the longest group name in 63 bytes."""
    prefix = re.sub(r"[^a-z0-9_]", "_", database.lower()) or "nocctl"
    if not re.match(r"[a-z_]", prefix):
        prefix = "noc_" + prefix
    return prefix[:MAX_PREFIX]


def check_identifier(name: str, what: str) -> str:
    if not IDENTIFIER.match(name) or len(name.encode()) > MAX_IDENTIFIER or name.startswith("pg_"):
        raise UsageError(f"invalid {what} {name!r}", "use lower-case letters, digits and _, starting with a letter"
                         f" or _, at most {MAX_IDENTIFIER} characters, not pg_…")
    return name


def _exec(conn: Connection, statement: str):
    """One statement without parameters (the driver would read a % as a placeholder)."""
    return conn.exec_driver_sql(statement.replace("%", "%%"))


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def configured_roles(conn: Connection) -> Roles | None:
    """The roles `db secure` recorded in this database, or None when it never ran."""
    found = _exec(conn, f"SELECT to_regprocedure('{MARKER}()') IS NOT NULL").scalar()
    if not found:
        return None
    data = json.loads(_exec(conn, f"SELECT {MARKER}()").scalar() or "{}")
    return Roles(data["owner"], data["person"], data["service"])


def is_secured(engine: Engine) -> bool:
    if not _is_postgres(engine):
        return False
    with engine.connect() as conn:
        return configured_roles(conn) is not None


# ---------------------------------------------------------------- db secure

@dataclass
class Report:
    database: str
    schema: str
    roles: Roles
    roles_created: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    unknown_tables: list[str] = field(default_factory=list)
    changed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "schema": self.schema, "roles": self.roles.as_dict(),
                "roles_created": self.roles_created, "tables": self.tables, "unknown_tables": self.unknown_tables,
                "scoped_tables": [t for t in self.tables if t in SCOPED_TABLES], "changed": self.changed}


def _fingerprint(conn: Connection, schema: str, roles: Roles) -> str:
    """Everything `secure` sets, hashed: the same before and after a run that changed nothing."""
    rows = _exec(conn,
        "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity,"
        " coalesce(c.relacl::text, ''),"
        " (SELECT coalesce(string_agg(a.attname || '=' || a.attacl::text, ',' ORDER BY a.attnum), '')"
        "  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = {_lit(schema)} AND c.relkind IN ('r', 'S', 'p') ORDER BY c.relname").all()
    policies = _exec(conn,
        "SELECT tablename, policyname, permissive, roles::text, cmd, coalesce(qual, ''), coalesce(with_check, '')"
        f" FROM pg_policies WHERE schemaname = {_lit(schema)} ORDER BY tablename, policyname").all()
    functions = _exec(conn,
        "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), coalesce(p.proacl::text, ''), p.prosrc"
        f" FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = {_lit(schema)}"
        " ORDER BY 1").all()
    database = _exec(conn,
        "SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database()").scalar()
    namespace = _exec(conn, f"SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = {_lit(schema)}"
                                     ).scalar()
    present = _exec(conn, "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ("
                                   + ", ".join(_lit(r) for r in roles) + ")").scalar()
    text = json.dumps([[list(r) for r in rows], [list(p) for p in policies], [list(f) for f in functions],
                       database, namespace, present], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _role_exists(conn: Connection, name: str) -> bool:
    return bool(_exec(conn, f"SELECT 1 FROM pg_roles WHERE rolname = {_lit(name)}").scalar())


def _denied(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501" or "permission denied" in str(exc)


def secure(engine: Engine, prefix: str | None = None) -> Report:
    """Create the group roles, hand the schema to the owner, revoke PUBLIC, grant each group
    what it needs and (re)create the row-level security policies: one transaction, safe to
    run again (a second run changes nothing and says so)."""
    if not _is_postgres(engine):
        raise sqlite_refusal()
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.begin() as conn:
            return _secure(conn, prefix)
    except DBAPIError as exc:
        if _denied(exc):
            raise PermissionDenied(
                f"the database login may not secure this database ({str(exc.orig).splitlines()[0]})",
                "run `nocctl db secure` as a superuser, or as the tables' owner with CREATEROLE") from None
        raise


def _secure(conn: Connection, prefix: str | None) -> Report:
    database = _exec(conn, "SELECT current_database()").scalar() or ""
    schema = _exec(conn, "SELECT current_schema()").scalar()
    if schema is None:
        raise NotFound("the database has no schema on the search path", "run `nocctl db upgrade` first")
    tables = [r[0] for r in _exec(conn,
        f"SELECT tablename FROM pg_tables WHERE schemaname = {_lit(schema)} ORDER BY tablename")]
    if "alembic_version" not in tables:
        raise NotFound("the database has no nocctl schema yet", "run `nocctl db upgrade` (or `nocctl init`) first")
    _require_head(conn)
    recorded = configured_roles(conn)
    if recorded is not None:
        if prefix is not None and Roles.with_prefix(check_identifier(prefix, "prefix")) != recorded:
            raise Conflict(f"this database is secured with the roles {', '.join(recorded)} already",
                           "run `nocctl db secure` without --prefix")
        roles = recorded
    else:
        roles = Roles.with_prefix(check_identifier(prefix or default_prefix(database), "prefix")[:MAX_PREFIX])
        taken = _serving_elsewhere(conn, roles)
        if taken:
            raise Conflict(f"the roles {', '.join(roles)} serve the database {taken!r} already (roles are"
                           " cluster-wide)", "give this database its own `--prefix NAME`")
    before = _fingerprint(conn, schema, roles)
    report = Report(database, schema, roles)
    q = lambda name: _q(conn, name)  # noqa: E731
    run = functools.partial(_exec, conn)
    run(f"SET LOCAL search_path = {q(schema)}")
    run("SET LOCAL lock_timeout = '30s'")  # ALTER TABLE waits for running transactions; not forever

    # Roles (NOLOGIN groups), and the running login a member of the owner unless superuser.
    for name in roles:
        if not _role_exists(conn, name):
            run(f"CREATE ROLE {q(name)} NOLOGIN")
            report.roles_created.append(name)
    superuser = run("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").scalar()
    if not superuser and not run(f"SELECT pg_has_role(session_user, {_lit(roles.owner)}, 'MEMBER')").scalar():
        run(f"GRANT {q(roles.owner)} TO {q(_exec(conn, 'SELECT session_user').scalar())}")
    owner, person, service = q(roles.owner), q(roles.person), q(roles.service)

    # Nothing for PUBLIC; the groups connect and use the schema; the owner may create in it.
    run(f"REVOKE ALL ON DATABASE {q(database)} FROM PUBLIC")
    run(f"GRANT CONNECT ON DATABASE {q(database)} TO {owner}, {person}, {service}")
    run(f"REVOKE ALL ON SCHEMA {q(schema)} FROM PUBLIC")
    run(f"GRANT USAGE, CREATE ON SCHEMA {q(schema)} TO {owner}")
    run(f"GRANT USAGE ON SCHEMA {q(schema)} TO {person}, {service}")

    # The persons' policies go first (they call the functions); owner/service ones are replaced below.
    for table, policy in run(f"SELECT tablename, policyname FROM pg_policies WHERE schemaname = {_lit(schema)}"
                             f" AND starts_with(policyname, '{POLICY_PREFIX}')").all():
        run(f"DROP POLICY {q(policy)} ON {q(table)}")

    # The owner owns every table (and with it the sequences of its columns) and function.
    for table in tables:
        run(f"ALTER TABLE {q(table)} OWNER TO {owner}")
    _create_functions(conn, schema, roles)
    for signature in run("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n"
                         f" ON n.oid = p.pronamespace WHERE n.nspname = {_lit(schema)} AND p.prokind = 'f'").scalars():
        run(f"ALTER FUNCTION {signature} OWNER TO {owner}")

    # Privileges, from scratch each time.
    everyone = f"PUBLIC, {person}, {service}"
    run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {q(schema)} FROM {everyone}")
    run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q(schema)} FROM {everyone}")
    run(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {q(schema)} FROM {everyone}")
    run(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {person}, {service}")
    run(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {q(schema)} TO {person}, {service}")
    for table in tables:
        if table == "alembic_version":
            run(f"GRANT SELECT ON alembic_version TO {person}, {service}")
            continue
        _secure_table(conn, table, TABLES.get(table), roles)
        (report.tables if table in TABLES else report.unknown_tables).append(table)
    report.changed = _fingerprint(conn, schema, roles) != before
    return report


def _require_head(conn: Connection) -> None:
    """The policies name the columns of this nocctl's schema: secure at head only."""
    from nocctl.services import schema

    current, head = _exec(conn, "SELECT version_num FROM alembic_version").scalar(), schema.head()
    if current != head:
        raise Conflict(f"the schema is at {current}, not at this nocctl's {head}",
                       "run `nocctl db upgrade` first (it secures a secured database again by itself)")


def _serving_elsewhere(conn: Connection, roles: Roles) -> str | None:
    """Another database whose privileges name one of `roles`: the same prefix twice on a cluster."""
    return _exec(conn,
        "SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee"
        f" WHERE d.datname <> current_database() AND r.rolname IN ({', '.join(_lit(r) for r in roles)})"
        " ORDER BY 1 LIMIT 1").scalar()


def _create_functions(conn: Connection, schema: str, roles: Roles) -> None:
    run = functools.partial(_exec, conn)
    path = _q(conn, schema)
    for signature, body in FUNCTIONS.items():
        run(f"CREATE OR REPLACE FUNCTION {signature} RETURNS bigint[] LANGUAGE sql STABLE SECURITY DEFINER"
            f" PARALLEL SAFE SET search_path = {path}, pg_temp AS $fn$ {body} $fn$")
    run(_HEAD_FUNCTION.replace("@s@", path).replace("@owner@", _lit(roles.owner))
        .replace("@service@", _lit(roles.service)))
    marker = json.dumps({**roles.as_dict(), "version": VERSION}, sort_keys=True)
    run(f"CREATE OR REPLACE FUNCTION {MARKER}() RETURNS text LANGUAGE sql IMMUTABLE"
        f" AS $fn$ SELECT {_lit(marker)}::text $fn$")


def _secure_table(conn: Connection, table: str, rules: Rules | None, roles: Roles) -> None:
    run = functools.partial(_exec, conn)
    t = _q(conn, table)
    owner, person, service = (_q(conn, r) for r in roles)
    run(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
    run(f"CREATE POLICY noc_owner_all ON {t} TO {owner} USING (true) WITH CHECK (true)")
    run(f"CREATE POLICY noc_service_all ON {t} TO {service} USING (true) WITH CHECK (true)")
    service_grants = "SELECT, INSERT" if table == "audit_log" else "SELECT, INSERT, UPDATE, DELETE"
    run(f"GRANT {service_grants} ON {t} TO {service}")
    if rules is None:  # a table this nocctl does not know: closed to persons
        return
    run(f"GRANT SELECT ON {t} TO {person}")
    run(f"CREATE POLICY {PERSON_POLICY}select ON {t} FOR SELECT TO {person} USING {rules.select}")
    if rules.insert is not None:
        run(f"GRANT INSERT ON {t} TO {person}")
        run(f"CREATE POLICY {PERSON_POLICY}insert ON {t} FOR INSERT TO {person} WITH CHECK {rules.insert}")
    if rules.update is not None:
        columns = f" ({', '.join(rules.update_columns)})" if rules.update_columns else ""
        run(f"GRANT UPDATE{columns} ON {t} TO {person}")
        run(f"CREATE POLICY {PERSON_POLICY}update ON {t} FOR UPDATE TO {person} USING {rules.update}"
            f" WITH CHECK {rules.update}")
    if rules.delete is not None:
        run(f"GRANT DELETE ON {t} TO {person}")
        run(f"CREATE POLICY {PERSON_POLICY}delete ON {t} FOR DELETE TO {person} USING {rules.delete}")


# ---------------------------------------------------------------- around migrations

def before_migration(engine: Engine) -> bool:
    """On a secured database, drop the persons' policies before a migration changes the
    tables they name (a dropped column would be refused): persons see nothing until
    `after_migration`, so a failed migration fails closed. True when the database is secured."""
    if not _is_postgres(engine):
        return False
    with engine.begin() as conn:
        if configured_roles(conn) is None:
            return False
        schema = _exec(conn, "SELECT current_schema()").scalar()
        for table, policy in _exec(conn,
                f"SELECT tablename, policyname FROM pg_policies WHERE schemaname = {_lit(schema or '')}"
                f" AND starts_with(policyname, '{PERSON_POLICY}')").all():
            _exec(conn, f"DROP POLICY {_q(conn, policy)} ON {_q(conn, table)}")
    return True


def after_migration(engine: Engine, at_head: bool) -> Report | None:
    """Re-apply `secure` after a migration of a secured database — at head only (the
    policies name this nocctl's columns); below head the persons' policies stay dropped."""
    if not at_head:
        return None
    return secure(engine)


# ---------------------------------------------------------------- user db-role

@dataclass
class Mapping:
    username: str
    role: str
    group: str
    role_created: bool
    previous: str | None
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "db_role": self.role, "group": self.group,
                "role_created": self.role_created, "previous_db_role": self.previous, "changed": self.changed}


def role_for(username: str) -> str:
    """The default login role of a person: the username as an identifier."""
    name = re.sub(r"[^a-z0-9_]", "_", username.lower())
    if not re.match(r"[a-z_]", name) or name.startswith("pg_"):
        name = "noc_" + name
    return name[:MAX_IDENTIFIER]


def map_role(session: Session, caller: Caller, username: str, role: str | None = None,
             service: bool = False) -> Mapping:
    """Create (if missing) the LOGIN role `role` (default: from the username; no password:
    authentication is the DBA's), make it a member of the persons group (`service`: of the
    services group instead) and map it to the person. Needs noc:configure tenant-wide, and a
    database login that may manage roles. Audited as CONFIG_CHANGE."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from nocctl.models import Person
    from nocctl.services import access, audit, integrations, people

    if session.get_bind().dialect.name != "postgresql":
        raise sqlite_refusal()
    role = check_identifier(role, "role name") if role is not None else check_identifier(role_for(username),
                                                                                         "role name")
    try:
        with session.begin():
            conn = session.connection()
            roles = configured_roles(conn)
            if roles is None:
                raise Conflict("this database is not secured", "run `nocctl db secure` first")
            scope = access.for_caller(session, caller)
            scope.require(CONFIGURE)
            actor = scope.actor
            person = people.find(session, actor.tenant_id, username)
            if integrations.is_integration(username):  # a key is its only way in
                raise integrations.managed_elsewhere(username)
            if role in roles:
                raise UsageError(f"{role!r} is one of this database's group roles", "name a login role")
            other = session.scalar(select(Person.username).where(
                Person.tenant_id == actor.tenant_id, Person.db_role == role, Person.id != person.id))
            if other is not None:
                raise Conflict(f"role {role!r} is mapped to {other!r} already",
                               f"map {other!r} to another role first")
            created = _ensure_login(conn, role, roles)
            group, other_group = (roles.service, roles.person) if service else (roles.person, roles.service)
            was_member = _member(conn, role, group)
            q = lambda name: _q(conn, name)  # noqa: E731
            if not was_member:
                _exec(conn, f"GRANT {q(group)} TO {q(role)}")
            if _member(conn, role, other_group, direct=True):
                _exec(conn, f"REVOKE {q(other_group)} FROM {q(role)}")
            previous = person.db_role
            if previous and previous != role and _unused(session, previous, person.id):
                # The old login no longer maps to anyone here: out of this database's groups.
                for name in (roles.person, roles.service):
                    if _member(conn, previous, name, direct=True):
                        _exec(conn, f"REVOKE {q(name)} FROM {q(previous)}")
            changed = created or not was_member or previous != role
            person.db_role = role
            session.flush()
            if changed:
                audit.record(session, actor, "CONFIG_CHANGE", "person", person.id,
                             {"change": "user db-role", "username": username, "db_role": role,
                              "group": "service" if service else "person", "role_created": created,
                              "previous_db_role": previous})
            return Mapping(username, role, "service" if service else "person", created, previous, changed)
    except DBAPIError as exc:
        if _denied(exc):
            raise PermissionDenied(
                f"the database login may not manage roles ({str(exc.orig).splitlines()[0]})",
                "run `nocctl user db-role` as the DBA's login (a superuser, or CREATEROLE with ADMIN on the"
                " groups)") from None
        raise


def _member(conn: Connection, role: str, group: str, direct: bool = False) -> bool:
    if direct:
        return bool(_exec(conn,
            "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid"
            f" WHERE r.rolname = {_lit(role)} AND g.rolname = {_lit(group)}").scalar())
    return bool(_exec(conn, f"SELECT pg_has_role({_lit(role)}, {_lit(group)}, 'MEMBER')").scalar())


def _unused(session: Session, role: str, person_id: int) -> bool:
    from sqlalchemy import select

    from nocctl.models import Person

    return session.scalar(select(Person.id).where(Person.db_role == role, Person.id != person_id).limit(1)) is None


def _ensure_login(conn: Connection, role: str, roles: Roles) -> bool:
    """Create the LOGIN role if missing (True), else check that the database can hold it to
    a person's grants: not a superuser, no BYPASSRLS, inheriting, not the owner."""
    row = _exec(conn, "SELECT rolsuper, rolbypassrls, rolinherit, rolcanlogin FROM pg_roles"
                               f" WHERE rolname = {_lit(role)}").first()
    if row is None:
        _exec(conn, f"CREATE ROLE {_q(conn, role)} LOGIN")
        return True
    superuser, bypass, inherit, login = row
    if superuser or bypass:
        raise Conflict(f"role {role!r} is a superuser or bypasses row-level security: the database could not hold"
                       " it to the person's grants", "map a role of its own (the DBA keeps the superuser login)")
    if _member(conn, role, roles.owner):
        raise Conflict(f"role {role!r} is a member of {roles.owner}: it could alter the tables",
                       "map a role of its own")
    if not inherit:
        raise Conflict(f"role {role!r} is NOINHERIT: it would not have its group's privileges",
                       f"ALTER ROLE {role} INHERIT, or map another role")
    if not login:
        raise Conflict(f"role {role!r} cannot log in", f"ALTER ROLE {role} LOGIN, or map another role")
    return False
