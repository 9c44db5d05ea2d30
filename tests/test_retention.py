"""`nocctl retention run` (issue #8): each age and its boundary (a row exactly at the cutoff
stays), what is never removed (PENDING/FAILED notifications, alerts and incidents without
archive ages, the audit log), archiving (the file holds exactly the rows deleted; linked
alerts stay), batches, the dry run, the lock, bad settings and a second run — against the
backend under test."""
from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from ingest_helpers import ORG
from nocctl.models import (
    Alert,
    AuditLog,
    BusinessUnit,
    Incident,
    IncidentAlert,
    IngestEvent,
    IngestReject,
    Notification,
    Snapshot,
    Tenant,
)
from nocctl.services import passlock

NOW = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
MONTH = NOW - timedelta(days=30)  # the default cutoff of the purged kinds
YEAR = NOW - timedelta(days=365)  # the archive cutoff the tests configure
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
KINDS = ("snapshots", "event_keys", "notifications", "rejects")


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def configure(tmp_path, monkeypatch):
    def write(text: str) -> Path:
        path = tmp_path / "nocctl.toml"
        path.write_text(text)
        monkeypatch.setenv("NOC_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(NOW))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def retention(noc, *args: str, code: int = 0) -> dict:
    result = noc("retention", "run", "--now", iso(NOW), "--json", *args)
    assert result.exit_code == code, result.stderr
    summary = json.loads(result.stdout)
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(logged) == 1 and logged[0]["event"] == "retention summary"
    assert {k: logged[0][k] for k in summary} == summary
    return summary


class World:
    """Rows written directly, at chosen instants, with their ids by name."""

    def __init__(self, engine):
        self.engine = engine
        with engine.connect() as conn:
            self.units = dict(conn.execute(select(BusinessUnit.code, BusinessUnit.id)).all())
        self.ids: dict[str, int] = {}
        self.keys: dict[str, bytes] = {}

    def _insert(self, table, values: dict) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(insert(table).values(tenant_id=1, **values).returning(table.c.id))
            return result.scalar_one()

    def snapshot(self, name: str, window_end: datetime, unit: str = "ACME-BLR-WF") -> None:
        site = self.units[unit]
        self.ids[name] = self._insert(Snapshot.__table__, dict(
            scope="SITE", unit_id=site, client_id=self.units["ACME"], site_id=site,
            window_start=window_end - timedelta(minutes=5), window_end=window_end, in_maintenance=False,
            metrics={"tickets_open": 1}, created_at=window_end))

    def event_key(self, name: str, seen_at: datetime) -> None:
        key = hashlib.md5(name.encode()).digest()
        with self.engine.begin() as conn:
            conn.execute(insert(IngestEvent.__table__).values(tenant_id=1, event_key=key, seen_at=seen_at))
        self.keys[name] = key

    def notification(self, name: str, status: str, at: datetime) -> None:
        self.ids[name] = self._insert(Notification.__table__, dict(
            created_at=at - timedelta(minutes=1), kind="ESCALATION", channel="ops", payload={"n": name},
            status=status, attempts=1, next_attempt_at=at, sent_at=at if status == "SENT" else None))

    def reject(self, name: str, status: str, at: datetime) -> None:
        self.ids[name] = self._insert(IngestReject.__table__, dict(
            received_at=at, source="-", line=1, reason="bad", raw=name,
            raw_hash=hashlib.sha1(name.encode()).hexdigest(),
            status=status, retried_at=at if status == "RETRIED" else None))

    def alert(self, name: str, status: str = "RESOLVED", resolved_at: datetime | None = None,
              parent: str | None = None, group: str | None = None) -> None:
        first = (resolved_at or YEAR) - 3 * DAY
        self.ids[name] = self._insert(Alert.__table__, dict(
            client_id=self.units["ACME"], site_id=self.units["ACME-BLR-WF"], alert_type="DEVICE_OFFLINE",
            severity="HIGH", status=status, message=f"alert {name}", entity_type="device", entity_id=name,
            dedup_key=f"k-{name}", metadata={"name": name}, first_seen_at=first, last_seen_at=first,
            created_at=first, correlation_id=group or f"g-{name}",
            parent_alert_id=self.ids[parent] if parent else None, resolved_at=resolved_at,
            time_to_resolve=int((resolved_at - first).total_seconds()) if resolved_at else None))

    def incident(self, name: str, status: str, closed_at: datetime | None = None, alerts: tuple[str, ...] = ()) -> None:
        created = (closed_at or YEAR) - 5 * DAY
        self.ids[name] = self._insert(Incident.__table__, dict(
            title=f"incident {name}", severity="HIGH", status=status, client_id=self.units["ACME"],
            created_at=created, closed_at=closed_at, resolved_at=closed_at))
        with self.engine.begin() as conn:
            for alert in alerts:
                conn.execute(insert(IncidentAlert.__table__).values(
                    tenant_id=1, incident_id=self.ids[name], alert_id=self.ids[alert], added_at=created))

    def ids_of(self, model) -> set[int]:
        with self.engine.connect() as conn:
            return set(conn.scalars(select(model.id)))

    def names_left(self, model) -> set[str]:
        left = self.ids_of(model)
        return {name for name, i in self.ids.items() if i in left and name.startswith(_prefix(model))}

    def keys_left(self) -> set[str]:
        with self.engine.connect() as conn:
            stored = set(conn.scalars(select(IngestEvent.event_key)))
        return {name for name, key in self.keys.items() if key in stored}


def _prefix(model) -> str:
    return {Snapshot: "s_", Notification: "n_", IngestReject: "r_", Alert: "a_", Incident: "i_"}[model]


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {m.__tablename__: conn.scalar(select(func.count()).select_from(m))
                for m in (Snapshot, IngestEvent, Notification, IngestReject, Alert, Incident, IncidentAlert, AuditLog)}


def audit_chain(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AuditLog.id, AuditLog.hash).order_by(AuditLog.id))]


