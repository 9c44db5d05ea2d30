"""Test fixtures. Every test runs against a real database: SQLite by default, PostgreSQL
when NOC_TEST_DATABASE_URL names a server (the suite creates its own randomly named
databases there and drops them afterwards)."""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from nocctl.db import make_engine, make_sessionmaker, normalise_url
from nocctl.services import schema, tenants
from nocctl.services.rbac import Caller, os_login

PG_SERVER = os.environ.get("NOC_TEST_DATABASE_URL")
BACKEND = "postgresql" if PG_SERVER else "sqlite"
LOGIN = os_login()


def pytest_report_header(config):
    shown = f" ({make_url(PG_SERVER).render_as_string(hide_password=True)})" if PG_SERVER else ""
    return f"nocctl test backend: {BACKEND}" + shown


class PostgresServer:
    """Creates and drops throw-away databases on the server named by NOC_TEST_DATABASE_URL."""

    def __init__(self, url: str):
        self.url = make_url(normalise_url(url))
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self) -> str:
        name = f"noctest_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server():
    if not PG_SERVER:
        yield None
        return
    server = PostgresServer(PG_SERVER)
    yield server
    server.admin.dispose()


@pytest.fixture
def empty_db_url(pg_server, tmp_path):
    """A database with nothing in it (for migration tests)."""
    if pg_server is None:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = pg_server.create()
    yield url
    pg_server.drop(url)


@pytest.fixture(scope="session")
def template_db(pg_server, tmp_path_factory):
    """One database migrated to head per test session; tests get a clean copy of it."""
    if pg_server is None:
        path = tmp_path_factory.mktemp("template") / "noc.db"
        engine = make_engine(f"sqlite:///{path}", create=True)
        schema.upgrade(engine)
        engine.dispose()
        yield path
        return
    url = pg_server.create()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    yield url
    pg_server.drop(url)


@pytest.fixture
def db_url(template_db, tmp_path):
    """A migrated, empty database of the backend under test."""
    if isinstance(template_db, Path):
        target = tmp_path / "noc.db"
        shutil.copy(template_db, target)  # its mode too: 0600, as nocctl made it
        return f"sqlite:///{target}"
    engine = create_engine(template_db)
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
        )).scalars().all()
        if tables:
            # Replica mode skips the audit log's append-only triggers for this clean-up.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    engine.dispose()
    return template_db


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def new_session(engine):
    """Call to get a fresh Session (services own their transactions)."""
    factory = make_sessionmaker(engine)
    return factory


@pytest.fixture
def caller():
    """The invoking login, acting as itself (the tenant admin after `initialised`)."""
    return Caller(tenant="default", username=None, os_user=LOGIN, host="testhost")


def as_person(username: str) -> Caller:
    return Caller(tenant="default", username=username, os_user=LOGIN, host="testhost")


@pytest.fixture
def initialised(new_session, caller):
    """A tenant `default` whose admin is the invoking login."""
    tenants.initialise(new_session(), caller, LOGIN)
    return caller


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch, tmp_path):
    """No config, data or clock leaks in from the machine running the tests."""
    empty = tmp_path / "config.toml"
    empty.write_text("")
    monkeypatch.setenv("NOC_CONFIG", str(empty))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    for name in ("NOC_DATABASE_URL", "NOC_TENANT", "NOC_ACTOR", "NOC_NOW"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(db_url, monkeypatch):
    """Run `nocctl ARGS…` in-process against the test database; returns exit code, stdout, stderr."""
    from nocctl.cli import cli as root

    monkeypatch.setenv("NOC_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict | None = None) -> Result:
        result = runner.invoke(root, list(args), input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def admin_cli(cli):
    """`cli` on an initialised database (tenant `default`, the login is admin)."""
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    return cli
