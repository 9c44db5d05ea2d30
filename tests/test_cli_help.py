"""The command tree as a whole: every command (nested groups included) has help that works,
and every failure comes out as one `nocctl: error: …` line with its documented exit code."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from nocctl.cli import cli as root
from nocctl.errors import ExitCode


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], path + (name,))


COMMANDS = dict(walk(root))
GROUPS = {path: cmd for path, cmd in COMMANDS.items() if isinstance(cmd, click.Group)}
IDS = [" ".join(path) or "nocctl" for path in COMMANDS]


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def run(monkeypatch, tmp_path):
    """nocctl in-process with a database URL naming a file that does not exist: help must
    not need (or create) a database."""
    missing = tmp_path / "never" / "noc.db"
    monkeypatch.setenv("NOC_DATABASE_URL", f"sqlite:///{missing}")
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(root, list(args), catch_exceptions=False)
        return result

    yield invoke
    assert not missing.parent.exists()


def test_the_tree_is_what_the_design_lists():
    assert {path for path in COMMANDS if not COMMANDS[path].hidden} >= {
        (), ("init",), ("db",), ("db", "upgrade"), ("db", "downgrade"), ("db", "current"), ("db", "history"),
        ("config",), ("config", "show"),
        ("org",), ("org", "import"), ("org", "list"), ("org", "tree"), ("org", "client"), ("org", "client", "add"),
        ("org", "site"), ("org", "site", "add"),
        ("user",), ("user", "add"), ("user", "list"), ("user", "show"), ("user", "grant"), ("user", "revoke"),
        ("maintenance",), ("maintenance", "add"), ("maintenance", "list"), ("maintenance", "show"),
        ("maintenance", "end"), ("maintenance", "delete"), ("maintenance", "check"),
    }


@pytest.mark.parametrize("path", list(COMMANDS), ids=IDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command(run, path, flag):
    command = COMMANDS[path]
    result = run(*path, flag)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    usage = result.stdout.splitlines()[0]
    assert usage.startswith("Usage: ")
    words = usage.split()[2:]  # after "Usage: PROG"
    assert [w for w in words if w in path] == list(path)  # (a group's arguments may sit between)
    # the command's own text is shown, whitespace aside
    assert command.help and command.help.strip()
    first_paragraph = command.help.split("\n\n")[0].replace("\b", "")
    assert one_line(first_paragraph) in one_line(result.stdout)
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize("path", list(COMMANDS), ids=IDS)
def test_every_command_and_option_has_help_text(path):
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"{' '.join(path)} has no help"
    assert command.get_short_help_str().strip()
    if command.hidden:
        return
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize("path", list(GROUPS), ids=[" ".join(p) or "nocctl" for p in GROUPS])
def test_group_help_lists_its_commands_with_a_summary(run, path):
    group = GROUPS[path]
    text = run(*path, "--help").stdout
    listed = text.split("Commands:\n", 1)[1]
    entries = dict(re.findall(r"^  (\S+)\s+(.+)$", listed, flags=re.MULTILINE))
    visible = sorted(name for name, cmd in group.commands.items() if not cmd.hidden)
    assert sorted(entries) == visible
    assert all(summary.strip() for summary in entries.values())


def test_hidden_developer_command_is_not_listed(run):
    listed = run("db", "--help").stdout.split("Commands:\n", 1)[1]
    assert not re.search(r"^  revision ", listed, flags=re.MULTILINE)
    assert re.search(r"^  upgrade ", listed, flags=re.MULTILINE)
    assert run("db", "revision", "--help").exit_code == 0


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"nocctl, version \d+\.\d+\.\d+\S*\n", result.stdout)


NEEDS_COMMAND = [path for path, group in GROUPS.items() if not group.invoke_without_command]


@pytest.mark.parametrize("path", NEEDS_COMMAND, ids=[" ".join(p) or "nocctl" for p in NEEDS_COMMAND])
def test_a_group_without_a_command_shows_its_help_and_one_error_line(run, path):
    result = run(*path)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Usage: ")
    assert lines[-1] == "nocctl: error: missing command"
    assert sum(line.startswith("nocctl: error:") for line in lines) == 1
    assert "Commands:" in result.stderr


# ---------------------------------------------------------------- errors: one line, documented code


def assert_one_error_line(result, code: int, pattern: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert re.fullmatch(r"nocctl: error: " + pattern + r"\n", result.stderr), result.stderr


@pytest.mark.parametrize("args, code, pattern", [
    (("org", "list", "--bogus"), ExitCode.USAGE,
     r"No such option '--bogus'\.( Did you mean .*\?)? \(see '.* org list --help'\)"),
    (("--bogus", "org", "list"), ExitCode.USAGE,
     r"No such option '--bogus'\.( Did you mean .*\?)? \(see '.* --help'\)"),
    (("frobnicate",), ExitCode.USAGE, r"No such command 'frobnicate'\. \(see '.* --help'\)"),
    (("org", "client", "frobnicate"), ExitCode.USAGE, r"No such command 'frobnicate'\. \(see '.* org client --help'\)"),
    (("org", "list", "--format", "xml"), ExitCode.USAGE, r"Invalid value for '--format': 'xml' is not one of .*"),
    (("user", "grant", "asha"), ExitCode.USAGE, r"Missing argument 'CAPABILITY'\. .*"),
    (("org", "client", "add", "X"), ExitCode.USAGE, r"Missing option '--name'\. .*"),
    (("--log-format", "xml", "org", "list"), ExitCode.USAGE, r"Invalid value for '--log-format': .*"),
    (("user", "grant", "asha", "noc:bogus"), ExitCode.DATA_ERROR,
     r"unknown capability 'noc:bogus'; one of: noc:view, .*"),
    (("user", "add", "bad name"), ExitCode.DATA_ERROR, r"invalid username 'bad name'; .*"),
    (("org", "site", "add", "S1", "--client", "NOPE", "--name", "S"), ExitCode.NOT_FOUND,
     r"no client 'NOPE'; see `nocctl org list`"),
    (("org", "list", "--client", "NOPE"), ExitCode.NOT_FOUND, r"no client 'NOPE'; see `nocctl org list`"),
    (("user", "show", "ghost"), ExitCode.NOT_FOUND, r"no person 'ghost'; see `nocctl user list`"),
    (("--tenant", "nosuch", "org", "list"), ExitCode.NOT_FOUND,
     r"tenant 'nosuch' does not exist; run `nocctl --tenant nosuch init` to create it"),
    (("org", "client", "add", "ACME", "--name", "Again"), ExitCode.CONFLICT,
     r"client 'ACME' already exists; use `nocctl org import` to update it"),
    (("user", "add", "asha"), ExitCode.CONFLICT, r"person 'asha' already exists; .*"),
    (("--as", "nobody", "org", "list"), ExitCode.NO_PERMISSION,
     (r"'nobody' is not a NOC operator of tenant 'default'; an admin can run `nocctl user add nobody` and "
      r"`nocctl user grant nobody CAPABILITY`")),
    (("--as", "asha", "org", "client", "add", "NEW", "--name", "New"), ExitCode.NO_PERMISSION,
     r"'asha' lacks noc:configure tenant-wide; an admin can run `nocctl user grant asha noc:configure`"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_errors_are_one_line_with_the_documented_exit_code(admin_cli, args, code, pattern):
    assert admin_cli("user", "add", "asha").exit_code == 0
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0
    assert_one_error_line(admin_cli(*args), int(code), pattern)


def test_noc_actor_naming_no_person_is_77(admin_cli):
    assert_one_error_line(admin_cli("user", "list", env={"NOC_ACTOR": "nobody"}), 77,
                          r"'nobody' is not a NOC operator of tenant 'default'; .*")


def test_missing_sqlite_file_is_3_and_is_not_created(cli, tmp_path):
    missing = tmp_path / "nope.db"
    assert_one_error_line(cli("--db", f"sqlite:///{missing}", "user", "list"), 3,
                          re.escape(f"no database at {missing}; run `nocctl init` to create it, or pass --db"))
    assert not missing.exists()


def test_missing_sqlite_file_through_the_environment_is_3(cli, tmp_path):
    missing = tmp_path / "nope.db"
    assert_one_error_line(cli("org", "tree", env={"NOC_DATABASE_URL": f"sqlite:///{missing}"}), 3,
                          re.escape(f"no database at {missing}; ") + ".*")


def test_unreachable_database_is_75(cli):
    assert_one_error_line(cli("--db", "postgresql://noc@127.0.0.1:1/noc", "org", "list"), 75,
                          r"database unavailable \(.*\); check --db / NOC_DATABASE_URL and retry")


def test_bad_config_file_is_65(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[unclosed\n")
    assert_one_error_line(cli("org", "list", env={"NOC_CONFIG": str(bad)}), 65,
                          re.escape(f"config file {bad} is not valid TOML: ") + ".*")


def test_bad_import_lists_rows_then_one_error_line(admin_cli):
    result = admin_cli("org", "import", "-", input="kind,code,name\nclient,ACME,Acme\nrobot,R2,D2\n")
    assert result.exit_code == 65
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "nocctl: <stdin>:3: kind must be person, client or site, not 'robot'",
        "nocctl: error: 1 problem(s) in the import; nothing was applied; fix the rows above and run it again",
    ]


def test_verbose_shows_the_traceback(admin_cli):
    result = admin_cli("-v", "--as", "nobody", "org", "list")
    assert result.exit_code == 77
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.splitlines()[-1].startswith("nocctl: error: 'nobody' is not a NOC operator")


def test_a_global_option_after_the_command_says_where_it_goes(run):
    """`nocctl org import FILE --db URL` (the common slip): exit 2 and the remedy, not a
    bare 'no such option'."""
    result = run("org", "import", "examples/org.json", "--db", "sqlite:////tmp/elsewhere.db")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.strip().endswith(
        "(--db is a global option: it goes before the command, `nocctl --db … COMMAND`)")
    other = run("alert", "list", "--bogus")
    assert other.exit_code == ExitCode.USAGE and "(see 'nocctl alert list --help')" in other.stderr
