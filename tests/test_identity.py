"""Who the caller is, and when they may act as someone else (DESIGN §3a), on the backend
under test, with a real second operating-system user: the test creates one (`useradd`,
removed with `userdel -r` afterwards) and runs `python -m nocctl …` under it (`setpriv`).

The org: clients ACME (sites ACME-1, ACME-2) and HIDDEN (site HIDDEN-1). U is a person with
noc:view_client, noc:ack_alerts and noc:ingest over ACME and noc:configure over site ACME-1
only: HIDDEN is invisible to U. The admin is the login running the tests.

Also here: `user can-i`, who sees whom (`user list/show`), and "invisible = not found (3),
never 77" across commands, ingest reject reasons included. Those run as the OS user U when
the tests run as root; otherwise as the person U through the admin's `--as` (the same scope),
so that they run everywhere. The tests of the identity itself need the real OS user: they
are skipped, saying why, when the tests do not run as root."""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from conftest import BACKEND, LOGIN
from nocctl.db import make_engine, make_sessionmaker
from nocctl.errors import PermissionDenied
from nocctl.services import rbac
from nocctl.services.rbac import Caller

PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
ADMIN = LOGIN

NOT_ROOT = "needs root: the test creates a second OS user (useradd) and runs nocctl as that user (setpriv)"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: the identity tests need it to run nocctl as a second OS user"
        if IN_CI:
            pytest.fail(message + " (CI=true: this must not be skipped)")
        pytest.skip(message)
    return found


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class OsUser:
    name: str
    uid: int
    gid: int
    home: str


