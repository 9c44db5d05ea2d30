"""`nocctl doctor`: one line per check, exit 0 healthy / 65 a problem / 75 cannot tell; and
unknown config keys refused by every command (issue 17). Both backends, except the file
modes (SQLite only)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import BACKEND
from nocctl import config
from nocctl.db import make_engine, sqlite_path
from nocctl.services import doctor, passlock, schema
from test_audit import behind_the_triggers, sql

SQLITE_ONLY = pytest.mark.skipif(BACKEND != "sqlite", reason="file modes are SQLite's boundary")
NOW = "2026-03-01T12:00:00Z"
HOOK = '[notify.channels.hook]\ntype = "command"\ncommand = "cat > /dev/null"\n'
WEBHOOK = '[notify.channels.hook]\ntype = "webhook"\nurl = "https://hooks.example/T0/SECRET"\n'  # the path: a secret




@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW)
    return admin_cli


def lines(result) -> dict[str, tuple[str, str]]:
    """The table output off a terminal: check name -> (mark, detail)."""
    found = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(ok|FAIL|info|unknown) +(\S+(?: \S+)*?)  +(.*)", line)
        assert match, line
        found[match.group(2)] = (match.group(1), match.group(3))
    return found


def as_json(result) -> dict[str, dict]:
    data = json.loads(result.stdout)
    assert all(set(item) == {"check", "status", "detail", "remedy"} for item in data)
    return {item["check"]: item for item in data}


def configure(tmp_path: Path, monkeypatch, content: str) -> Path:
    path = tmp_path / "doctor.toml"
    path.write_text(content)
    path.chmod(0o600)
    monkeypatch.setenv("NOC_CONFIG", str(path))
    return path


def assert_problem(result, *names: str) -> None:
    assert result.exit_code == 65, result.stderr
    assert result.stderr.splitlines()[-1] == (f"nocctl: error: doctor found {len(names)} problem(s): "
                                              f"{', '.join(names)}; each says its remedy")


# ---------------------------------------------------------------- healthy


def test_a_fresh_install_is_healthy(noc):
    result = noc("doctor")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    found = lines(result)
    assert {mark for mark, _ in found.values()} <= {"ok", "info"}
    assert [name for name in found if name.startswith("pass ")] == [
        "pass locks", "pass snapshot", "pass escalate", "pass notify", "pass retention"]
    for name in ("snapshot", "escalate", "notify", "retention"):
        assert found[f"pass {name}"][0] == "info" and found[f"pass {name}"][1].startswith("never run")
    assert found["schema"] == ("ok", f"at {schema.head()} (head)")
    assert found["audit chain"][0] == "ok" and found["audit chain"][1].startswith("intact (")
    assert found["pass locks"] == ("info", "no pass is running")
    assert found["notify channels"][0] == "info"

    data = json.loads(noc("doctor", "--format", "json").stdout)
    assert {item["status"] for item in data} <= {"ok", "info"}
    assert [item["check"] for item in data] == list(found)


def test_a_pass_run_lately_is_ok(noc, tmp_path, monkeypatch):
    configure(tmp_path, monkeypatch, HOOK)
    assert noc("notify", "run").exit_code == 0
    assert noc("escalate", "run", "--now", "2026-03-01T11:45:00Z").exit_code == 0  # 15m ago: under 3 × 10m
    found = as_json(noc("doctor", "--format", "json"))
    assert found["pass notify"]["status"] == "ok"
    assert found["pass notify"]["detail"] == "last run 2026-03-01T12:00:00Z (0s ago; every 1m)"
    assert found["pass escalate"]["status"] == "ok"
    assert found["channel hook"] == {"check": "channel hook", "status": "ok", "detail": "command channel configured",
                                     "remedy": None}


def test_terminal_marks(noc, monkeypatch):
    import nocctl.cli.doctor as command

    monkeypatch.setattr(command, "to_terminal", lambda out=None: True)
    monkeypatch.setenv("NO_COLOR", "1")
    result = noc("doctor")
    assert result.exit_code == 0
    assert {line[0] for line in result.stdout.splitlines()} <= {"✓", "·"}
    assert "\x1b[" not in result.stdout


# ---------------------------------------------------------------- faults, one each


def test_an_unknown_config_key_is_named_with_what_it_meant(noc, tmp_path, monkeypatch, caller):
    path = configure(tmp_path, monkeypatch, 'correlation_windw = "5m"\n')
    result = noc("doctor")
    message = (f'unknown key "correlation_windw" in the config (did you mean "correlation_window"?);'
               f" fix the top level of {path} (before any [table])")
    assert result.exit_code == 65
    found = lines(result)
    assert found["config"][0] == "FAIL" and message in found["config"][1]
    assert found["schema"][0] == "ok"  # the other checks ran
    assert result.stderr.startswith("nocctl: error: doctor found 1 problem")
    # the service reports it as its config line and checks the rest (settings kept, not raised)
    checks = {c.check: c for c in doctor.diagnose(config.resolve(keep_problem=True), caller)}
    assert checks["config"].status == "problem"
    assert f"{checks['config'].detail}; {checks['config'].remedy}" == message
    assert checks["schema"].status == "ok"


def test_an_unknown_key_stops_an_ordinary_command_too(noc, tmp_path, monkeypatch):
    path = configure(tmp_path, monkeypatch, 'tenant = "default"\n[sla]\nCRITICAL = "4h"\nHIHG = "8h"\n')
    result = noc("alert", "list")
    assert (result.exit_code, result.stdout) == (65, "")
    assert result.stderr == (f'nocctl: error: sla: unknown key "HIHG" (did you mean "HIGH"?);'
                             f" fix the [sla] section of {path}\n")
    configure(tmp_path, monkeypatch, 'sla_targets = "4h"\n')
    other = noc("alert", "list")
    assert other.exit_code == 65 and 'unknown key "sla_targets"' in other.stderr


def test_a_bad_channel_is_a_failed_check_naming_the_key(noc, tmp_path, monkeypatch):
    path = configure(tmp_path, monkeypatch, '[notify.channels.hook]\ntype = "webhook"\n')
    result = noc("doctor")
    assert_problem(result, "notify channels")
    assert lines(result)["notify channels"] == (
        "FAIL", f'notify.channels.hook: webhook needs "url"; fix the [notify] section of {path}')


def test_a_stale_pass_is_a_problem_and_a_dry_run_or_a_replay_does_not_count(noc):
    assert noc("snapshot", "run", "--now", "2026-03-01T11:00:00Z").exit_code == 0  # 60m ago: over 3 × 5m
    assert noc("snapshot", "run", "--now", "2026-03-01T10:00:00Z").exit_code == 0  # a replay: the record stays
    assert noc("snapshot", "run", "--dry-run").exit_code == 0  # changes nothing, recorded as nothing
    result = noc("doctor")
    assert_problem(result, "pass snapshot")
    mark, detail = lines(result)["pass snapshot"]
    assert mark == "FAIL"
    assert detail == ("last run 2026-03-01T11:00:00Z, 1h ago: overdue (cron runs it every 5m);"
                      " check cron and the pass's log (`nocctl snapshot run` by hand shows the error)")
    assert lines(result)["pass escalate"][0] == "info"  # never run: not a failure


@SQLITE_ONLY
def test_a_world_readable_database_file_is_a_problem(noc, db_url):
    path = sqlite_path(db_url)
    assert path is not None
    path.chmod(0o644)
    result = noc("doctor")
    assert_problem(result, "database file")
    assert lines(result)["database file"] == (
        "FAIL", f"the database file {path} is open to other users (mode 0644); run `chmod 600 {path}`")
    path.chmod(0o600)
    path.parent.chmod(0o755)
    try:
        again = noc("doctor")
        assert_problem(again, "database directory")
        assert lines(again)["database directory"][1].endswith(f"(mode 0755); run `chmod 700 {path.parent}`")
    finally:
        path.parent.chmod(0o700)


def test_a_config_file_with_secrets_must_be_private(noc, tmp_path, monkeypatch):
    path = configure(tmp_path, monkeypatch, WEBHOOK)
    path.chmod(0o644)
    result = noc("doctor")
    assert_problem(result, "config file mode")
    assert lines(result)["config file mode"][1].endswith(f"(mode 0644); run `chmod 600 {path}`")
    path.chmod(0o600)
    assert noc("doctor").exit_code == 0


def test_an_old_schema_says_upgrade(noc):
    down = noc("db", "downgrade", "0011")
    assert down.exit_code == 0, down.stderr
    result = noc("doctor")
    assert_problem(result, "schema")
    found = lines(result)
    assert found["schema"] == ("FAIL", f"at 0011, older than this nocctl's {schema.head()}; run `nocctl db upgrade`")
    assert found["passes"][0] == "unknown" and found["audit chain"][0] == "unknown"
    assert noc("db", "upgrade").exit_code == 0
    assert noc("doctor").exit_code == 0


def test_a_broken_audit_chain_names_the_row(noc, db_url):
    (first,) = [r[0] for r in sql(db_url, "SELECT id FROM audit_log ORDER BY id LIMIT 1")]
    behind_the_triggers(db_url, "UPDATE audit_log SET os_user = 'mallory' WHERE id = :id", id=first)
    result = noc("doctor")
    assert_problem(result, "audit chain")
    assert lines(result)["audit chain"] == (
        "FAIL", (f"broken at row {first}: its content does not match its hash (the row was changed);"
                " see `nocctl audit verify`; restore the log from a backup and compare"))


# ---------------------------------------------------------------- who may run it, what it touches


def test_any_person_may_run_it_the_audit_chain_needs_audit_view(noc):
    assert noc("user", "add", "bob", "--name", "Bob").exit_code == 0
    result = noc("--as", "bob", "doctor", "--format", "json")
    assert result.exit_code == 0, result.stderr
    audit = as_json(result)["audit chain"]
    assert audit["status"] == "info" and audit["detail"].startswith("not checked: ")
    assert "noc:audit_view" in audit["remedy"]


@SQLITE_ONLY
def test_a_missing_sqlite_database_is_reported_not_created(cli, tmp_path):
    missing = tmp_path / "nowhere" / "noc.db"
    result = cli("--db", f"sqlite:///{missing}", "doctor")
    assert_problem(result, "database")
    assert lines(result)["database"] == ("FAIL", (f"no database at {missing}; run `nocctl init` to create it,"
                                                 " or pass --db"))
    assert lines(result)["schema"][0] == "unknown"
    assert not missing.parent.exists()


def test_an_unreachable_database_is_75(cli):
    result = cli("--db", "postgresql://noc@127.0.0.1:1/noc", "doctor", "--format", "json")
    assert result.exit_code == 75
    found = as_json(result)
    assert found["database"]["status"] == "unknown" and "database unavailable" in found["database"]["detail"]
    assert result.stderr.splitlines()[-1] == ("nocctl: error: doctor cannot tell now: database, schema, passes,"
                                              " audit chain not checked; retry shortly")


def test_a_running_pass_is_informational(noc, db_url):
    engine = make_engine(db_url)
    try:
        with passlock.hold(engine, "notify"):
            result = noc("doctor")
    finally:
        engine.dispose()
    assert result.exit_code == 0, result.stderr
    assert lines(result)["pass locks"] == ("info", "running now: notify")


def test_doctor_writes_nothing(noc, db_url):
    tables = ("audit_log", "pass_run", "person", "tenant")
    before = [sql(db_url, f"SELECT count(*) FROM {table}") for table in tables]
    assert noc("doctor").exit_code == 0
    assert [sql(db_url, f"SELECT count(*) FROM {table}") for table in tables] == before


def test_the_cadences_are_those_of_crontab_example():
    crontab = (Path(__file__).resolve().parent.parent / "crontab.example").read_text()
    every = {"*": 60, "*/5": 300, "*/10": 600}
    found = {}
    for line in crontab.splitlines():
        match = re.match(r"(\S+)\s+(\S+)\s+\*\s+\*\s+\*\s+nocctl (\w+) run\b", line)
        if match:
            minute, hour, name = match.groups()
            found[name] = 86400 if hour != "*" else every[minute]
    assert found == doctor.CADENCES


def test_a_bad_value_fails_the_config_line_as_it_would_fail_the_command(noc, tmp_path, monkeypatch):
    """Keys all known, but a value a command cannot read: doctor says so, as `ingest` or the
    pass would exit 65."""
    for content, key in (('correlation_window = "5 minutes"\n', "correlation_window"),
                         ('[snapshot]\nlate_rate = "x"\n', "late_rate"),
                         ('[sla]\nCRITICAL = "soon"\n', "CRITICAL")):
        configure(tmp_path, monkeypatch, content)
        result = noc("doctor")
        assert_problem(result, "config")
        mark, detail = lines(result)["config"]
        assert mark == "FAIL" and key in detail, detail


def test_a_pass_run_at_a_future_now_is_recorded_no_later_than_the_wall_clock(noc, db_url):
    """`snapshot run --now +2d` must not make doctor believe cron ran two days from now."""
    from datetime import UTC, datetime, timedelta

    from nocctl.services import passes

    engine = make_engine(db_url)
    try:
        with passes.running(engine, "snapshot", datetime.now(UTC) + timedelta(days=2)):
            pass
        tenant_id = passes.tenants(engine)[0].id
        ran = passes.last_runs(engine, tenant_id)["snapshot"]
        ran = ran if ran.tzinfo else ran.replace(tzinfo=UTC)
        assert ran <= datetime.now(UTC)
    finally:
        engine.dispose()
