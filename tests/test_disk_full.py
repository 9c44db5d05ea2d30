"""A full disk or an unwritable path while writing a file: `-o FILE` of a listing, `report …
-o FILE` (HTML included) and the retention archive — on a real file system (a small tmpfs
mounted per test), against the backend under test.

Each case: one line `nocctl: error: …` naming the path and the OS's reason with a remedy,
the documented exit code (a path that cannot be written: 2 on the command line, 65 in the
config file; no space: 75), nothing half-written left (no truncated file, no temporary
file, no partial archive; an existing file keeps its content) and nothing deleted or
recorded in the database."""
from __future__ import annotations

import errno
import os
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from ingest_helpers import ORG
from nocctl.models import Alert, AuditLog, BusinessUnit, Incident, Snapshot

NOW = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)  # past the archive age the retention tests configure
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
READ_ONLY = os.strerror(errno.EROFS)  # "Read-only file system"


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- a small real file system

class SmallDisk:
    """A 64 KiB tmpfs: filled up, or remounted read-only, by the test."""

    def __init__(self, path: Path):
        self.path = path
        self.pad = path / "pad"

    def fill(self, leave: int = 0) -> None:
        """Write until the file system refuses (ENOSPC), then give back `leave` bytes."""
        fd = os.open(self.pad, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            chunk = os.urandom(4096)
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc  # noqa: PT017 -- a sanity check while filling the disk, not the test
                    break
            if leave:
                os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
        finally:
            os.close(fd)

    def free(self) -> None:
        self.pad.unlink(missing_ok=True)

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)

    def files(self) -> set[str]:
        """Every file left, temporary ones (dot files) included, relative to the mount."""
        return {str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file()} - {"pad"}


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "small"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", str(path)], check=True, capture_output=True)


# ---------------------------------------------------------------- data

@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(NOW))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def units(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(BusinessUnit.code, BusinessUnit.id)).all())


def add_alerts(engine, count: int, resolved_at: datetime | None = None) -> set[int]:
    """`count` alerts with incompressible messages (an archive of them is as large as they are)."""
    unit = units(engine)
    first = (resolved_at or NOW) - timedelta(days=3)
    rows = [dict(tenant_id=1, client_id=unit["ACME"], site_id=unit["ACME-BLR-WF"], alert_type="DEVICE_OFFLINE",
                 severity="HIGH", status="RESOLVED" if resolved_at else "NEW",
                 message=f"alert {n} {secrets.token_hex(128)}", entity_type="device", entity_id=f"cam-{n}",
                 dedup_key=f"disk-{n}", metadata={"n": n}, first_seen_at=first, last_seen_at=first, created_at=first,
                 correlation_id=f"g-{n}", resolved_at=resolved_at,
                 time_to_resolve=int((resolved_at - first).total_seconds()) if resolved_at else None)
            for n in range(count)]
    with engine.begin() as conn:
        conn.execute(insert(Alert.__table__), rows)
    return alert_ids(engine)


def alert_ids(engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Alert.id)))


def count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where))


def exports(engine) -> int:
    return count(engine, AuditLog, AuditLog.action == "EXPORT_DATA")


def one_line(result) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def no_space(path: Path, kept: bool = False) -> str:
    unchanged = " (the existing file is unchanged)" if kept else ""
    return (f"nocctl: error: cannot write {path}: {NO_SPACE}; nothing was written{unchanged}; "
            f"free space in {path.parent} (or write elsewhere) and run again\n")


def unwritable(path: Path, reason: str, remedy: str) -> str:
    return f"nocctl: error: Invalid value for '-o' / '--output': cannot write {path}: {reason}; {remedy}\n"


# ---------------------------------------------------------------- listings: -o FILE

@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_listing_larger_than_the_disk_exits_75_and_leaves_no_file(noc, engine, disk, fmt):
    ids = add_alerts(engine, 300)  # ~200 KiB of JSON, ~100 KiB of CSV: more than the 64 KiB there are
    target = disk.path / f"alerts.{fmt}"
    result = noc("alert", "list", "--limit", "1000", "--format", fmt, "-o", str(target))
    assert result.exit_code == 75, result.stderr
    assert result.stdout == ""
    assert one_line(result) == no_space(target)
    assert disk.files() == set()  # no truncated file, no temporary file
    assert alert_ids(engine) == ids
    # The same listing fits once written to stdout: the file was the only problem.
    assert len(noc("alert", "list", "--limit", "1000", "--format", fmt).stdout) > 64 * 1024


