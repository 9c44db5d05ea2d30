"""The foundations every command stands on: settings resolution, the clock, output
rendering, the UTC timestamp column and engine set-up."""
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from conftest import BACKEND
from nocctl import clock, config, output
from nocctl.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, normalise_url
from nocctl.errors import BadInput, NotFound, UsageError
from nocctl.models import BusinessUnit, Tenant

IST = timezone(timedelta(hours=5, minutes=30))


# ---------------------------------------------------------------- config

def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "noc.toml",
                        'database_url = "sqlite:////srv/from-config.db"\ntenant = "from-config"\n')
    monkeypatch.setenv("NOC_CONFIG", str(path))
    return path


def test_defaults_without_any_setting(tmp_path):
    settings = config.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'nocctl' / 'noc.db'}"
    assert settings.tenant == "default"
    assert settings.actor is None
    assert settings.sources == {"database_url": "default", "tenant": "default", "actor": "default"}


def test_config_file_beats_default(config_file):
    settings = config.resolve()
    assert (settings.database_url, settings.tenant) == ("sqlite:////srv/from-config.db", "from-config")
    assert settings.config_path == config_file
    assert settings.sources["database_url"] == settings.sources["tenant"] == "config"


def test_environment_beats_config_file(config_file, monkeypatch):
    monkeypatch.setenv("NOC_DATABASE_URL", "sqlite:////srv/from-env.db")
    monkeypatch.setenv("NOC_TENANT", "from-env")
    monkeypatch.setenv("NOC_ACTOR", "env.actor")
    settings = config.resolve()
    assert (settings.database_url, settings.tenant, settings.actor) == (
        "sqlite:////srv/from-env.db", "from-env", "env.actor")
    assert settings.sources == {"database_url": "env", "tenant": "env", "actor": "env"}


def test_flag_beats_environment(config_file, monkeypatch):
    monkeypatch.setenv("NOC_DATABASE_URL", "sqlite:////srv/from-env.db")
    monkeypatch.setenv("NOC_TENANT", "from-env")
    settings = config.resolve(db="sqlite:////srv/from-flag.db", tenant="from-flag", actor="flag.actor")
    assert (settings.database_url, settings.tenant, settings.actor) == (
        "sqlite:////srv/from-flag.db", "from-flag", "flag.actor")
    assert set(settings.sources.values()) == {"flag"}


def test_each_setting_resolves_independently(config_file, monkeypatch):
    monkeypatch.setenv("NOC_TENANT", "from-env")
    settings = config.resolve(db="sqlite:////srv/from-flag.db")
    assert settings.sources == {"database_url": "flag", "tenant": "env", "actor": "default"}
    assert settings.tenant == "from-env"


def test_config_file_discovery_order(tmp_path, monkeypatch):
    system = write_config(tmp_path / "etc" / "config.toml", 'tenant = "from-system"\n')
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    monkeypatch.delenv("NOC_CONFIG")
    xdg_home = tmp_path / "config-home"  # XDG_CONFIG_HOME, set by the hermetic_env fixture
    # Only the system file exists.
    assert config.resolve().tenant == "from-system"
    # The user's file (XDG_CONFIG_HOME/nocctl/config.toml) comes before the system one.
    user = write_config(xdg_home / "nocctl" / "config.toml", 'tenant = "from-xdg"\n')
    settings = config.resolve()
    assert (settings.tenant, settings.config_path) == ("from-xdg", user)
    # NOC_CONFIG comes before both.
    explicit = write_config(tmp_path / "explicit.toml", 'tenant = "from-noc-config"\n')
    monkeypatch.setenv("NOC_CONFIG", str(explicit))
    settings = config.resolve()
    assert (settings.tenant, settings.config_path) == ("from-noc-config", explicit)


def test_xdg_config_home_defaults_to_dot_config(tmp_path, monkeypatch):
    monkeypatch.delenv("NOC_CONFIG")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_config(tmp_path / "home" / ".config" / "nocctl" / "config.toml", 'tenant = "from-home"\n')
    settings = config.resolve()
    assert (settings.tenant, settings.config_path) == ("from-home", path)


def test_noc_config_naming_a_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NOC_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(BadInput, match=r"absent.toml"):
        config.resolve()


def test_invalid_toml_is_bad_input(tmp_path, monkeypatch):
    path = write_config(tmp_path / "broken.toml", 'tenant = "unterminated\n')
    monkeypatch.setenv("NOC_CONFIG", str(path))
    with pytest.raises(BadInput, match="not valid TOML") as raised:
        config.resolve()
    assert str(path) in raised.value.message
    assert raised.value.exit_code == 65


