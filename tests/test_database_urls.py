"""Database URLs that cannot work fail the way a user and cron need (DESIGN §5), through the
real command line in a subprocess: a URL nocctl cannot use is a usage error (exit 2) naming
the accepted forms; a PostgreSQL database that is not there is "not found" (exit 3) with the
`createdb` remedy; a server that cannot be reached is a temporary failure (exit 75). Always
one `nocctl: error:` line, no traceback (unless -v), never the URL's password.

These tests choose their own URLs, so they run the same whichever backend the suite is on;
the PostgreSQL cases use the server at PG_SERVER (skipped when it is down, failed under CI)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.slow  # starts a process per case

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "Sup3r-s3cret"  # put in URLs to check that no message ever shows it

RECORD = json.dumps({"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "cam-01 offline",
                     "site": "ACME-BLR-WF", "entity_type": "device", "entity_id": "cam-01",
                     "occurred_at": "2026-03-01T10:00:00Z"}) + "\n"

# (arguments, stdin) of the commands every case is tried on.
COMMANDS = {
    "alert list": (["alert", "list"], None),
    "init": (["init"], None),
    "db upgrade": (["db", "upgrade"], None),
    "ingest": (["ingest"], RECORD),
}

FORMS = ("sqlite:///PATH", "postgresql://USER@HOST[:PORT]/DB", "postgres://", "postgresql+psycopg://")


def nocctl(url: str, *args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env["NOC_CONFIG"] = os.devnull
    if cwd is not None:  # nothing a failing command might create lands outside the test's directory
        env["HOME"] = env["XDG_DATA_HOME"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "nocctl", "--db", url, *args], input=stdin, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def home(tmp_path):
    """HOME, XDG_DATA_HOME and the working directory of the commands: empty, and a command
    refused for its URL leaves it so (the suite's own files stay in tmp_path)."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit `code`, nothing on stdout, exactly one `nocctl: error:` line holding `words`."""
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nocctl: error: "), result.stderr
    assert result.stderr.endswith("\n")
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return lines[0]


# ---------------------------------------------------------------- URLs nocctl cannot use: exit 2

UNUSABLE = {
    # unknown scheme
    "mysql": f"mysql://noc:{PASSWORD}@db.example/noc",
    "http": "http://host/db",
    # no URL at all (no scheme: nothing of it may be shown, it may be `user:password@host`)
    "word": "foo",
    "no-scheme": f"noc:{PASSWORD}@db.example/noc",
    "sqlite-one-slash": "sqlite:/var/lib/noc.db",
    # a port that is not one
    "port-not-a-number": f"postgresql://noc:{PASSWORD}@db.example:notaport/noc",
    "port-out-of-range": f"postgres://noc:{PASSWORD}@127.0.0.1:99999/noc",
    # an @ of the password not written %40 (SQLAlchemy would take the rest for the host)
    "unescaped-at": f"postgresql://noc:{PASSWORD}@x@db.example/noc",
    # SQLite without a file: each command is a process of its own, the data would vanish
    "sqlite-empty": "sqlite:///",
    "sqlite-memory": "sqlite://",
    # a driver nocctl does not use (and is not installed)
    "psycopg2": f"postgresql+psycopg2://noc:{PASSWORD}@db.example/noc",
    "asyncpg": "postgresql+asyncpg://noc@db.example/noc",
    # options libpq refuses before connecting (no server needed)
    "libpq-option": f"postgresql://noc:{PASSWORD}@127.0.0.1:1/noc?no_such_option=1",
    "libpq-value": f"postgresql://noc:{PASSWORD}@127.0.0.1:1/noc?sslmode=sometimes",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", UNUSABLE)
def test_a_url_nocctl_cannot_use_is_a_usage_error_naming_the_accepted_forms(case, command, home):
    args, stdin = COMMANDS[command]
    result = nocctl(UNUSABLE[case], *args, stdin=stdin, cwd=home)
    line = assert_one_error_line(result, 2, "database URL", *FORMS)
    assert "internal error" not in line and "retry" not in line
    assert list(home.iterdir()) == []  # init and db upgrade created nothing


def test_the_message_shows_the_url_it_refused_with_the_password_masked(home):
    line = assert_one_error_line(nocctl(UNUSABLE["mysql"], "alert", "list", cwd=home), 2)
    assert line.startswith("nocctl: error: unsupported database URL 'mysql://noc:***@db.example/noc'; use ")
    line = assert_one_error_line(nocctl(UNUSABLE["port-not-a-number"], "alert", "list", cwd=home), 2)
    assert "'postgresql://noc:***@db.example:notaport/noc' (its port is not a number)" in line


def test_a_sqlite_url_naming_a_directory_is_a_usage_error(home):
    for command in ("alert list", "init"):
        args, stdin = COMMANDS[command]
        assert_one_error_line(nocctl(f"sqlite:///{home}", *args, stdin=stdin, cwd=home), 2,
                              "directory", "sqlite:///PATH")


def test_v_shows_the_traceback_of_a_refused_url(home):
    result = nocctl("foo", "-v", "alert", "list", cwd=home)  # -v after --db URL: still the root's
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("nocctl: error: cannot parse the database URL")


# ---------------------------------------------------------------- PostgreSQL: missing database, unreachable


@pytest.fixture(scope="module")
def pg_admin():
    """A connection to the PostgreSQL server the cases below use (it is not the suite's)."""
    import psycopg

    try:
        conn = psycopg.connect(PG_SERVER, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI: the PostgreSQL server at {PG_SERVER} is unreachable: {exc}")
        pytest.skip(f"the PostgreSQL server at {PG_SERVER} is unreachable: {exc}")
    yield conn
    conn.close()


def database_exists(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://", "postgresql+psycopg://"])
def test_a_missing_postgresql_database_is_not_found_with_the_createdb_remedy(pg_admin, scheme, command, home):
    name = f"noctest_missing_{uuid.uuid4().hex[:12]}"
    assert not database_exists(pg_admin, name)
    args, stdin = COMMANDS[command]
    # the server trusts every login: the password is ignored, and must not be shown
    url = f"{scheme}postgres:{PASSWORD}@127.0.0.1:5432/{name}"
    line = assert_one_error_line(nocctl(url, *args, stdin=stdin, cwd=home), 3)
    assert line == (f'nocctl: error: PostgreSQL database "{name}" does not exist; create it with '
                    f"`createdb {name}` (as a role allowed to create databases), then run `nocctl init`")
    assert not database_exists(pg_admin, name)  # init cannot create it, and did not


def test_the_createdb_remedy_quotes_an_odd_database_name(pg_admin, home):
    name = f"noc test {uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name.replace(' ', '%20')}"
    line = assert_one_error_line(nocctl(url, "init", cwd=home), 3)
    assert f"`createdb '{name}'`" in line


UNREACHABLE = {
    "nothing-listening": f"postgresql://noc:{PASSWORD}@127.0.0.1:1/noc",
    "host-does-not-resolve": f"postgresql://noc:{PASSWORD}@nocctl-test.invalid/noc",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", UNREACHABLE)
def test_an_unreachable_server_is_a_temporary_failure(case, command, home):
    args, stdin = COMMANDS[command]
    assert_one_error_line(nocctl(UNREACHABLE[case], *args, stdin=stdin, cwd=home), 75,
                          "database unavailable", "retry")


def test_the_reachable_server_of_these_tests_works(pg_admin, home):
    """The control case: the same commands on a database that exists do not fail this way."""
    result = nocctl(PG_SERVER, "db", "current", cwd=home)
    assert result.returncode in (0, 3), result.stderr  # 3: no nocctl schema in that database
    assert "does not exist" not in result.stderr and "unavailable" not in result.stderr
