"""Files nocctl creates are private whatever the umask (DESIGN §3a, issue 14): the SQLite
database 0600 (its -wal, -shm and -journal follow) in a 0700 directory when nocctl makes
it, `-o` exports and reports, `--rejects` files, retention archives and their directory,
pass lock files. A database file others may read is warned about, once, on stderr.

Every nocctl here is a real process started under `umask 022` (the common default, which
would make files 0644), and one under `umask 000`."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BACKEND
from ingest_helpers import ORG, alert, ndjson
from nocctl import private

NOW = "2026-03-01T03:30:00Z"
WARNING = "nocctl: warning: the database "


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def nocctl(*args: str, db: str | None = None, umask: int = 0o022, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`nocctl ARGS` as a real process under `umask`."""
    environment = {**os.environ, **(env or {})}
    if db is not None:
        environment["NOC_DATABASE_URL"] = db
    return subprocess.run([sys.executable, "-m", "nocctl", *args], env=environment, umask=umask, input=input,
                          capture_output=True, text=True, timeout=120)


def python(code: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], umask=umask, capture_output=True, text=True, timeout=120)


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, result.stderr
    return result


@pytest.fixture
def sqlite_db(tmp_path) -> tuple[Path, str]:
    """An initialised SQLite database made by `nocctl init` under umask 022."""
    path = tmp_path / "home" / "noc.db"
    url = f"sqlite:///{path}"
    ok(nocctl("init", db=url))
    return path, url


# ---------------------------------------------------------------- the database and its directory

@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_init_makes_a_private_database_in_a_private_directory(tmp_path, umask):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "made" / "by" / "nocctl" / "noc.db"
    result = ok(nocctl("init", db=f"sqlite:///{path}", umask=umask))
    assert WARNING not in result.stderr
    assert mode(path) == 0o600
    for directory in (tmp_path / "made", tmp_path / "made" / "by", path.parent):
        assert mode(directory) == 0o700, directory
    assert mode(tmp_path) == 0o755  # a directory that was there is not nocctl's to change
    for leftover in path.parent.iterdir():  # -wal/-shm, if SQLite kept them
        assert mode(leftover) == 0o600, leftover


def test_the_default_database_goes_in_a_private_data_directory(tmp_path):
    ok(nocctl("init"))  # $XDG_DATA_HOME (the conftest's) /nocctl/noc.db
    made = tmp_path / "data" / "nocctl"
    assert mode(made / "noc.db") == 0o600 and mode(made) == 0o700 and mode(tmp_path / "data") == 0o700


def test_wal_shm_and_journal_files_follow_the_database_mode(sqlite_db):
    path, url = sqlite_db
    probe = f"""
import os, sqlite3, stat
from nocctl.db import make_engine
path = {str(path)!r}
modes = {{}}
engine = make_engine({url!r})
with engine.begin() as conn:  # WAL: a write makes -wal and -shm
    conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    for suffix in ("-wal", "-shm"):
        modes[suffix] = stat.S_IMODE(os.stat(path + suffix).st_mode)
engine.dispose()
raw = sqlite3.connect(path, isolation_level=None)  # a rollback journal, as SQLite makes one
raw.execute("PRAGMA journal_mode=DELETE")
raw.execute("BEGIN IMMEDIATE")
raw.execute("INSERT INTO probe VALUES (2)")
modes["-journal"] = stat.S_IMODE(os.stat(path + "-journal").st_mode)
raw.execute("ROLLBACK")
raw.execute("DROP TABLE probe")
raw.execute("PRAGMA journal_mode=WAL")
raw.close()
print(modes)
"""
    result = ok(python(probe))
    assert result.stdout.strip() == str({"-wal": 0o600, "-shm": 0o600, "-journal": 0o600})
    assert WARNING not in result.stderr


# ---------------------------------------------------------------- the warning

@pytest.mark.parametrize("exposed", [0o644, 0o640, 0o604, 0o660], ids=lambda m: f"mode-{m:o}")
def test_a_database_others_can_open_is_warned_about_once(sqlite_db, exposed):
    path, url = sqlite_db
    os.chmod(path, exposed)
    result = ok(nocctl("alert", "list", "--format", "json", db=url))
    assert result.stdout == "[]\n"
    warnings = [line for line in result.stderr.splitlines() if line.startswith(WARNING)]
    assert warnings == [f"{WARNING}{path} is open to other users (mode {exposed:04o}); run `chmod 600 {path}`"]
    assert result.stderr.count("warning") == 1
    # an ingest (a reader process, the writer, several sessions) still says it once
    ok(nocctl("org", "import", str(ORG), db=url))
    result = ok(nocctl("ingest", "-", db=url, input=ndjson(*(alert(entity=f"cam-{i}") for i in range(50)))))
    assert result.stderr.count(WARNING) == 1
    # and one process making its engine twice
    twice = ok(python(f"from nocctl.db import make_engine\nmake_engine({url!r}).dispose()\n"
                      f"make_engine({url!r}).dispose()\n"))
    assert twice.stderr.count(WARNING) == 1
    assert mode(path) == exposed  # a warning, not a change behind the owner's back


