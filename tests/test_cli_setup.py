"""`nocctl init`, `nocctl db upgrade/downgrade/current/history`, `nocctl config show`,
through the command line, on the backend under test."""
from __future__ import annotations

import csv
import io
import itertools
import json

import pytest

from nocctl.services import schema
from nocctl.services.rbac import os_login
from nocctl.vocabulary import CAPABILITIES

LOGIN = os_login()
HEAD = schema.head()


def assert_error(result, code: int, message: str) -> None:
    """A failure: nothing on stdout, exactly one `nocctl: error:` line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"nocctl: error: {message}\n")


@pytest.fixture
def fresh(cli, empty_db_url):
    """`nocctl --db EMPTY …`: a database with no schema yet (SQLite: no file yet)."""

    def run(*args, **kwargs):
        return cli("--db", empty_db_url, *args, **kwargs)

    run.url = empty_db_url
    return run


def make_empty_sqlite_file_if_needed(url: str) -> None:
    """SQLite: an existing but empty database file (PostgreSQL: the database exists already)."""
    if url.startswith("sqlite"):
        import sqlite3

        sqlite3.connect(url.removeprefix("sqlite:///")).close()


# ---------------------------------------------------------------- init


def test_init_on_an_empty_database_creates_schema_tenant_and_admin(fresh):
    result = fresh("init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"database  {fresh.url}\n"
        f"schema    {HEAD} (upgraded from empty)\n"
        f"tenant    default (created)\n"
        f"admin     {LOGIN} ({len(CAPABILITIES)} capabilities granted)\n"
    )
    assert result.stderr == ""
    # the login can work at once
    assert fresh("db", "current").stdout == f"{HEAD} (head)\n"
    shown = json.loads(fresh("user", "show", LOGIN, "--format", "json").stdout)
    assert sorted(g["capability"] for g in shown["grants"]) == sorted(CAPABILITIES)
    assert {g["scope"] for g in shown["grants"]} == {"tenant"}


def test_init_twice_is_idempotent_and_says_so(fresh):
    assert fresh("init").exit_code == 0
    again = fresh("init")
    assert again.exit_code == 0, again.stderr
    assert again.stdout == (
        f"database  {fresh.url}\n"
        f"schema    {HEAD} (up to date)\n"
        f"tenant    default (exists)\n"
        f"admin     {LOGIN} (already admin)\n"
    )
    shown = json.loads(fresh("user", "show", LOGIN, "--format", "json").stdout)
    assert len(shown["grants"]) == len(CAPABILITIES)  # nothing granted twice


def test_init_json_reports_what_it_did(fresh):
    first = fresh("init", "--format", "json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout) == {
        "database": fresh.url,
        "schema_revision": HEAD,
        "schema_upgraded": True,
        "tenant": "default",
        "tenant_created": True,
        "admin": LOGIN,
        "admin_created": True,
        "capabilities_granted": list(CAPABILITIES),
    }
    second = fresh("init", "--format", "json")
    assert json.loads(second.stdout) == {
        "database": fresh.url,
        "schema_revision": HEAD,
        "schema_upgraded": False,
        "tenant": "default",
        "tenant_created": False,
        "admin": LOGIN,
        "admin_created": False,
        "capabilities_granted": [],
    }


def test_init_on_a_migrated_database_only_creates_the_tenant(cli, db_url):
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"schema    {HEAD} (up to date)",
        "tenant    default (created)",
        f"admin     {LOGIN} ({len(CAPABILITIES)} capabilities granted)",
    ]


def test_init_admin_names_another_person(cli):
    result = cli("init", "--admin", "alice", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["admin"], data["admin_created"], data["capabilities_granted"]) == ("alice", True, list(CAPABILITIES))
    # the login itself was not made a person, and so cannot act as alice either
    assert_error(
        cli("user", "list"), 77,
        f"{LOGIN!r} is not a NOC operator of tenant 'default'; an admin can run "
        f"`nocctl user add {LOGIN}` and `nocctl user grant {LOGIN} CAPABILITY`",
    )
    assert cli("--as", "alice", "user", "list").exit_code == 77


def test_init_of_an_existing_tenant_is_no_back_door_to_admin(cli):
    assert cli("init", "--admin", "alice").exit_code == 0
    # the login is not a person of the tenant: it may not make itself (or anyone) admin
    for args in (("init",), ("init", "--admin", "mallory"), ("--as", "alice", "init", "--admin", "mallory")):
        result = cli(*args)
        assert result.exit_code == 77, (args, result.stdout, result.stderr)
    # re-running an init that changes nothing (a schema upgrade by a deploy login) is fine
    result = cli("init", "--admin", "alice")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "admin     alice (already admin)"


def test_init_as_user_makes_that_person_admin_of_a_new_tenant(cli):
    result = cli("--as", "bob", "init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"admin     bob ({len(CAPABILITIES)} capabilities granted)"
    # bob is admin, but the login may not act as bob: it holds no grant of its own
    assert cli("--as", "bob", "org", "client", "add", "ACME", "--name", "Acme").exit_code == 77


def test_init_of_a_second_tenant_leaves_the_first_alone(admin_cli):
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0
    result = admin_cli("--tenant", "other", "init")
    assert result.exit_code == 0, result.stderr
    assert "tenant    other (created)\n" in result.stdout
    assert admin_cli("--tenant", "other", "org", "list").stdout == "(none)\n"
    assert admin_cli("org", "list", "--format", "csv").stdout.splitlines()[1:] == ["ACME,client,Acme,ACME,,,,"]
    # NOC_TENANT selects the tenant too
    assert admin_cli("org", "list", env={"NOC_TENANT": "other"}).stdout == "(none)\n"


def test_init_without_any_database_setting_creates_the_default_sqlite_file(cli, tmp_path):
    # no --db, no NOC_DATABASE_URL, no config: $XDG_DATA_HOME/nocctl/noc.db
    expected = tmp_path / "data" / "nocctl" / "noc.db"
    assert not expected.exists()
    result = cli("init", env={"NOC_DATABASE_URL": None})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"database  sqlite:///{expected}"
    assert expected.is_file()
    assert cli("db", "current", env={"NOC_DATABASE_URL": None}).stdout == f"{HEAD} (head)\n"


def test_init_refuses_an_unreachable_database(cli):
    result = cli("--db", "postgresql://noc@127.0.0.1:1/noc", "init")
    assert result.exit_code == 75
    assert result.stdout == ""
    assert result.stderr.startswith("nocctl: error: database unavailable (")
    assert result.stderr.endswith("; check --db / NOC_DATABASE_URL and retry\n")
    assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------- db upgrade / downgrade / current


def test_db_upgrade_creates_a_missing_sqlite_file_and_migrates(fresh):
    result = fresh("db", "upgrade")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"empty -> {HEAD}\n", "")
    again = fresh("db", "upgrade")
    assert (again.exit_code, again.stdout, again.stderr) == (0, f"already at {HEAD}\n", "")
    # migrated but without a tenant: commands tell you to run init
    assert_error(fresh("org", "list"), 3,
                 "tenant 'default' does not exist; run `nocctl --tenant default init` to create it")


def test_db_current_history_downgrade_and_back(fresh):
    assert fresh("init").exit_code == 0
    assert fresh("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0

    current = fresh("db", "current")
    assert (current.exit_code, current.stdout) == (0, f"{HEAD} (head)\n")

    down = fresh("db", "downgrade", "base")
    assert (down.exit_code, down.stdout, down.stderr) == (0, f"{HEAD} -> base\n", "")
    current = fresh("db", "current")
    assert (current.exit_code, current.stdout) == (0, f"empty (head is {HEAD}; run `nocctl db upgrade`)\n")
    history = json.loads(fresh("db", "history", "--format", "json").stdout)
    assert [r["current"] for r in history] == [False] * len(history)
    assert_error(fresh("org", "list"), 3,
                 "the database lacks tables of this nocctl (no schema yet, or an older one);"
                 " run `nocctl db upgrade` (`nocctl init` for a new database)")
    again = fresh("db", "downgrade", "base")
    assert (again.exit_code, again.stdout) == (0, "already at base\n")

    up = fresh("db", "upgrade")
    assert (up.exit_code, up.stdout) == (0, f"empty -> {HEAD}\n")
    # the data went with the schema: init is needed again, and works
    assert_error(fresh("org", "list"), 3,
                 "tenant 'default' does not exist; run `nocctl --tenant default init` to create it")
    assert fresh("init").exit_code == 0
    assert fresh("org", "list").stdout == "(none)\n"


def test_db_downgrade_to_head_when_at_head_changes_nothing(admin_cli):
    result = admin_cli("db", "downgrade", "head")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"already at {HEAD}\n", "")
    assert admin_cli("user", "list", "--format", "csv").stdout.splitlines()[1:] == [f"{LOGIN},{LOGIN},,,True"]


def test_db_upgrade_and_downgrade_refuse_an_unknown_revision(admin_cli):
    unknown = "unknown schema revision 'nonsense'; see `nocctl db history`"
    assert_error(admin_cli("db", "upgrade", "nonsense"), 3, unknown)
    assert_error(admin_cli("db", "downgrade", "nonsense"), 3, unknown)
    assert admin_cli("db", "current").stdout == f"{HEAD} (head)\n"


def test_db_upgrade_refuses_a_relative_step_past_the_head(admin_cli):
    result = admin_cli("db", "upgrade", "+1")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nocctl: error: cannot move the schema to '+1': ")
    assert result.stderr.count("\n") == 1
    assert admin_cli("db", "current").stdout == f"{HEAD} (head)\n"


def test_db_downgrade_needs_a_revision(admin_cli):
    result = admin_cli("db", "downgrade")
    assert result.exit_code == 2
    assert result.stderr.startswith("nocctl: error: Missing argument 'REVISION'.")
    assert result.stderr.count("\n") == 1
    assert admin_cli("db", "current").stdout == f"{HEAD} (head)\n"


@pytest.mark.parametrize("args", [("db", "current"), ("db", "downgrade", "base"), ("db", "history"), ("org", "list")])
def test_db_commands_against_a_missing_sqlite_file_exit_3_and_create_nothing(cli, tmp_path, args):
    missing = tmp_path / "typo" / "noc.db"
    assert_error(cli("--db", f"sqlite:///{missing}", *args), 3,
                 f"no database at {missing}; run `nocctl init` to create it, or pass --db")
    assert not missing.exists() and not missing.parent.exists()


def test_commands_against_a_database_without_schema_exit_3(fresh):
    make_empty_sqlite_file_if_needed(fresh.url)
    assert fresh("db", "current").stdout == f"empty (head is {HEAD}; run `nocctl db upgrade`)\n"
    assert_error(fresh("user", "list"), 3,
                 "the database lacks tables of this nocctl (no schema yet, or an older one);"
                 " run `nocctl db upgrade` (`nocctl init` for a new database)")


# ---------------------------------------------------------------- db history


def test_db_history_lists_migrations_newest_first(cli):
    table = cli("db", "history")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["revision", "down_revision", "message", "head", "current"]
    assert set(lines[1]) <= {"-", " "}

    rows = json.loads(cli("db", "history", "--format", "json").stdout)
    assert rows[0]["revision"] == HEAD
    assert rows[0]["head"] is True and rows[0]["current"] is True
    assert rows[-1] == {"revision": "0001", "down_revision": None, "message": "initial schema",
                        "head": HEAD == "0001", "current": HEAD == "0001"}
    for newer, older in itertools.pairwise(rows):
        assert newer["down_revision"] == older["revision"]
    assert len(lines) == 2 + len(rows)
    assert lines[-1].split()[0] == "0001"

    assert cli("db", "history", "--format", "ndjson").stdout == "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in rows
    )
    parsed = list(csv.DictReader(io.StringIO(cli("db", "history", "--format", "csv").stdout)))
    assert [r["revision"] for r in parsed] == [r["revision"] for r in rows]
    assert parsed[0]["current"] == "True"


def test_db_history_to_a_file(cli, tmp_path):
    target = tmp_path / "history.json"
    result = cli("db", "history", "--format", "json", "-o", str(target))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert json.loads(target.read_text())[0]["revision"] == HEAD


def test_db_history_marks_nothing_current_on_an_empty_database(fresh):
    make_empty_sqlite_file_if_needed(fresh.url)
    rows = json.loads(fresh("db", "history", "--format", "json").stdout)
    assert rows and not any(r["current"] for r in rows)


# ---------------------------------------------------------------- config show


def config_lines(stdout: str) -> dict[str, str]:
    return {line[:24].rstrip(): line[25:] for line in stdout.splitlines()}


def test_config_show_defaults(cli, db_url, tmp_path):
    result = cli("config", "show")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = config_lines(result.stdout)
    assert lines["tenant"] == "default   (default)"
    assert lines["actor"] == "   (default)"
    assert lines["config_file"] == str(tmp_path / "config.toml")
    assert lines["correlation_window"] == "10m"
    assert lines["incident_min_severity"] == "CRITICAL"
    assert lines["sla"] == '{"CRITICAL": "4h", "HIGH": "8h", "MEDIUM": "24h", "LOW": "72h"}'
    assert lines["database_url"].endswith("   (env)")


def test_config_show_json_has_values_and_their_sources(cli):
    result = cli("--tenant", "acme-noc", "--as", "asha", "config", "show", "--format", "json",
                 env={"NOC_DATABASE_URL": "sqlite:////srv/noc/noc.db"})
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("database_url", "tenant", "actor")} == {
        "database_url": "sqlite:////srv/noc/noc.db", "tenant": "acme-noc", "actor": "asha"}
    assert data["sources"] == {"database_url": "env", "tenant": "flag", "actor": "flag"}


def test_config_show_env_beats_nothing_and_flag_beats_env(cli):
    env = {"NOC_TENANT": "from-env", "NOC_ACTOR": "env-person"}
    lines = config_lines(cli("config", "show", env=env).stdout)
    assert lines["tenant"] == "from-env   (env)"
    assert lines["actor"] == "env-person   (env)"
    lines = config_lines(cli("--tenant", "from-flag", "config", "show", env=env).stdout)
    assert lines["tenant"] == "from-flag   (flag)"


def test_config_show_masks_the_password_of_a_database_url_from_the_environment(cli):
    result = cli("config", "show", env={"NOC_DATABASE_URL": "postgresql://noc:s3cr3t-pw@db.example:5432/noc"})
    assert result.exit_code == 0, result.stderr
    assert "s3cr3t-pw" not in result.stdout
    assert config_lines(result.stdout)["database_url"] == "postgresql://noc:***@db.example:5432/noc   (env)"


def test_config_show_masks_the_password_of_a_database_url_given_with_db(cli):
    result = cli("--db", "postgresql+psycopg://noc:hunter2@db.example/noc", "config", "show", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "hunter2" not in result.stdout
    data = json.loads(result.stdout)
    assert data["database_url"] == "postgresql+psycopg://noc:***@db.example/noc"
    assert data["sources"]["database_url"] == "flag"


def test_config_show_masks_a_password_given_as_url_query_parameter(cli):
    result = cli("--db", "postgresql://noc@db.example/noc?sslmode=require&password=qp-secret", "config", "show")
    assert result.exit_code == 0, result.stderr
    assert "qp-secret" not in result.stdout
    assert config_lines(result.stdout)["database_url"] == (
        "postgresql://noc@db.example/noc?sslmode=require&password=***   (flag)")


def test_init_never_echoes_the_database_password(cli):
    # init fails (nothing listens there), and its message must not carry the password
    result = cli("--db", "postgresql://noc:init-secret@127.0.0.1:1/noc", "init")
    assert result.exit_code == 75
    assert "init-secret" not in result.stdout + result.stderr


SECRET_CONFIG = """\
database_url = "postgresql://noc:file-db-pass@db.example/noc"
tenant = "acme-noc"
correlation_window = "15m"