@pytest.fixture(scope="module")
def os_user():
    """A fresh OS user (random name) whose primary group is its own, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip(NOT_ROOT)
    useradd, userdel, groupdel = _tool("useradd"), _tool("userdel"), _tool("groupdel")
    _tool("setpriv")
    name = f"noc{secrets.token_hex(4)}"
    _run(useradd, "--create-home", "--user-group", "--shell", "/bin/sh", name)
    try:
        entry = pwd.getpwnam(name)
        yield OsUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    finally:
        subprocess.run([userdel, "-r", name], capture_output=True)
        subprocess.run([groupdel, name], capture_output=True)  # when userdel left the group


def _python_for(user: OsUser) -> tuple[list[str], dict[str, str]]:
    """An interpreter the user may run, with nocctl and its dependencies importable: this
    one (e.g. CI's), else the system's of the same version over this environment's
    packages (here the interpreter may live in a directory only root may enter)."""
    setpriv = [_tool("setpriv"), "--reuid", str(user.uid), "--regid", str(user.gid), "--init-groups"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths = os.pathsep.join(dict.fromkeys([str(PROJECT), sysconfig.get_paths()["purelib"],
                                           sysconfig.get_paths()["platlib"]]))
    candidates = [([sys.executable], {}), ([f"/usr/bin/{version}"], {"PYTHONPATH": paths}),
                  ([f"/usr/local/bin/{version}"], {"PYTHONPATH": paths})]
    for argv, extra in candidates:
        probe = subprocess.run([*setpriv, *argv, "-c", "import nocctl.cli, sqlalchemy, psycopg"],
                               capture_output=True, text=True, env={"PATH": os.environ["PATH"], **extra})
        if probe.returncode == 0:
            return [*setpriv, *argv], extra
    pytest.fail(f"no Python interpreter that {user.name} may run imports nocctl: tried "
                + ", ".join(a[0] for a, _ in candidates))


@pytest.fixture(scope="module")
def python_as_user(os_user):
    return _python_for(os_user)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The one `nocctl: error:` line (other lines, e.g. a file-mode warning, aside)."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("nocctl: error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0].removeprefix("nocctl: error: ")


class World:
    """The database, the admin (in-process, as the test's login) and U: the OS user (a
    subprocess under its own uid) when `real`, else the person U acted as through `--as`."""

    def __init__(self, url: str, shared: Path, user: OsUser, python: tuple[list[str], dict[str, str]] | None):
        self.url, self.shared, self.user, self.python = url, shared, user, python
        self.real = python is not None
        self.config = shared / "empty.toml"
        self.config.write_text("")
        self.config.chmod(0o644)

    # ------------------------------------------------------------ running

    def admin(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        from nocctl.cli import cli as root

        result = CliRunner().invoke(root, list(args), input=input, catch_exceptions=False,
                                    env={"NOC_DATABASE_URL": self.url, "NOC_CONFIG": str(self.config), **(env or {})})
        return Result(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self.admin(*args, input=input)
        assert result.exit_code == 0, (args, result.stderr)
        return result

    def user_run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        if self.python is None:  # not root: the same person, through the admin's --as
            return self.admin("--as", self.user.name, *args, input=input, env=env)
        argv, extra = self.python
        environment = {"PATH": os.environ["PATH"], "HOME": self.user.home, "LANG": "C.UTF-8",
                       "PYTHONDONTWRITEBYTECODE": "1", "NOC_DATABASE_URL": self.url,
                       "NOC_CONFIG": str(self.config), "XDG_CONFIG_HOME": f"{self.user.home}/.config",
                       "XDG_DATA_HOME": f"{self.user.home}/.local/share", **extra, **(env or {})}
        done = subprocess.run([*argv, "-m", "nocctl", *args], input=input, capture_output=True, text=True,
                              env=environment, cwd=self.user.home, timeout=120)
        return Result(done.returncode, done.stdout, done.stderr)

    # ------------------------------------------------------------ looking

    def sql(self, query: str, **params) -> list[tuple]:
        engine = create_engine(make_url(self.url).set(
            drivername="postgresql+psycopg" if self.url.startswith("postgresql") else "sqlite"))
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(query), params)]
        finally:
            engine.dispose()

    def alert_id(self, entity: str) -> int:
        return self.sql("SELECT id FROM alert WHERE entity_id = :e", e=entity)[0][0]


ORG = {
    "people": [{"username": "carol", "email": "carol@hidden.example"},
               {"username": "dave", "email": "dave@acme.example", "phone": "+91-2"},
               {"username": "erin", "email": "erin@acme.example", "phone": "+91-3"},
               {"username": "frank", "email": "frank@example.com"}],
    "clients": [{"code": "ACME", "name": "Acme"}, {"code": "HIDDEN", "name": "Hidden"}],
    "sites": [{"code": "ACME-1", "client": "ACME", "name": "Acme One"},
              {"code": "ACME-2", "client": "ACME", "name": "Acme Two"},
              {"code": "HIDDEN-1", "client": "HIDDEN", "name": "Hidden One"}],
}


def _alert(entity: str, site: str) -> dict:
    return {"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": f"offline {entity}", "site": site,
            "entity_type": "device", "entity_id": entity, "occurred_at": "2025-01-01T10:00:00Z"}


def ndjson(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def world(db_url, request):
    """The org above, two alerts (ACME-1: `acme-cam`, HIDDEN-1: `hidden-cam`), and U's grants.
    SQLite: the database is copied into a directory of U's group (the file 0660), since
    the test's own temporary directory is the test login's alone."""
    shared = Path(tempfile.mkdtemp(prefix="nocctl-identity-"))
    try:
        python = None
        if os.geteuid() == 0:
            os_user, python = request.getfixturevalue("os_user"), request.getfixturevalue("python_as_user")
            os.chown(shared, 0, os_user.gid)
            shared.chmod(0o2770)
        else:
            os_user = OsUser(f"noc{secrets.token_hex(4)}", os.getuid(), os.getgid(), str(shared))
        url = db_url
        if BACKEND == "sqlite" and python is not None:
            source = Path(make_url(db_url).database or "")
            target = shared / "noc.db"
            shutil.copyfile(source, target)
            os.chown(target, 0, os_user.gid)
            target.chmod(0o660)
            url = f"sqlite:///{target}"
        world = World(url, shared, os_user, python)
        world.ok("init")
        world.ok("org", "import", "-", input=json.dumps({**ORG, "people": [*ORG["people"],
                                                                        {"username": os_user.name}]}))
        u = os_user.name
        for grant in (("noc:view_client", "--client", "ACME"), ("noc:ack_alerts", "--client", "ACME"),
                      ("noc:ingest", "--client", "ACME"), ("noc:configure", "--site", "ACME-1")):
            world.ok("user", "grant", u, *grant)
        world.ok("user", "grant", "carol", "noc:view_client", "--client", "HIDDEN")
        world.ok("user", "grant", "dave", "noc:view_assigned_sites", "--site", "ACME-1")
        world.ok("user", "grant", "dave", "noc:ack_alerts", "--site", "HIDDEN-1")  # a grant U may not be shown
        world.ok("user", "grant", "erin", "noc:ack_alerts", "--client", "ACME")
        world.ok("ingest", input=ndjson(_alert("acme-cam", "ACME-1"), _alert("hidden-cam", "HIDDEN-1")))
        yield world
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def real_user(world):
    """For the tests of the identity itself: U must be a real OS user."""
    if not world.real:
        pytest.skip(NOT_ROOT)


def refused_for_impersonation(result: Result, login: str, via: str) -> None:
    assert result.exit_code == 77, result.stderr
    assert result.stdout == ""
    assert result.error == (f"{login!r} may not act as {ADMIN!r} ({via}): that needs noc:impersonate (tenant-wide);"
                            f" an admin can run `nocctl user grant {login} noc:impersonate`")


# ---------------------------------------------------------------- impersonation

def test_the_os_user_cannot_act_as_the_admin_through_any_claim(world, real_user):
    u = world.user.name
    acme = world.alert_id("acme-cam")
    refused_for_impersonation(world.user_run("--as", ADMIN, "alert", "ack", str(acme)), u, "--as")
    refused_for_impersonation(world.user_run("alert", "ack", str(acme), env={"NOC_ACTOR": ADMIN}), u, "NOC_ACTOR")
    config = world.shared / "actor.toml"
    config.write_text(f'actor = "{ADMIN}"\n')
    config.chmod(0o644)
    refused_for_impersonation(world.user_run("alert", "ack", str(acme), env={"NOC_CONFIG": str(config)}), u,
                              "the config's actor")
    # The attack: granting oneself the whole tenant through the admin's name.
    refused_for_impersonation(world.user_run("--as", ADMIN, "user", "grant", u, "noc:view_all_clients"), u, "--as")
    # Nothing changed: the alert is still NEW, no grant was added, no audit row written.
    assert world.sql("SELECT status FROM alert WHERE id = :i", i=acme) == [("NEW",)]
    assert world.sql("SELECT count(*) FROM access_grant g JOIN person p ON p.id = g.person_id"
                     " WHERE p.username = :u AND g.capability IN ('noc:view_all_clients', 'noc:impersonate')",
                     u=u) == [(0,)]
    assert world.sql("SELECT count(*) FROM audit_log WHERE os_user = :u", u=u) == [(0,)]
    # Naming oneself is no impersonation; acting as oneself works as ever.
    done = world.user_run("--as", u, "alert", "ack", str(acme))
    assert done.exit_code == 0, done.stderr
    (details,) = world.sql("SELECT details FROM audit_log WHERE action = 'ACKNOWLEDGE'")[0]
    assert "impersonated_by" not in (json.loads(details) if isinstance(details, str) else details)


def test_a_refusal_does_not_tell_whether_the_claimed_person_exists(world, real_user):
    u = world.user.name
    for someone in ("dave", "ghost"):
        result = world.user_run("--as", someone, "alert", "list")
        assert result.exit_code == 77
        assert result.error.startswith(f"{u!r} may not act as {someone!r} (--as): that needs noc:impersonate")


def test_with_noc_impersonate_it_works_and_the_audit_row_keeps_both(world, real_user):
    u = world.user.name
    acme = world.alert_id("acme-cam")
    world.ok("user", "grant", u, "noc:impersonate")
    done = world.user_run("--as", ADMIN, "alert", "ack", str(acme))
    assert done.exit_code == 0, done.stderr
    assert world.sql("SELECT status FROM alert WHERE id = :i", i=acme) == [("ACKNOWLEDGED",)]
    ((actor, os_user, details),) = world.sql(
        "SELECT p.username, a.os_user, a.details FROM audit_log a JOIN person p ON p.id = a.actor_id"
        " WHERE a.action = 'ACKNOWLEDGE'")
    details = json.loads(details) if isinstance(details, str) else details
    assert (actor, os_user, details["impersonated_by"]) == (ADMIN, u, u)
    # As the admin, U now sees the hidden client too; the chain still verifies.
    hidden = world.user_run("--as", ADMIN, "alert", "show", str(world.alert_id("hidden-cam")))
    assert hidden.exit_code == 0, hidden.stderr
    assert world.admin("audit", "verify").exit_code == 0
    # And the grant is tenant-wide only.
    assert world.admin("user", "grant", "dave", "noc:impersonate", "--client", "ACME").exit_code == 65


def test_a_login_that_is_no_person_is_refused_naming_the_grant(world, real_user):
    engine = make_engine(world.url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM access_grant WHERE person_id = (SELECT id FROM person WHERE username = :u)"),
                     {"u": world.user.name})
        conn.execute(text("DELETE FROM person WHERE username = :u"), {"u": world.user.name})
    engine.dispose()
    u = world.user.name
    result = world.user_run("--as", ADMIN, "alert", "list")
    assert result.exit_code == 77
    assert result.error == (f"{u!r} may not act as {ADMIN!r} (--as): that needs noc:impersonate (tenant-wide), and "
                            f"{u!r} is not a NOC operator of tenant 'default'; an admin can run "
                            f"`nocctl user add {u}` and `nocctl user grant {u} noc:impersonate`")
    plain = world.user_run("alert", "list")
    assert plain.exit_code == 77 and plain.error.startswith(f"{u!r} is not a NOC operator of tenant 'default'")


def test_a_delegation_is_honoured_only_inside_its_own_block(world):
    engine = make_engine(world.url)
    factory = make_sessionmaker(engine)
    caller = Caller("default", None, LOGIN, "testhost")
    try:
        with factory() as session, session.begin():
            retrier = rbac.authenticate(session, Caller("default", None, world.user.name, "h"))
            with rbac.delegating(retrier, "test") as delegation:
                inside = rbac.authenticate(session, caller.delegated("erin", delegation))
                forged = rbac.Delegation(retrier, "test")
                with pytest.raises(PermissionDenied):  # not the live delegation of this block
                    rbac.authenticate(session, caller.delegated("erin", forged))
            with pytest.raises(PermissionDenied):  # the block is over
                rbac.authenticate(session, caller.delegated("erin", delegation))
        assert (inside.username, inside.impersonated_by) == ("erin", world.user.name)
    finally:
        engine.dispose()


def test_a_reject_retry_resubmits_as_its_sender_without_noc_impersonate(world):
    u = world.user.name
    world.ok("user", "grant", u, "noc:ingest")  # tenant-wide: U may retry everyone's rejects
    sent = world.admin("--as", "erin", "ingest", input=ndjson(_alert("late-cam", "ACME-3")))
    assert sent.exit_code == 77  # erin may not ingest at all
    world.ok("user", "grant", "erin", "noc:ingest", "--client", "ACME")
    sent = world.admin("--as", "erin", "ingest", input=ndjson(_alert("late-cam", "ACME-3")))
    assert sent.exit_code == 65 and "unknown site 'ACME-3'" in sent.stderr
    world.ok("org", "site", "add", "ACME-3", "--client", "ACME", "--name", "Acme Three")
    retried = world.user_run("ingest", "rejects", "retry", "--json")
    assert retried.exit_code == 0, retried.stderr
    assert json.loads(retried.stdout) == {"retried": 1, "accepted": 1, "rejected": 0}
    assert world.sql("SELECT count(*) FROM alert WHERE entity_id = 'late-cam'") == [(1,)]
    if world.real:  # the delegation was that code path's alone: U still may not act as erin
        assert world.user_run("--as", "erin", "alert", "list").exit_code == 77


# ---------------------------------------------------------------- user can-i

def test_can_i_answers_with_the_grant_or_what_is_missing(world):
    u = world.user.name

    def can_i(*args: str, who: tuple[str, ...] = ()) -> Result:
        return world.user_run(*who, "user", "can-i", *args, "--format", "json")

    allowed = can_i("noc:ack_alerts", "--site", "ACME-2")  # through the client grant
    assert allowed.exit_code == 0, allowed.stderr
    assert json.loads(allowed.stdout) == {
        "person": u, "capability": "noc:ack_alerts", "scope": "site", "unit": "ACME-2", "allowed": True,
        "granted_scope": "client", "granted_unit": "ACME"}
    table = world.user_run("user", "can-i", "noc:configure", "--site", "ACME-1")
    assert table.exit_code == 0 and table.stdout.split() == [
        "allowed", "yes", "person", u, "capability", "noc:configure", "scope", "site", "unit", "ACME-1"]

    missing = world.user_run("user", "can-i", "noc:configure", "--client", "ACME")
    assert (missing.exit_code, missing.stdout) == (77, "")
    assert missing.error == (f"{u!r} lacks noc:configure for client ACME; an admin can run "
                             f"`nocctl user grant {u} noc:configure --client ACME`")
    denied_json = can_i("noc:ack_alerts")
    assert denied_json.exit_code == 77 and json.loads(denied_json.stdout)["allowed"] is False
    assert denied_json.error == (f"{u!r} lacks noc:ack_alerts tenant-wide; an admin can run "
                                 f"`nocctl user grant {u} noc:ack_alerts`")
    assert world.user_run("user", "can-i", "noc:impersonate").error == (
        f"{u!r} lacks noc:impersonate tenant-wide; an admin can run `nocctl user grant {u} noc:impersonate`")

    for args, words in ((("--client", "HIDDEN"), "no client 'HIDDEN'"), (("--client", "NOPE"), "no client 'NOPE'"),
                        (("--site", "HIDDEN-1"), "no site 'HIDDEN-1'"), (("--site", "ACME"), "no site 'ACME'")):
        hidden = world.user_run("user", "can-i", "noc:ack_alerts", *args)
        assert (hidden.exit_code, hidden.stdout, hidden.error) == (3, "", f"{words}; see `nocctl org list`")

    unknown = world.user_run("user", "can-i", "noc:fly")
    assert unknown.exit_code == 2 and unknown.error.startswith("unknown capability 'noc:fly'")
    assert world.user_run("user", "can-i", "noc:view", "--client", "ACME", "--site", "ACME-1").exit_code == 2


def test_can_i_for_someone_else_needs_noc_impersonate(world, real_user):
    u = world.user.name

    def can_i(*args: str, who: tuple[str, ...] = ()) -> Result:
        return world.user_run(*who, "user", "can-i", *args, "--format", "json")

    refused_for_impersonation(world.user_run("--as", ADMIN, "user", "can-i", "noc:configure"), u, "--as")
    world.ok("user", "grant", u, "noc:impersonate")
    theirs = can_i("noc:ack_alerts", "--client", "ACME", who=("--as", "erin"))
    assert theirs.exit_code == 0, theirs.stderr
    assert json.loads(theirs.stdout)["person"] == "erin"
    admin = can_i("noc:configure", "--site", "HIDDEN-1", who=("--as", ADMIN))
    assert (admin.exit_code, json.loads(admin.stdout)["granted_scope"]) == (0, "tenant")


# ---------------------------------------------------------------- people visibility

def test_people_are_shown_within_the_callers_scope(world):
    u = world.user.name
    listed = world.user_run("user", "list", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    people = {p["username"]: p for p in json.loads(listed.stdout)}
    # Themselves, dave (a grant over ACME-1) and erin (over ACME); not carol (HIDDEN only),
    # frank (no grant) or the admin (tenant-wide grants name no unit).
    assert sorted(people) == sorted(["dave", "erin", u])
    # Contact details need noc:configure over one of the person's units: U's is over ACME-1.
    assert (people["dave"]["email"], people["dave"]["phone"]) == ("dave@acme.example", "+91-2")
    assert (people["erin"]["email"], people["erin"]["phone"]) == (None, None)

    for hidden in ("carol", "frank", ADMIN, "ghost"):
        shown = world.user_run("user", "show", hidden)
        assert (shown.exit_code, shown.stdout, shown.error) == (3, "", f"no person {hidden!r}; see `nocctl user list`")
    dave = json.loads(world.user_run("user", "show", "dave", "--format", "json").stdout)
    # dave's grant over HIDDEN-1 is not shown: it would name a site U may not know of.
    assert dave["grants"] == [{"capability": "noc:view_assigned_sites", "scope": "site", "unit": "ACME-1"}]
    me = json.loads(world.user_run("user", "show", u, "--format", "json").stdout)
    assert len(me["grants"]) == 4

    # A tenant-wide viewer and configurer sees everyone, with contact details.
    everyone = {p["username"]: p for p in json.loads(world.ok("user", "list", "--format", "json").stdout)}
    assert sorted(everyone) == sorted(["carol", "dave", "erin", "frank", u, ADMIN])
    assert everyone["frank"]["email"] == "frank@example.com"
    assert len(json.loads(world.ok("user", "show", "dave", "--format", "json").stdout)["grants"]) == 2


# ---------------------------------------------------------------- invisible = not found

def same_as_missing(hidden: Result, missing: Result, code: str, nope: str) -> None:
    """A hidden unit and one that does not exist get the same exit and the same words."""
    assert hidden.exit_code == missing.exit_code == 3, (hidden.stderr, missing.stderr)
    assert hidden.stdout == missing.stdout == ""
    assert hidden.error.replace(code, "X") == missing.error.replace(nope, "X")


def test_a_hidden_client_or_site_is_not_found_from_every_command(world):
    u = world.user.name
    run = world.user_run
    start = ("--start", "2030-01-01T00:00:00Z")

    # org site add: hidden 3, missing 3; a visible client without the grant 77.
    site_add = ("org", "site", "add", "NEW-1", "--name", "New", "--client")
    same_as_missing(run(*site_add, "HIDDEN"), run(*site_add, "NOPE"), "HIDDEN", "NOPE")
    visible = run(*site_add, "ACME")
    assert visible.exit_code == 77 and visible.error.startswith(f"{u!r} lacks noc:configure for client ACME")

    # incident create: a hidden alert, client or site.
    make = ("incident", "create", "--title", "t")
    same_as_missing(run(*make, "--alert", str(world.alert_id("hidden-cam"))), run(*make, "--alert", "999999"),
                    str(world.alert_id("hidden-cam")), "999999")
    same_as_missing(run(*make, "--severity", "HIGH", "--client", "HIDDEN"),
                    run(*make, "--severity", "HIGH", "--client", "NOPE"), "HIDDEN", "NOPE")
    same_as_missing(run(*make, "--severity", "HIGH", "--site", "HIDDEN-1"),
                    run(*make, "--severity", "HIGH", "--site", "NOPE-1"), "HIDDEN-1", "NOPE-1")
    assert run(*make, "--severity", "HIGH", "--site", "ACME-1").exit_code == 0

    # maintenance add and oncall schedule add.
    window = ("maintenance", "add", *start, "--duration", "1h", "--suppress-all", "--reason", "r", "--client")
    same_as_missing(run(*window, "HIDDEN"), run(*window, "NOPE"), "HIDDEN", "NOPE")
    assert run(*window, "ACME").exit_code == 77  # seen, but no noc:manage_maintenance
    schedule = ("oncall", "schedule", "add", "rota", "--member", u, *start, "--turn", "1d", "--client")
    same_as_missing(run(*schedule, "HIDDEN"), run(*schedule, "NOPE"), "HIDDEN", "NOPE")
    assert run(*schedule, "ACME").exit_code == 77  # seen, but noc:configure is over ACME-1 only

    # user grant over a hidden unit, and org list of a hidden client.
    same_as_missing(run("user", "grant", "dave", "noc:view", "--client", "HIDDEN"),
                    run("user", "grant", "dave", "noc:view", "--client", "NOPE"), "HIDDEN", "NOPE")
    same_as_missing(run("org", "list", "--client", "HIDDEN"), run("org", "list", "--client", "NOPE"), "HIDDEN", "NOPE")
    assert world.sql("SELECT count(*) FROM business_unit WHERE code = 'NEW-1'") == [(0,)]
    assert world.sql("SELECT count(*) FROM maintenance_window") == [(0,)]


def test_an_ingest_record_naming_a_hidden_unit_gets_the_reason_of_a_missing_one(world):
    records = [_alert("a", "HIDDEN-1"), _alert("b", "NOPE-1"),
               {**_alert("c", "ACME-1"), "site": None, "client": "HIDDEN"},
               {**_alert("d", "ACME-1"), "site": None, "client": "NOPE"},
               {**_alert("e", "ACME-1"), "client": "HIDDEN"},  # ACME-1 named with a hidden client
               _alert("ok", "ACME-2")]
    result = world.user_run("ingest", "--json", input=ndjson(*records))
    assert result.exit_code == 65, result.stderr
    assert json.loads(result.stdout)["rejected"] == 5
    reasons = [r["reason"] for r in sorted(json.loads(world.user_run(
        "ingest", "rejects", "list", "--format", "json").stdout), key=lambda r: r["line"])]
    assert reasons == ["unknown site 'HIDDEN-1'", "unknown site 'NOPE-1'", "unknown client 'HIDDEN'",
                       "unknown client 'NOPE'", "unknown client 'HIDDEN'"]
    assert "HIDDEN" not in result.stdout and "lacks" not in result.stderr
    # A site the sender sees but may not ingest for is refused as such (no secret to them).
    world.ok("user", "revoke", world.user.name, "noc:ingest", "--client", "ACME")
    world.ok("user", "grant", world.user.name, "noc:ingest", "--site", "ACME-1")
    refused = world.user_run("ingest", input=ndjson(_alert("f", "ACME-2")))
    assert refused.exit_code == 65 and f"{world.user.name!r} lacks noc:ingest for 'ACME-2'" in refused.stderr
    # A site feed may name its site's client.
    both = world.user_run("ingest", input=ndjson({**_alert("g", "ACME-1"), "client": "ACME"}))
    assert both.exit_code == 0, both.stderr


# ---------------------------------------------------------------- PostgreSQL: the login role is the caller

@pytest.mark.skipif(BACKEND != "postgresql", reason="the database login role is PostgreSQL's")
def test_the_person_mapped_to_the_login_role_is_the_caller(world):
    role = f"noc_t_{secrets.token_hex(4)}"
    admin = create_engine(make_url(world.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            conn.exec_driver_sql(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
            conn.exec_driver_sql(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
            conn.execute(text("UPDATE person SET db_role = :r WHERE username = 'erin'"), {"r": role})
        as_role = make_url(world.url).set(username=role).render_as_string(hide_password=False)
        # The test's login is the tenant admin, but through this role it is erin, who may
        # not impersonate: the OS login no longer decides.
        mine = world.admin("--db", as_role, "user", "can-i", "noc:ack_alerts", "--client", "ACME", "--format", "json")
        assert mine.exit_code == 0, mine.stderr
        assert json.loads(mine.stdout)["person"] == "erin"
        claimed = world.admin("--db", as_role, "--as", ADMIN, "alert", "list")
        assert claimed.exit_code == 77
        assert claimed.error.startswith(f"'erin' may not act as {ADMIN!r} (--as): that needs noc:impersonate")
        assert world.admin("--db", as_role, "user", "show", "carol").exit_code == 3
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()