def test_a_listing_into_a_full_disk_keeps_the_existing_file(noc, engine, disk):
    add_alerts(engine, 5)
    target = disk.path / "audit.json"
    target.write_text("[]\n")
    disk.fill()
    result = noc("audit", "list", "--format", "json", "-o", str(target))
    assert result.exit_code == 75, result.stderr
    assert one_line(result) == no_space(target, kept=True)
    assert target.read_text() == "[]\n"
    assert disk.files() == {"audit.json"}


# ---------------------------------------------------------------- reports: report … -o FILE

def test_a_weekly_html_report_into_a_full_disk_keeps_the_old_report(noc, engine, disk):
    add_alerts(engine, 20)
    target = disk.path / "r.html"
    target.write_text("<p>last week's report</p>\n")
    os.chmod(target, 0o644)
    disk.fill()
    result = noc("report", "weekly", "--format", "html", "-o", str(target))
    assert result.exit_code == 75, result.stderr
    assert result.stdout == ""
    assert one_line(result) == no_space(target, kept=True)
    assert target.read_text() == "<p>last week's report</p>\n"
    assert disk.files() == {"r.html"}  # no temporary file beside it
    assert exports(engine) == 0  # nothing was exported, so no EXPORT_DATA row says so
    # With room again the same command replaces it in one step, and records the export.
    disk.free()
    again = noc("report", "weekly", "--format", "html", "-o", str(target))
    assert again.exit_code == 0, again.stderr
    assert target.read_text().lstrip().lower().startswith("<!doctype html>")
    assert disk.files() == {"r.html"} and exports(engine) == 1


# ---------------------------------------------------------------- retention archive

@pytest.fixture
def configure(tmp_path, monkeypatch):
    def write(text: str) -> None:
        path = tmp_path / "nocctl.toml"
        path.write_text(text)
        monkeypatch.setenv("NOC_CONFIG", str(path))

    return write


def old_incident_and_snapshot(engine) -> None:
    """An incident past its archive age (its archive is small: it fits) and a snapshot past
    its purge age: neither may go when the alerts' archive cannot be written."""
    unit = units(engine)
    with engine.begin() as conn:
        conn.execute(insert(Incident.__table__).values(
            tenant_id=1, title="long closed", severity="HIGH", status="CLOSED", client_id=unit["ACME"],
            created_at=LONG_AGO - timedelta(days=5), resolved_at=LONG_AGO, closed_at=LONG_AGO))
        conn.execute(insert(Snapshot.__table__).values(
            tenant_id=1, scope="SITE", unit_id=unit["ACME-BLR-WF"], client_id=unit["ACME"],
            site_id=unit["ACME-BLR-WF"], window_start=LONG_AGO - timedelta(minutes=5), window_end=LONG_AGO,
            in_maintenance=False, metrics={"tickets_open": 1}, created_at=LONG_AGO))


def test_a_retention_archive_into_a_full_disk_deletes_nothing_and_a_rerun_archives(noc, engine, disk,
                                                                                   configure):
    ids = add_alerts(engine, 200, resolved_at=LONG_AGO)  # ~60 KiB of gzip: incompressible messages
    old_incident_and_snapshot(engine)
    archive = disk.path / "archive"
    configure(f'[retention]\nalerts = "365d"\nincidents = "365d"\narchive_dir = "{archive}"\n')
    disk.fill(leave=16 * 1024)  # room for the incidents' archive, not for the alerts'
    result = noc("retention", "run", "--now", iso(NOW))
    assert result.exit_code == 75, result.stderr
    assert result.stdout == ""
    assert one_line(result) == (
        f"nocctl: error: cannot write the archive in {archive}: {NO_SPACE}; nothing was deleted; free space in "
        f"{archive} (or set retention.archive_dir to a larger file system) and run again\n")
    assert alert_ids(engine) == ids  # every alert row is still there
    assert count(engine, Incident) == 1 and count(engine, Snapshot) == 1  # and nothing else went either
    assert disk.files() == set()  # no partial archive, no temporary file, not even the incidents' archive
    # Space freed, the same run archives everything, then deletes it.
    disk.free()
    done = noc("retention", "run", "--now", iso(NOW))
    assert done.exit_code == 0, done.stderr
    assert alert_ids(engine) == set() and count(engine, Incident) == 0 and count(engine, Snapshot) == 0
    assert disk.files() == {"archive/alerts-default-2026-03-01.ndjson.gz",
                            "archive/incidents-default-2026-03-01.ndjson.gz"}