def test_tunables_merge_with_defaults(tmp_path, monkeypatch):
    path = write_config(tmp_path / "t.toml", 'correlation_window = "5m"\n[sla]\nCRITICAL = "1h"\n')
    monkeypatch.setenv("NOC_CONFIG", str(path))
    settings = config.resolve()
    assert settings.get("correlation_window") == "5m"
    assert settings.get("sla") == {"CRITICAL": "1h", "HIGH": "8h", "MEDIUM": "24h", "LOW": "72h"}
    assert settings.get("incident_min_severity") == "CRITICAL"


def test_effective_settings_mask_secrets(tmp_path, monkeypatch):
    path = write_config(tmp_path / "s.toml", (
        'database_url = "postgresql+psycopg://noc:hunter2@db.example:5432/noc"\n'
        '[notify.channels.webhook]\nurl = "https://hooks.example/x"\ntoken = "abc123"\n'
        '[notify.channels.smtp]\nhost = "mail.example"\npassword = "p4ss"\n'
    ))
    monkeypatch.setenv("NOC_CONFIG", str(path))
    shown = config.resolve().effective()
    assert shown["database_url"] == "postgresql+psycopg://noc:***@db.example:5432/noc"
    # the path may be the token
    assert shown["notify"]["channels"]["webhook"] == {"url": "https://hooks.example/***", "token": "***"}
    assert shown["notify"]["channels"]["smtp"] == {"host": "mail.example", "password": "***"}
    assert "hunter2" not in json.dumps(shown) and "abc123" not in json.dumps(shown)
    assert shown["config_file"] == str(path)


@pytest.mark.parametrize("url, masked", [
    ("postgresql://noc:s3cret@db.example:5432/noc", "postgresql://noc:***@db.example:5432/noc"),
    ("postgresql+psycopg://noc:p%40ss@db/noc", "postgresql+psycopg://noc:***@db/noc"),
    ("postgresql://:onlypw@db/noc", "postgresql://:***@db/noc"),
    ("postgresql://noc@db/noc", "postgresql://noc@db/noc"),
    ("postgresql://db:5432/noc", "postgresql://db:5432/noc"),
    ("sqlite:////var/lib/nocctl/noc.db", "sqlite:////var/lib/nocctl/noc.db"),
])
def test_mask_url(url, masked):
    assert config.mask_url(url) == masked


def test_mask_secrets():
    value = {
        "database_url": "postgresql://noc:pw@h/db",
        "api_key": "k-123",
        "apikey": "k-456",
        "Secret": "s",
        "empty_password": "",
        "channels": [{"name": "ops", "auth_token": "t-1"}, {"name": "mail", "url": "smtp://u:pw2@mail"}],
        "name": "not a secret",
        "retries": 3,
    }
    assert config.mask_secrets(value) == {
        "database_url": "postgresql://noc:***@h/db",
        "api_key": "***",
        "apikey": "***",
        "Secret": "***",
        "empty_password": "",
        "channels": [{"name": "ops", "auth_token": "***"}, {"name": "mail", "url": "smtp://mail"}],
        "name": "not a secret",
        "retries": 3,
    }


# ---------------------------------------------------------------- clock

@pytest.fixture
def fixed_clock_reset():
    yield
    clock.set_now(None)


def test_noc_now_fixes_the_clock(monkeypatch):
    monkeypatch.setenv("NOC_NOW", "2026-03-01T08:00:00+05:30")
    assert clock.now() == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now() == clock.now()


def test_noc_now_without_offset_is_refused(monkeypatch):
    monkeypatch.setenv("NOC_NOW", "2026-03-01T08:00:00")
    with pytest.raises(BadInput, match=r"NOC_NOW .* has no UTC offset"):
        clock.now()