@pytest.fixture
def world(noc, engine):
    w = World(engine)
    for label, at in (("old", MONTH - 40 * DAY), ("before", MONTH - SECOND), ("at", MONTH), ("after", MONTH + SECOND)):
        w.snapshot(f"s_{label}", at)
        w.event_key(f"e_{label}", at)
        w.notification(f"n_sent_{label}", "SENT", at)
        w.reject(f"r_pending_{label}", "PENDING", at)
        w.reject(f"r_retried_{label}", "RETRIED", at)
    w.notification("n_failed_old", "FAILED", MONTH - 40 * DAY)
    w.notification("n_pending_old", "PENDING", MONTH - 40 * DAY)
    # Alerts and incidents, all long past the purged kinds' ages.
    w.alert("a_free", resolved_at=YEAR - SECOND)
    w.alert("a_at_cutoff", resolved_at=YEAR)
    w.alert("a_in_open_incident", resolved_at=YEAR - DAY)
    w.alert("a_in_old_incident", resolved_at=YEAR - DAY)
    w.alert("a_in_recent_incident", resolved_at=YEAR - DAY)
    w.alert("a_active", status="NEW")
    w.alert("a_parent_of_active", resolved_at=YEAR - DAY, group="g1")
    w.alert("a_active_child", status="ACKNOWLEDGED", parent="a_parent_of_active", group="g1")
    w.alert("a_parent", resolved_at=YEAR - DAY, group="g2")
    w.alert("a_child", resolved_at=YEAR - DAY, parent="a_parent", group="g2")
    w.incident("i_old", "CLOSED", YEAR - DAY, alerts=("a_in_old_incident",))
    w.incident("i_at_cutoff", "CLOSED", YEAR)
    w.incident("i_open", "IN_PROGRESS", alerts=("a_in_open_incident",))
    w.incident("i_resolved", "RESOLVED", YEAR - 10 * DAY)
    w.incident("i_recent", "CLOSED", YEAR + DAY, alerts=("a_in_recent_incident",))
    # Audit rows, some as old as anything here.
    assert noc("incident", "create", "--title", "audited", "--severity", "LOW").exit_code == 0
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    assert audit_chain(engine)
    return w


# ---------------------------------------------------------------- the purged kinds

def test_each_kind_goes_past_its_age_and_a_row_at_the_cutoff_stays(noc, world, engine):
    alerts_before, incidents_before = world.ids_of(Alert), world.ids_of(Incident)
    chain = audit_chain(engine)
    summary = retention(noc)
    assert {k: summary[k] for k in KINDS} == {"snapshots": 2, "event_keys": 2, "notifications": 2, "rejects": 4}
    assert summary["cutoffs"]["snapshots"] == iso(MONTH) and summary["cutoffs"]["alerts"] is None
    assert world.names_left(Snapshot) == {"s_at", "s_after"}
    assert world.keys_left() == {"e_at", "e_after"}
    assert world.names_left(Notification) == {"n_sent_at", "n_sent_after", "n_failed_old", "n_pending_old"}
    assert world.names_left(IngestReject) == {"r_pending_at", "r_pending_after", "r_retried_at", "r_retried_after"}
    # Without archive ages, alerts and incidents are untouched; the audit log always is.
    assert world.ids_of(Alert) == alerts_before and world.ids_of(Incident) == incidents_before
    assert summary["alerts_archived"] == summary["incidents_archived"] == 0 and summary["archive_files"] == []
    assert audit_chain(engine) == chain
    assert noc("audit", "verify").exit_code == 0


def test_a_second_run_right_after_removes_nothing(noc, world, engine):
    retention(noc)
    left = counts(engine)
    again = retention(noc)
    assert all(again[k] == 0 for k in (*KINDS, "alerts_archived", "incidents_archived"))
    assert counts(engine) == left