[notify.channels.hook]
type = "webhook"
url = "https://hooks.example/services/hook-path-secret?sig=query-secret"
headers = { Authorization = "Bearer header-secret" }
token = "tok-9f8e7d"

[notify.channels.mail]
type = "smtp"
host = "smtp.example"
username = "noc-mailer"
password = "smtp-pass-123"
"""
SECRETS = ("file-db-pass", "tok-9f8e7d", "smtp-pass-123", "hook-path-secret", "query-secret", "header-secret")
# Tables nocctl does not read are refused (a typo must not lose a setting), so their secrets
# can never reach `config show`: the refusal names the key, never its value.
UNKNOWN_SECRETS = """\
[pagerduty]
api_key = 987654321

[credentials]
sms_gateway = "sms-secret-xyz"
"""


def test_config_show_masks_secret_keys_from_the_config_file(cli, tmp_path):
    config = tmp_path / "secret.toml"
    config.write_text(SECRET_CONFIG)
    env = {"NOC_CONFIG": str(config), "NOC_DATABASE_URL": None}

    table = cli("config", "show", env=env)
    assert table.exit_code == 0, table.stderr
    for secret in SECRETS:
        assert secret not in table.stdout
    lines = config_lines(table.stdout)
    assert lines["database_url"] == "postgresql://noc:***@db.example/noc   (config)"
    assert lines["tenant"] == "acme-noc   (config)"
    assert lines["config_file"] == str(config)
    assert lines["correlation_window"] == "15m"

    shown = cli("config", "show", "--format", "json", env=env)
    assert shown.exit_code == 0, shown.stderr
    for secret in SECRETS:
        assert secret not in shown.stdout
    data = json.loads(shown.stdout)
    assert data["notify"] == {"channels": {
        "hook": {"type": "webhook", "url": "https://hooks.example/***", "headers": {"Authorization": "***"},
                 "token": "***"},
        "mail": {"type": "smtp", "host": "smtp.example", "username": "noc-mailer", "password": "***"},
    }}
    assert data["sources"] == {"database_url": "config", "tenant": "config", "actor": "default"}
    # tunables from the file merge with their defaults
    assert data["correlation_window"] == "15m"
    assert data["sla"] == {"CRITICAL": "4h", "HIGH": "8h", "MEDIUM": "24h", "LOW": "72h"}


def test_config_show_refuses_an_unknown_table_without_showing_its_values(cli, tmp_path):
    config = tmp_path / "secret.toml"
    config.write_text(SECRET_CONFIG + UNKNOWN_SECRETS)
    result = cli("config", "show", env={"NOC_CONFIG": str(config)})
    assert result.exit_code == 65 and result.stdout == ""
    assert result.stderr == ("nocctl: error: unknown table [pagerduty] in the config (one of: ingest, notify,"
                             f" retention, sla, snapshot); rename or remove the [pagerduty] table of {config}\n")
    assert "987654321" not in result.stderr and "sms-secret-xyz" not in result.stderr


def test_config_show_environment_beats_the_config_file(cli, tmp_path):
    config = tmp_path / "secret.toml"
    config.write_text(SECRET_CONFIG)
    lines = config_lines(cli("config", "show", env={"NOC_CONFIG": str(config), "NOC_TENANT": "env-tenant"}).stdout)
    assert lines["tenant"] == "env-tenant   (env)"
    assert lines["database_url"].endswith("   (env)")


def test_config_show_says_when_no_config_file_exists(cli, tmp_path, monkeypatch):
    import nocctl.config

    monkeypatch.setattr(nocctl.config, "SYSTEM_CONFIG", tmp_path / "etc" / "config.toml")
    result = cli("config", "show", env={"NOC_CONFIG": None})
    assert result.exit_code == 0
    assert result.stderr == "no config file found (NOC_CONFIG, ~/.config/nocctl/config.toml, /etc/nocctl/config.toml)\n"
    assert config_lines(result.stdout)["config_file"] == ""


def test_config_file_in_xdg_config_home_is_found(cli, tmp_path):
    home = tmp_path / "config-home" / "nocctl"
    home.mkdir(parents=True)
    (home / "config.toml").write_text('tenant = "xdg-tenant"\n')
    lines = config_lines(cli("config", "show", env={"NOC_CONFIG": None}).stdout)
    assert lines["tenant"] == "xdg-tenant   (config)"
    assert lines["config_file"] == str(home / "config.toml")


def test_config_show_refuses_a_missing_config_file(cli, tmp_path):
    missing = tmp_path / "nope.toml"
    assert_error(cli("config", "show", env={"NOC_CONFIG": str(missing)}), 65,
                 f"config file {missing} (from NOC_CONFIG) does not exist")


def test_config_show_refuses_invalid_toml(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("tenant = \n")
    result = cli("config", "show", env={"NOC_CONFIG": str(bad)})
    assert result.exit_code == 65
    assert result.stdout == ""
    assert result.stderr.startswith(f"nocctl: error: config file {bad} is not valid TOML: ")
    assert result.stderr.count("\n") == 1


def test_config_show_rejects_an_unknown_format(cli):
    result = cli("config", "show", "--format", "csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("nocctl: error: Invalid value for '--format': 'csv' is not one of 'table', 'json'.")


def test_db_downgrade_takes_a_relative_revision(admin_cli):
    """`db downgrade -1` is one step back (Alembic's relative revision), not an unknown option."""
    previous = f"{int(HEAD) - 1:04d}"
    result = admin_cli("db", "downgrade", "-1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{HEAD} -> {previous}\n", "")
    assert admin_cli("db", "upgrade").stdout == f"{previous} -> {HEAD}\n"