def test_real_clock_is_aware_utc():
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_set_now_overrides_noc_now(monkeypatch, fixed_clock_reset):
    monkeypatch.setenv("NOC_NOW", "2026-03-01T00:00:00Z")
    clock.set_now(datetime(2026, 5, 1, 12, 0, tzinfo=IST))
    assert clock.now() == datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    clock.set_now(None)
    assert clock.now() == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, 0, tzinfo=UTC)),
    ("2026-03-01T08:00:00z", datetime(2026, 3, 1, 8, 0, tzinfo=UTC)),
    ("2026-03-01T08:00:00+00:00", datetime(2026, 3, 1, 8, 0, tzinfo=UTC)),
    ("2026-03-01T08:00:00+05:30", datetime(2026, 3, 1, 2, 30, tzinfo=UTC)),
    ("2026-03-01T01:00:00-05:00", datetime(2026, 3, 1, 6, 0, tzinfo=UTC)),
    ("2026-03-01T00:30:00+05:30", datetime(2026, 2, 28, 19, 0, tzinfo=UTC)),  # crosses midnight
    (" 2026-03-01T08:00:00.250+01:00 ", datetime(2026, 3, 1, 7, 0, 0, 250000, tzinfo=UTC)),
])
def test_parse_instant_converts_to_utc(text, expected):
    parsed = clock.parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["2026-03-01T08:00:00", "2026-03-01 08:00", "2026-03-01"])
def test_parse_instant_rejects_naive_times(text):
    with pytest.raises(UsageError, match="has no UTC offset") as raised:
        clock.parse_instant(text, what="--since")
    assert raised.value.message.startswith("--since")
    assert "Z or +05:30" in raised.value.remedy


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00Z", "08:00+05:30"])
def test_parse_instant_rejects_garbage(text):
    with pytest.raises(UsageError):
        clock.parse_instant(text)


def test_parse_iso_rejects_non_strings():
    with pytest.raises(BadInput, match="must be an ISO 8601 string"):
        clock.parse_iso(1700000000)


@pytest.mark.parametrize("text, seconds", [
    ("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("7d", 604800), ("45s", 45), ("1w", 604800),
    ("2H", 7200), (" 1h 30m ", 5400), ("1d2h3m4s", 93784), ("3600", 3600),
])
def test_parse_duration(text, seconds):
    assert clock.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1h30", "h", "1.5h", "-5m", "5x", "0", "0m", "2h-30m", "1 h x"])
def test_parse_duration_rejects_bad_input(text):
    with pytest.raises(BadInput, match="duration"):
        clock.parse_duration(text)


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (45, "45s"), (60, "1m"), (3600, "1h"), (3725, "1h2m5s"), (86400, "1d"), (90061, "1d1h1m1s"),
    (5400.4, "1h30m"), (-90, "-1m30s"), (None, ""),
])
def test_format_duration(seconds, text):
    assert clock.format_duration(seconds) == text


def test_format_and_parse_duration_round_trip():
    for seconds in (1, 59, 61, 3599, 3601, 86399, 90061, 604800):
        assert clock.parse_duration(clock.format_duration(seconds)) == seconds


# ---------------------------------------------------------------- output

ROWS = [
    {"id": 1, "code": "ACME", "seen": datetime(2026, 3, 1, 8, 0, tzinfo=IST), "note": "a, b \"quoted\"",
     "tags": ["x", "y"], "extra": "not a column"},
    {"id": 2, "code": "GLOBEX", "seen": None, "note": None, "tags": []},
]
COLUMNS = ("id", "code", "seen", "note", "tags")


def test_render_json_is_one_array_of_the_columns():
    data = json.loads(output.render_rows(ROWS, COLUMNS, "json"))
    assert data == [
        {"id": 1, "code": "ACME", "seen": "2026-03-01T02:30:00Z", "note": "a, b \"quoted\"", "tags": ["x", "y"]},
        {"id": 2, "code": "GLOBEX", "seen": None, "note": None, "tags": []},
    ]


def test_render_empty_json_listing_is_an_empty_array():
    assert output.render_rows([], COLUMNS, "json").strip() == "[]"
    assert json.loads(output.render_rows([], COLUMNS, "json")) == []


def test_render_ndjson_is_one_object_a_line():
    text = output.render_rows(ROWS, COLUMNS, "ndjson")
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    assert [json.loads(line)["code"] for line in lines] == ["ACME", "GLOBEX"]
    assert json.loads(lines[0])["seen"] == "2026-03-01T02:30:00Z"
    assert output.render_rows([], COLUMNS, "ndjson") == ""


def test_render_csv_has_a_header_and_quotes_properly():
    parsed = list(csv.reader(io.StringIO(output.render_rows(ROWS, COLUMNS, "csv"))))
    assert parsed == [
        list(COLUMNS),
        ["1", "ACME", "2026-03-01T02:30:00Z", "a, b \"quoted\"", '["x", "y"]'],
        ["2", "GLOBEX", "", "", "[]"],
    ]
    assert output.render_rows([], COLUMNS, "csv") == "id,code,seen,note,tags\n"