def test_configured_ages_and_never(noc, world, configure):
    configure('[retention]\nsnapshots = "70d"\nevent_keys = "never"\nnotifications = "31d"\nrejects = 2592000\n')
    summary = retention(noc)
    assert summary["snapshots"] == 0 and summary["event_keys"] == 0  # s_old is 70 days old: exactly at the cutoff
    assert summary["cutoffs"]["event_keys"] is None
    assert world.names_left(Snapshot) == {"s_old", "s_before", "s_at", "s_after"}
    assert world.names_left(Notification) == {"n_sent_before", "n_sent_at", "n_sent_after", "n_failed_old",
                                              "n_pending_old"}
    assert summary["rejects"] == 4  # 2592000 s = 30 days


def test_deletes_go_in_batches(noc, world, engine, configure):
    for n in range(7):
        world.snapshot(f"s_batch{n}", MONTH - (n + 1) * DAY, unit="ACME-MYS")
        world.event_key(f"e_batch{n}", MONTH - (n + 1) * DAY)
    for n in range(20):  # recent keys among the old ones (md5 order mixes them)
        world.event_key(f"e_recent{n}", NOW - DAY)
    configure("[retention]\nbatch_size = 2\n")
    summary = retention(noc)
    assert summary["snapshots"] == 9 and summary["event_keys"] == 9
    assert world.names_left(Snapshot) == {"s_at", "s_after"}
    assert world.keys_left() == {"e_at", "e_after"} | {f"e_recent{n}" for n in range(20)}


def test_dry_run_counts_and_changes_nothing(noc, world, engine, configure, tmp_path):
    archive = tmp_path / "archive"
    configure(f'[retention]\nalerts = "365d"\nincidents = "365d"\narchive_dir = "{archive}"\n')
    before = counts(engine)
    dry = retention(noc, "--dry-run")
    assert dry["dry_run"] is True and counts(engine) == before
    assert not archive.exists() and dry["archive_files"] == []
    real = retention(noc)
    for key in (*KINDS, "alerts_archived", "incidents_archived", "alerts_kept"):
        assert dry[key] == real[key], key


# ---------------------------------------------------------------- archiving