# ---------------------------------------------------------------- unwritable paths

def test_a_listing_into_a_read_only_file_system_is_a_usage_error(noc, engine, disk):
    ids = add_alerts(engine, 5)
    old = disk.path / "old.json"
    old.write_text("[]\n")
    disk.read_only()
    for target in (disk.path / "alerts.json", old):
        result = noc("alert", "list", "--format", "json", "-o", str(target))
        assert result.exit_code == 2, result.stderr
        if target == old:  # Click's own check of an existing file (`-o` is a writable Path)
            assert one_line(result) == (f"nocctl: error: Invalid value for '-o' / '--output': File '{target}' is "
                                        f"not writable. (see 'nocctl alert list --help')\n")
        else:
            assert one_line(result) == unwritable(target, READ_ONLY, "choose a file on a writable file system")
    assert disk.files() == {"old.json"} and old.read_text() == "[]\n"
    assert alert_ids(engine) == ids


def test_a_listing_under_a_regular_file_is_a_usage_error(noc, disk):
    (disk.path / "plain").write_text("a file\n")
    target = disk.path / "plain" / "alerts.json"
    result = noc("alert", "list", "--format", "json", "-o", str(target))
    assert result.exit_code == 2, result.stderr
    assert one_line(result) == unwritable(target, os.strerror(errno.ENOTDIR),
                                          "a part of the path is a file, not a directory; choose another file")
    assert disk.files() == {"plain"}


def test_a_report_into_a_read_only_file_system_is_a_usage_error_and_no_export(noc, engine, disk):
    old = disk.path / "r.html"
    old.write_text("<p>last week's report</p>\n")
    disk.read_only()
    for target in (disk.path / "new.html", old):
        result = noc("report", "weekly", "--format", "html", "-o", str(target))
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
        assert one_line(result) == unwritable(target, READ_ONLY, "choose a file on a writable file system")
    assert old.read_text() == "<p>last week's report</p>\n" and disk.files() == {"r.html"}
    assert exports(engine) == 0


def test_a_report_into_a_missing_directory_is_a_usage_error(noc, engine, disk):
    target = disk.path / "missing" / "r.html"
    result = noc("report", "weekly", "--format", "html", "-o", str(target))
    assert result.exit_code == 2, result.stderr
    assert one_line(result) == unwritable(target, os.strerror(errno.ENOENT),
                                          f"create {target.parent} first or choose another file")
    assert disk.files() == set() and exports(engine) == 0


def test_a_retention_archive_on_a_read_only_file_system_exits_65_and_deletes_nothing(noc, engine, disk,
                                                                                    configure):
    ids = add_alerts(engine, 3, resolved_at=LONG_AGO)
    old_incident_and_snapshot(engine)
    (disk.path / "archive").mkdir()
    disk.read_only()
    for archive in (disk.path / "archive", disk.path / "new"):  # an existing directory, one to create
        configure(f'[retention]\nalerts = "365d"\nincidents = "365d"\narchive_dir = "{archive}"\n')
        result = noc("retention", "run", "--now", iso(NOW))
        # A bad setting (the path comes from the config file), like every retention setting.
        assert result.exit_code == 65, result.stderr
        assert one_line(result) == (
            f"nocctl: error: cannot write the archive in {archive}: {READ_ONLY}; nothing was deleted; make "
            "retention.archive_dir a directory nocctl may write to and run again\n")
        assert alert_ids(engine) == ids
        assert count(engine, Incident) == 1 and count(engine, Snapshot) == 1
    assert disk.files() == set()