def test_render_table():
    text = output.render_rows(ROWS, COLUMNS, "table")
    lines = text.splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert set(lines[1]) <= {"-", " "}
    assert "ACME" in lines[2] and "2026-03-01T02:30:00Z" in lines[2]
    assert lines[3].split()[:2] == ["2", "GLOBEX"]
    assert "not a column" not in text
    assert output.render_rows([], COLUMNS, "table") == "(none)\n"


def test_render_object_json_and_table():
    obj = {"code": "ACME", "seen": datetime(2026, 3, 1, tzinfo=UTC), "owner": None}
    assert json.loads(output.render_object(obj, "json")) == {
        "code": "ACME", "seen": "2026-03-01T00:00:00Z", "owner": None}
    table = output.render_object(obj, "table").splitlines()
    assert table[0].split() == ["code", "ACME"] and table[1].split() == ["seen", "2026-03-01T00:00:00Z"]


# ---------------------------------------------------------------- UTCDateTime column

def test_utc_datetime_stores_the_instant_in_utc(new_session):
    with new_session.begin() as session:
        session.add(Tenant(slug="east", name="East", created_at=datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=IST)))
        session.add(Tenant(slug="west", name="West", created_at=datetime(2026, 3, 1, 3, 0, tzinfo=UTC)))
    with new_session() as session:
        east = session.scalar(select(Tenant).where(Tenant.slug == "east"))
        assert east.created_at == datetime(2026, 3, 1, 2, 30, 0, 123456, tzinfo=UTC)
        assert east.created_at.utcoffset() == timedelta(0)
        # Ordering and comparison happen on the instant (08:00+05:30 is before 03:00Z).
        assert session.scalars(select(Tenant.slug).order_by(Tenant.created_at)).all() == ["east", "west"]
        same_instant_elsewhere = datetime(2026, 3, 1, 3, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
        assert session.scalar(select(Tenant.slug).where(Tenant.created_at == same_instant_elsewhere)) == "east"


def test_utc_datetime_refuses_a_naive_value(new_session):
    session = new_session()
    session.add(Tenant(slug="naive", name="Naive", created_at=datetime(2026, 3, 1, 8, 0)))  # noqa: DTZ001 -- naive on purpose
    with pytest.raises(StatementError, match="naive datetime refused"):
        session.commit()
    session.rollback()
    session.close()
    with new_session() as session:
        assert session.scalar(select(Tenant).where(Tenant.slug == "naive")) is None


# ---------------------------------------------------------------- engines

def test_make_engine_refuses_a_missing_sqlite_file(tmp_path):
    missing = tmp_path / "typo" / "noc.db"
    with pytest.raises(NotFound, match="no database at") as raised:
        make_engine(f"sqlite:///{missing}")
    assert raised.value.exit_code == 3
    assert "nocctl init" in raised.value.remedy
    assert not missing.exists() and not missing.parent.exists()


def test_make_engine_creates_a_sqlite_file_only_when_asked(tmp_path):
    path = tmp_path / "new" / "dir" / "noc.db"
    engine = make_engine(f"sqlite:///{path}", create=True)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
        assert path.is_file()
    finally:
        engine.dispose()
    make_engine(f"sqlite:///{path}").dispose()  # now it exists, no create needed


def test_connection_settings_of_the_backend(engine):
    """What every connection of the test backend is set up with."""
    with engine.connect() as conn:
        if BACKEND == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
        else:
            assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
            # A bounded wait for an unreachable server, as busy_timeout bounds SQLite's.
            parameters = conn.connection.dbapi_connection.info.get_parameters()
            assert parameters["connect_timeout"] == "10"
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_foreign_keys_are_enforced(new_session):
    """SQLite needs `PRAGMA foreign_keys=ON` on every connection; PostgreSQL always enforces them."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    session = new_session()
    session.add(BusinessUnit(tenant_id=424242, kind="CLIENT", code="X", name="X", created_at=now, updated_at=now))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.close()


@pytest.mark.parametrize("url, expected", [
    ("postgres://noc@db/noc", "postgresql+psycopg://noc@db/noc"),
    ("postgresql://noc:pw@db:5432/noc", "postgresql+psycopg://noc:pw@db:5432/noc"),
    ("postgresql+psycopg://noc@db/noc", "postgresql+psycopg://noc@db/noc"),
    ("sqlite:////tmp/noc.db", "sqlite:////tmp/noc.db"),
])
def test_normalise_url(url, expected):
    assert normalise_url(url) == expected