def read_archive(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("compress, batch", [(True, 10000), (False, 1)])
def test_archives_hold_exactly_the_rows_deleted(noc, world, engine, configure, tmp_path, compress, batch):
    archive = tmp_path / "archive"
    configure(f'[retention]\nalerts = "365d"\nincidents = "365d"\narchive_dir = "{archive}"\n'
              f"archive_gzip = {'true' if compress else 'false'}\nbatch_size = {batch}\n")
    chain = audit_chain(engine)
    alerts_before, incidents_before = world.ids_of(Alert), world.ids_of(Incident)
    summary = retention(noc)
    gone_alerts = alerts_before - world.ids_of(Alert)
    gone_incidents = incidents_before - world.ids_of(Incident)
    assert {n for n, i in world.ids.items() if i in gone_incidents and n.startswith("i_")} == {"i_old"}
    assert {n for n, i in world.ids.items() if i in gone_alerts and n.startswith("a_")} == {
        "a_free", "a_in_old_incident", "a_parent", "a_child"}
    assert summary["incidents_archived"] == 1 and summary["alerts_archived"] == 4
    # Resolved past the cutoff but kept: in an open or recently closed incident, or the
    # parent of an alert that stays.
    assert summary["alerts_kept"] == 3
    suffix = ".ndjson.gz" if compress else ".ndjson"
    assert sorted(Path(p).name for p in summary["archive_files"]) == [
        f"alerts-default-2026-03-01{suffix}", f"incidents-default-2026-03-01{suffix}"]
    files = {Path(p).name.split("-")[0]: read_archive(p) for p in summary["archive_files"]}
    assert {r["id"] for r in files["alerts"]} == gone_alerts
    assert {r["id"] for r in files["incidents"]} == gone_incidents
    [incident] = files["incidents"]
    assert incident["status"] == "CLOSED" and incident["closed_at"] == iso(YEAR - DAY)
    assert incident["alert_ids"] == [world.ids["a_in_old_incident"]] and incident["client_code"] == "ACME"
    free = next(r for r in files["alerts"] if r["id"] == world.ids["a_free"])
    assert free["message"] == "alert a_free" and free["metadata"] == {"name": "a_free"}
    assert free["resolved_at"] == iso(YEAR - SECOND) and free["site_code"] == "ACME-BLR-WF"
    assert not list(archive.glob(".*.tmp"))
    assert audit_chain(engine) == chain
    assert noc("audit", "verify").exit_code == 0
    # The next run finds nothing more and writes no file.
    again = retention(noc)
    assert again["alerts_archived"] == again["incidents_archived"] == 0 and again["archive_files"] == []


def test_alerts_alone_keep_every_alert_an_incident_links(noc, world, engine, configure, tmp_path):
    configure(f'[retention]\nalerts = "365d"\narchive_dir = "{tmp_path / "a"}"\n')
    incidents_before = world.ids_of(Incident)
    summary = retention(noc)
    assert world.ids_of(Incident) == incidents_before
    left = world.names_left(Alert)
    assert "a_in_old_incident" in left and "a_free" not in left and "a_parent" not in left
    assert summary["alerts_archived"] == 3 and summary["incidents_archived"] == 0
    assert [Path(p).name for p in summary["archive_files"]] == ["alerts-default-2026-03-01.ndjson.gz"]


def test_a_second_archive_on_the_same_day_gets_its_own_file(noc, world, engine, configure, tmp_path):
    archive = tmp_path / "archive"
    configure(f'[retention]\nincidents = "365d"\narchive_dir = "{archive}"\narchive_gzip = false\n')
    first = retention(noc)
    with engine.begin() as conn:  # another incident closes long ago (a late import, say)
        conn.execute(update(Incident).where(Incident.id == world.ids["i_resolved"])
                     .values(status="CLOSED", closed_at=YEAR - 9 * DAY))
    second = retention(noc)
    names = [Path(p).name for p in first["archive_files"] + second["archive_files"]]
    assert names == ["incidents-default-2026-03-01.ndjson", "incidents-default-2026-03-01-2.ndjson"]
    assert [r["id"] for r in read_archive(second["archive_files"][0])] == [world.ids["i_resolved"]]
    assert len(read_archive(first["archive_files"][0])) == 1  # the first file is untouched


def test_an_unwritable_archive_dir_deletes_nothing(noc, world, engine, configure, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    configure(f'[retention]\nalerts = "365d"\narchive_dir = "{blocker / "archive"}"\n')
    before = counts(engine)
    result = noc("retention", "run", "--now", iso(NOW))
    assert result.exit_code == 65 and "archive" in result.stderr and "nothing was deleted" in result.stderr
    assert counts(engine) == before


def test_an_archive_that_cannot_be_made_durable_deletes_nothing(noc, world, engine, configure, tmp_path,
                                                                monkeypatch):
    from nocctl.services import retention as service

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    archive = tmp_path / "archive"
    configure(f'[retention]\nalerts = "365d"\nincidents = "365d"\narchive_dir = "{archive}"\n')
    monkeypatch.setattr(service.os, "fsync", disk_full)
    alerts_before, incidents_before = world.ids_of(Alert), world.ids_of(Incident)
    result = noc("retention", "run", "--now", iso(NOW))
    assert result.exit_code == 75 and "No space left on device" in result.stderr
    assert world.ids_of(Alert) == alerts_before and world.ids_of(Incident) == incidents_before
    assert list(archive.iterdir()) == []  # neither a final file nor the temporary one


# ---------------------------------------------------------------- lock and settings

def test_a_second_runner_exits_75(noc, world, engine):
    before = counts(engine)
    with passlock.hold(engine, "retention"):
        busy = noc("retention", "run", "--now", iso(NOW))
    assert busy.exit_code == 75 and "another `retention` pass is running" in busy.stderr
    assert counts(engine) == before


@pytest.mark.parametrize("text, key", [
    ('[retention]\nsnapshots = "soon"\n', "retention.snapshots"),
    ('[retention]\nalerts = "0d"\n', "retention.alerts"),
    ('[retention]\nnotifications = true\n', "retention.notifications"),
    ('[retention]\nincidents = "1y"\n', "retention.incidents"),
    ('[retention]\nsnapshot = "7d"\n', 'retention: unknown key "snapshot" (did you mean "snapshots"?)'),
    ('[retention]\nbatch_size = 0\n', "retention.batch_size"),
    ('[retention]\narchive_gzip = "yes"\n', "retention.archive_gzip"),
    ('retention = "30d"\n', "retention"),
])
def test_bad_settings_exit_65_naming_the_key(noc, world, engine, configure, text, key):
    configure(text)
    before = counts(engine)
    result = noc("retention", "run", "--now", iso(NOW))
    assert result.exit_code == 65, result.stderr
    assert key in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert counts(engine) == before


def test_every_tenant_is_covered(noc, world, engine):
    assert noc("--tenant", "other", "init").exit_code == 0
    with engine.begin() as conn:
        other = conn.scalar(select(func.max(Tenant.id)))
        conn.execute(insert(IngestEvent.__table__).values(tenant_id=other, event_key=b"x" * 16, seen_at=MONTH - DAY))
    summary = retention(noc)
    assert summary["tenants"] == 2 and summary["event_keys"] == 3
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(IngestEvent).where(IngestEvent.tenant_id == other)) == 0
