"""What the four cron passes share (`services/passes.py`): each writes with the instant it is
given (`--now`), never the process clock, and leaves that clock as it found it; and a dry
run of any of them leaves every table of the database exactly as it was — against the
backend under test."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, inspect, select, text, update

from ingest_helpers import ORG, alert, ndjson
from nocctl import clock, config
from nocctl.db import make_sessionmaker
from nocctl.models import Alert, AuditLog, FeedRecord, Incident, IngestEvent, IngestReject, Notification, Snapshot
from nocctl.services import escalation
from nocctl.services.ingest.pipeline import Ingest, Options
from nocctl.services.ingest.reader import read_documents
from nocctl.tunables import AutoIncidents, Sla

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
CHANNEL = '[notify.channels.page]\ntype = "command"\ncommand = "cat > /dev/null"\n'


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def noc(admin_cli, monkeypatch, tmp_path):
    path = tmp_path / "nocctl.toml"
    path.write_text(CHANNEL)
    monkeypatch.setenv("NOC_CONFIG", str(path))
    monkeypatch.setenv("NOC_NOW", iso(T0 + timedelta(minutes=20)))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def ingest(noc, *records: dict) -> None:
    result = noc("ingest", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr


def crit(entity: str, at: datetime, site: str = "ACME-BLR-WF") -> dict:
    return alert(site=site, entity=entity, at=iso(at), severity="CRITICAL")


def pass_json(noc, *args: str) -> dict | list:
    result = noc(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def process_clock_untouched(expected: datetime | None = None) -> None:
    """Nothing fixed the process clock (set_now returns what was fixed: None), and it reads
    NOC_NOW (`expected`) or, without it, the real time."""
    assert clock.set_now(None) is None
    if expected is not None:
        assert clock.now() == expected
    else:
        assert abs(clock.now() - datetime.now(UTC)) < timedelta(minutes=5)


def feed_ticket(engine, external_id: str, due_at: datetime, priority: str = "P1") -> None:
    """An open ticket of ACME-BLR-WF, overdue since `due_at` (P1: a CRITICAL derived alert,
    which opens an incident; P3: MEDIUM, which does not)."""
    with engine.begin() as conn:
        site_id, client_id = conn.execute(text("SELECT id, client_id FROM business_unit WHERE code = 'ACME-BLR-WF'")
                                          ).one()
        conn.execute(insert(FeedRecord.__table__).values(
            tenant_id=1, kind="ticket", external_id=external_id, client_id=client_id, site_id=site_id,
            status="OPEN", priority=priority, opened_at=due_at - timedelta(hours=1), due_at=due_at,
            updated_at=due_at, received_at=due_at))


# ---------------------------------------------------------------- the clock is explicit

def test_an_escalation_pass_writes_at_its_now_and_leaves_the_process_clock_alone(noc, engine, db_url, caller,
                                                                                 monkeypatch):
    ingest(noc, crit("early", T0), crit("late", T0 + timedelta(minutes=20), site="GLOBEX-PNQ"))
    monkeypatch.delenv("NOC_NOW")
    first, second = T0 + timedelta(minutes=15), T0 + timedelta(minutes=40)
    # Through the command line (in this process) …
    assert [e["at"] for e in pass_json(noc, "escalate", "run", "--now", iso(first))] == [iso(first)]
    process_clock_untouched()
    # … and through the service, at another instant.
    summary, made = escalation.run(engine, config.resolve(db_url), caller, second)
    assert summary.escalated == 2 and {e["at"] for e in made} == {iso(second)}
    process_clock_untouched()
    with engine.connect() as conn:
        assert conn.scalars(select(AuditLog.at).where(AuditLog.action == "ESCALATE").order_by(AuditLog.id)
                            ).all() == [first, second, second]
        assert set(conn.scalars(select(Alert.escalated_at))) == {second}
        # The outbox rows too (one channel: one per escalation).
        assert sorted(conn.scalars(select(Notification.created_at))) == [first, second, second]


def test_a_snapshot_pass_stamps_its_derived_alerts_with_its_now(noc, engine, db_url, monkeypatch):
    """The derived alerts go through the ingest pipeline, which is given the pass's instant
    (`Options.now`): it neither reads nor fixes the process clock."""
    elsewhere = T0 + timedelta(days=1)  # NOC_NOW, a day after the passes' --now
    monkeypatch.setenv("NOC_NOW", iso(elsewhere))
    feed_ticket(engine, "T-1", T0 - timedelta(hours=1))
    first, later = T0 + timedelta(minutes=2), T0 + timedelta(minutes=7)  # windows ending 10:00 and 10:05
    assert pass_json(noc, "snapshot", "run", "--now", iso(first))["alerts_created"] == 1
    process_clock_untouched(elsewhere)
    with engine.begin() as conn:
        assert conn.scalars(select(Alert.created_at).where(Alert.source == "nocctl-snapshot")).all() == [first]
        assert set(conn.scalars(select(Snapshot.created_at))) == {first}
        assert set(conn.scalars(select(IngestEvent.seen_at))) == {first}
        conn.execute(update(FeedRecord).where(FeedRecord.external_id == "T-1").values(status="CLOSED"))
    assert pass_json(noc, "snapshot", "run", "--now", iso(later))["alerts_resolved"] == 1
    process_clock_untouched(elsewhere)
    with engine.connect() as conn:
        assert conn.scalars(select(AuditLog.at).where(AuditLog.action == "RESOLVE")).all() == [later]
        assert sorted(conn.scalars(select(IngestEvent.seen_at))) == [first, later]


def test_a_snapshot_pass_ahead_of_the_clock_raises_its_derived_alerts_and_incidents_at_its_now(noc, engine,
                                                                                              monkeypatch):
    """The future-skew bound is the pass's instant too: with NOC_NOW a day before --now, the
    derived alert (occurred_at: the window end) is not "ahead of the clock". Its automatic
    incident (a P1 ticket: CRITICAL) is opened at --now, with its SLA counted from it."""
    before = T0 - timedelta(days=1)
    monkeypatch.setenv("NOC_NOW", iso(before))
    feed_ticket(engine, "T-1", T0 - timedelta(hours=1))
    at = T0 + timedelta(minutes=2)
    summary = pass_json(noc, "snapshot", "run", "--now", iso(at))
    assert (summary["alerts_created"], summary["rejected"]) == (1, 0)
    process_clock_untouched(before)
    with engine.connect() as conn:
        assert conn.execute(select(Incident.created_at, Incident.sla_target)).all() == [(at, at + timedelta(hours=4))]
        assert conn.scalars(select(AuditLog.at).where(AuditLog.action == "INCIDENT_CREATE")).all() == [at]
        assert conn.scalars(select(Alert.created_at)).all() == [at]


def test_an_ingest_run_given_an_instant_stamps_everything_with_it(noc, engine, caller, monkeypatch):
    """`Options.now`: created_at, seen_at, the dead letters' received_at, the audit rows and
    the incidents are stamped with it; an event time without occurred_at takes it; the
    future-skew bound counts from it. The process clock (NOC_NOW) is neither read nor changed."""
    elsewhere, at = T0 + timedelta(days=1), T0 + timedelta(hours=3)
    monkeypatch.setenv("NOC_NOW", iso(elsewhere))
    timeless = alert(entity="cam-03")
    del timeless["occurred_at"]
    documents = read_documents([ndjson(alert(entity="cam-01", at=iso(at - timedelta(minutes=5))),
                                       alert(entity="cam-02", at=iso(at + timedelta(hours=1))),
                                       timeless).encode()], "test")
    rejects: list = []
    options = Options("native", incidents=AutoIncidents("HIGH", Sla({"HIGH": 3600})), now=at)
    summary = Ingest(make_sessionmaker(engine), caller, options, rejects.append).run(documents)
    assert (summary.created, summary.rejected) == (2, 1)
    assert f"({clock.isoformat(at)}; setting ingest.max_future_skew)" in rejects[0].reason
    process_clock_untouched(elsewhere)
    with engine.connect() as conn:
        assert set(conn.scalars(select(Alert.created_at))) == {at}
        assert conn.scalars(select(Alert.first_seen_at).where(Alert.entity_id == "cam-03")).all() == [at]
        assert set(conn.scalars(select(IngestEvent.seen_at))) == {at}
        assert conn.scalars(select(IngestReject.received_at)).all() == [at]
        assert set(conn.execute(select(Incident.created_at, Incident.sla_target))) == {(at, at + timedelta(hours=1))}
        assert set(conn.scalars(select(AuditLog.at).where(AuditLog.action.like("INCIDENT_%")))) == {at}


def test_an_ingest_run_without_an_instant_reads_the_clock_at_each_batch(noc, engine, caller):
    """Interactive ingest (`Options.now` None) goes on with the time: each batch is stamped
    with the clock as it reads at the start of that batch."""
    first, second = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    documents = read_documents([ndjson(alert(entity="cam-01"), alert(entity="cam-02")).encode()], "test")
    clock.set_now(first)
    try:
        Ingest(make_sessionmaker(engine), caller, Options("native", batch_size=1),
               on_batch=lambda summary: clock.set_now(second)).run(documents)
    finally:
        clock.set_now(None)
    with engine.connect() as conn:
        assert conn.execute(select(Alert.entity_id, Alert.created_at).order_by(Alert.entity_id)).all() == [
            ("cam-01", first), ("cam-02", second)]


# ---------------------------------------------------------------- dry runs change nothing

def everything(engine) -> dict[str, list[tuple]]:
    """Every row of every table (but the migrations' own), in a stable order."""
    with engine.connect() as conn:
        tables = sorted(name for name in inspect(conn).get_table_names() if name != "alembic_version")
        return {name: sorted(tuple(map(repr, row)) for row in conn.execute(text(f"SELECT * FROM {name}")))
                for name in tables}


def test_a_dry_run_of_every_pass_leaves_the_whole_database_as_it_was(noc, engine, db_url, tmp_path, monkeypatch):
    now = T0 + timedelta(minutes=40)
    monkeypatch.setenv("NOC_NOW", iso(now))
    archive = tmp_path / "archive"
    (tmp_path / "nocctl.toml").write_text(CHANNEL + f'[retention]\nalerts = "30d"\narchive_dir = "{archive}"\n')
    # Old history for retention: a snapshot pass 40 days ago (snapshots, a derived alert, its
    # event key), resolved by the next window's pass; then alerts due for escalation now, one
    # already escalated with its notification waiting in the outbox, and a ticket overdue
    # (whose CRITICAL derived alert would open an incident).
    long_ago = now - timedelta(days=40)
    feed_ticket(engine, "T-OLD", long_ago - timedelta(hours=1), priority="P3")
    pass_json(noc, "snapshot", "run", "--now", iso(long_ago))
    with engine.begin() as conn:
        conn.execute(update(FeedRecord).where(FeedRecord.external_id == "T-OLD").values(status="CLOSED"))
    assert pass_json(noc, "snapshot", "run", "--now", iso(long_ago + timedelta(minutes=5)))["alerts_resolved"] == 1
    ingest(noc, crit("cam-01", T0), crit("cam-02", T0 + timedelta(minutes=20), site="GLOBEX-PNQ"))
    assert len(pass_json(noc, "escalate", "run", "--now", iso(T0 + timedelta(minutes=15)))) == 1
    feed_ticket(engine, "T-NOW", T0)
    before = everything(engine)

    escalated = pass_json(noc, "escalate", "run", "--now", iso(now), "--dry-run")
    snapshot = pass_json(noc, "snapshot", "run", "--now", iso(now), "--dry-run")
    retention = pass_json(noc, "retention", "run", "--now", iso(now), "--dry-run")
    delivery = pass_json(noc, "notify", "run", "--now", iso(now), "--dry-run")
    # Each pass had work to do …
    assert len(escalated) == 2
    assert snapshot["snapshots_created"] > 0 and snapshot["alerts_created"] == 1
    assert retention["snapshots"] > 0 and retention["event_keys"] > 0 and retention["alerts_archived"] == 1
    assert delivery["due"] == 1
    # … and did none of it.
    assert everything(engine) == before
    assert not archive.exists()