def test_a_private_database_is_not_warned_about(sqlite_db):
    path, url = sqlite_db
    assert mode(path) == 0o600
    result = ok(nocctl("alert", "list", "--format", "json", db=url))
    assert result.stderr == ""
    os.chmod(path, 0o400)  # read-only for its owner: still private
    assert ok(nocctl("alert", "list", "--format", "json", db=url)).stderr == ""


@pytest.mark.skipif(BACKEND != "postgresql", reason="the backend under test is SQLite; the PostgreSQL case "
                    "needs NOC_TEST_DATABASE_URL")
def test_postgresql_has_no_file_to_warn_about(db_url):
    ok(nocctl("init", db=db_url))
    result = ok(nocctl("alert", "list", "--format", "json", db=db_url))
    assert WARNING not in result.stderr


# ---------------------------------------------------------------- exports, rejects, archives, locks

def test_exports_are_private(db_url, tmp_path):
    ok(nocctl("init", db=db_url))
    out = tmp_path / "out"
    out.mkdir()
    ok(nocctl("alert", "list", "--format", "csv", "-o", str(out / "alerts.csv"), db=db_url))
    ok(nocctl("user", "list", "--format", "json", "-o", str(out / "people.json"), db=db_url))
    ok(nocctl("report", "mttr", "--days", "7", "-o", str(out / "mttr.csv"), db=db_url))
    ok(nocctl("report", "weekly", "--days", "7", "-o", str(out / "weekly.html"), db=db_url))
    for name in ("alerts.csv", "people.json", "mttr.csv", "weekly.html"):
        assert mode(out / name) == 0o600, name
        assert (out / name).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["alerts.csv", "mttr.csv", "people.json", "weekly.html"]
    # an existing file keeps the mode its owner gave it (a report a web server reads)
    served = out / "served.html"
    served.write_text("old")
    os.chmod(served, 0o644)
    ok(nocctl("report", "weekly", "--days", "7", "-o", str(served), db=db_url))
    assert mode(served) == 0o644 and served.read_text() != "old"


def test_the_rejects_file_is_private(db_url, tmp_path):
    ok(nocctl("init", db=db_url))
    records = ndjson(alert(site="NO-SUCH-SITE"), {"not": "an alert"})
    rejects = tmp_path / "rejects.ndjson"
    result = nocctl("ingest", "--rejects", str(rejects), "-", db=db_url, input=records)
    assert result.returncode == 65, result.stderr
    assert mode(rejects) == 0o600 and len(rejects.read_text().splitlines()) == 2
    kept = tmp_path / "kept.ndjson"
    kept.write_text("")
    os.chmod(kept, 0o640)
    assert nocctl("ingest", "--rejects", str(kept), "-", db=db_url, input=records).returncode == 65
    assert mode(kept) == 0o640 and len(kept.read_text().splitlines()) == 2


def test_retention_archives_their_directory_and_the_lock_file_are_private(db_url, tmp_path):
    ok(nocctl("init", db=db_url))
    ok(nocctl("org", "import", str(ORG), db=db_url))
    old = [alert(entity=f"cam-{i}", at="2025-01-01T10:00:00Z", dedup_key=f"old-{i}") for i in range(3)]
    resolved = [{"action": "resolve", "dedup_key": f"old-{i}", "occurred_at": "2025-01-02T10:00:00Z"}
                for i in range(3)]
    ok(nocctl("ingest", "-", db=db_url, input=ndjson(*old, *resolved)))
    archive = tmp_path / "archives" / "noc"
    config = tmp_path / "retention.toml"
    config.write_text(f'[retention]\nalerts = "30d"\narchive_dir = "{archive}"\n')
    result = ok(nocctl("retention", "run", "--now", NOW, "--json", db=db_url, env={"NOC_CONFIG": str(config)}))
    summary = json.loads(result.stdout)
    assert summary["alerts_archived"] == 3
    [written] = [Path(p) for p in summary["archive_files"]]
    assert written.parent == archive and mode(written) == 0o600
    assert mode(archive) == 0o700 and mode(archive.parent) == 0o700
    if BACKEND == "sqlite":  # PostgreSQL: an advisory lock, no file
        database = Path(db_url.removeprefix("sqlite:///"))
        locks = sorted(database.parent.glob(f"{database.name}.*.lock"))
        assert [p.name for p in locks] == [f"{database.name}.retention.lock"]
        assert mode(locks[0]) == 0o600


# ---------------------------------------------------------------- the rule itself

def test_the_rule_holds_under_any_umask(tmp_path):
    previous = os.umask(0o277)  # it would take the owner's write bit too
    try:
        private.make_dirs(tmp_path / "a" / "b")
        fd = private.open_file(tmp_path / "a" / "b" / "f", os.O_WRONLY)
        os.close(fd)
        assert private.create_empty(tmp_path / "a" / "b" / "g") is True
        assert private.create_empty(tmp_path / "a" / "b" / "g") is False
    finally:
        os.umask(previous)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "f") == mode(tmp_path / "a" / "b" / "g") == 0o600
    # through a dangling symlink: its target is created, private
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.close(private.open_file(tmp_path / "link", os.O_WRONLY))
    assert mode(tmp_path / "target") == 0o600
    assert private.exposed_mode(tmp_path / "target") is None
    os.chmod(tmp_path / "target", 0o604)
    assert private.exposed_mode(tmp_path / "target") == 0o604
