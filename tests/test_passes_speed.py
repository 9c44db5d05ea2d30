"""What the fast paths of the snapshot and escalation passes must keep, against the backend
under test: a window whose snapshots are all there is not computed again, yet one that
gained a unit since is completed and its derived alerts still follow the feeds; the derived
alerts handed to ingest as ready-made records (no keys: the writer computes them) are the
alerts the native JSON path makes of the same conditions; the plain-row reads give aware UTC
instants; the outbox gets one row per message and accepting channel, each escalation
notified once; a payload is built only for a channel that takes it."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

import test_derived
import test_snapshot
from ingest_helpers import rows
from nocctl.services import derived, escalation, notify
from nocctl.services import snapshot as service
from nocctl.services.ingest import formats
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.ingest.reader import Document
from test_derived import RAISED
from test_snapshot import END, NOW, START, feed, iso, run, snapshots

# The fixtures of the snapshot and derived-alert tests: the organisation, its units and one
# feed row of every derived-alert condition (with near misses).
noc, units, world = test_snapshot.noc, test_snapshot.units, test_derived.world
HOUR = timedelta(hours=1)


def _alert_rows(db_url: str) -> list[tuple]:
    return rows(db_url, "SELECT alert_type, entity_id, status, severity, message FROM alert ORDER BY id")


# ---------------------------------------------------------------- the complete window

def test_a_complete_window_is_not_computed_again_and_its_derived_alerts_stay_as_they_are(world, db_url,
                                                                                           monkeypatch):
    first = run(world)
    assert first["snapshots_created"] == first["clients"] + first["sites"]
    taken, alerts = snapshots(db_url), _alert_rows(db_url)

    def recompute(*args, **kwargs):
        raise AssertionError("a complete window was computed again")

    monkeypatch.setattr(service, "compute", recompute)
    again = run(world)
    assert again["snapshots_created"] == 0 and again["snapshots_unchanged"] == first["snapshots_created"]
    # The late check-ins come from the snapshots: the site's anomaly holds, nothing is resolved.
    assert (again["conditions"], again["alerts_created"], again["alerts_resolved"]) == (len(RAISED), 0, 0)
    assert again["alerts_unchanged"] == len(RAISED)
    assert snapshots(db_url) == taken and _alert_rows(db_url) == alerts


def test_a_window_that_gained_a_site_is_completed_and_the_rest_kept(noc, db_url, engine, units):
    feed(engine, units, {"kind": "ticket", "site": "ACME-BLR-WF", "status": "OPEN", "priority": "P2",
                         "opened_at": START - HOUR})
    first = run(noc)
    taken = snapshots(db_url)
    added = noc("org", "site", "add", "ACME-NEW", "--client", "ACME", "--name", "New site", "--city", "Pune")
    assert added.exit_code == 0, added.stderr
    site_id = rows(db_url, "SELECT id FROM business_unit WHERE code = 'ACME-NEW'")[0][0]
    feed(engine, {**units, "ACME-NEW": (site_id, "SITE", units["ACME"][0])},
         {"kind": "ticket", "site": "ACME-NEW", "status": "OPEN", "priority": "P1", "opened_at": START - HOUR},
         {"kind": "device", "site": "ACME-NEW", "status": "ONLINE", "last_seen_at": END, "sync_health": 90.0})
    again = run(noc)
    assert again["snapshots_created"] == 1 and again["snapshots_unchanged"] == first["snapshots_created"]
    now = snapshots(db_url)
    assert {code: s for code, s in now.items() if code != "ACME-NEW"} == taken  # ACME's own as it was
    new = now["ACME-NEW"]["metrics"]
    assert (new["tickets_open"], new["tickets_by_priority"]["P1"], new["devices_total"],
            new["sync_health_score"]) == (1, 1, 1, 90.0)


def test_a_complete_window_still_raises_what_the_feeds_now_hold(noc, db_url, engine, units):
    run(noc)
    feed(engine, units, {"kind": "ticket", "external_id": "T-LATE-ARRIVAL", "site": "ACME-MYS", "status": "OPEN",
                         "priority": "P1", "opened_at": START - HOUR, "due_at": START})
    again = run(noc)
    assert again["snapshots_created"] == 0 and again["alerts_created"] == 1
    assert rows(db_url, "SELECT alert_type, severity, status FROM alert WHERE entity_id = 'T-LATE-ARRIVAL'") == [
        ("SLA_BREACH", "CRITICAL", "NEW")]


def test_metrics_roll_sites_and_client_level_records_up_to_their_client(noc, db_url, engine, units):
    feed(engine, units,
         {"kind": "work_order", "site": "ACME-BLR-WF", "status": "open", "due_at": START},
         {"kind": "work_order", "site": "ACME-MYS", "status": "OPEN"},
         {"kind": "work_order", "client": "ACME", "status": "ON_HOLD"},
         {"kind": "attendance", "site": "ACME-BLR-WF", "people_group": "guards", "shift_start": START - HOUR,
          "checked_in_at": START - HOUR},
         {"kind": "attendance", "client": "ACME", "shift_start": START - HOUR})
    run(noc)
    taken = snapshots(db_url)
    acme, blr = taken["ACME"]["metrics"], taken["ACME-BLR-WF"]["metrics"]
    assert acme["work_orders_by_status"] == {"ON_HOLD": 1, "OPEN": 2} and acme["work_orders_overdue"] == 1
    assert blr["work_orders_by_status"] == {"OPEN": 1}
    assert acme["attendance_by_group"] == {
        "guards": {"expected": 1, "present": 1, "late": 0, "missing": 0},
        "unassigned": {"expected": 1, "present": 0, "late": 0, "missing": 1}}
    assert (acme["attendance_expected"], acme["attendance_missing"]) == (2, 1)
    assert set(acme) == set(service.blank())  # every key
    quiet = taken["GLOBEX"]["metrics"]
    assert quiet == {**service.blank(), "work_orders_by_status": {}, "attendance_by_group": {}}


# ---------------------------------------------------------------- ready-made derived records

def _config(engine) -> service.Config:
    from nocctl.config import Settings

    return Settings(str(engine.url), "default", None, None).snapshot  # the documented defaults


def _native(record: formats.Record) -> dict:
    """The native JSON record the pass used to send for the same condition."""
    out = {k: v for k, v in record._asdict().items() if v is not None and k not in ("keys", "suppressed")}
    out["occurred_at"] = iso(record.occurred_at)
    return out


def test_a_ready_made_record_is_what_the_native_format_parses_its_json_into(world, engine):
    from nocctl.db import make_sessionmaker

    with make_sessionmaker(engine)() as session, session.begin():
        units_by_id = service.load_units(session, 1)
        config = _config(engine)
        metrics = service.compute(session, 1, units_by_id, START, END, config)
        holding = derived.conditions(session, 1, units_by_id, metrics, START, END, config)
    # By kind (tickets, work orders, devices, attendance), in record order, then the sites.
    assert [(c.alert_type, c.entity_id) for c in holding] == list(RAISED)
    at = iso(END)
    facts = {(c.alert_type, c.entity_id): derived.metadata(c, at) for c in holding}
    assert facts[("SLA_BREACH", "T-P1")] == {"window_end": at, "feed": "ticket", "external_id": "T-P1",
                                             "priority": "P1", "due_at": iso(START)}
    assert facts[("WORK_ORDER_OVERDUE", "W-LATE")] == {"window_end": at, "feed": "work_order", "external_id": "W-LATE",
                                                       "status": "IN_PROGRESS", "due_at": iso(START)}
    assert facts[("SYNC_DEGRADED", "D-SYNC")] == {"window_end": at, "feed": "device", "external_id": "D-SYNC",
                                                  "status": "ONLINE", "last_seen_at": at, "sync_health": 42.5}
    assert facts[("ATTENDANCE_MISSING", "A-MISS")] == {
        "window_end": at, "feed": "attendance", "external_id": "A-MISS", "person": "Ravi", "people_group": "guards",
        "shift_start": iso(END - timedelta(minutes=15)), "shift_end": iso(END + 8 * HOUR)}
    assert facts[("ATTENDANCE_ANOMALY", "INITECH-HYD")] == {"window_end": at, "late": 2, "present": 4,
                                                            "expected": 4, "late_rate": 0.5}
    for condition in holding:
        made = derived.trigger(condition, END)
        assert made.keys is None  # the writer computes them
        parsed = formats.native(json.loads(json.dumps(_native(made))))
        assert parsed == made, condition


def _outcome(world, engine, monkeypatch, parsed: bool) -> list[tuple]:
    """The alerts, incidents and audit rows a dry run of the pass makes (read before it rolls
    back), the derived records going to ingest ready-made or as native JSON to parse."""
    from nocctl.services.rbac import Caller

    seen: list[tuple] = []
    original_apply, original_run = derived.apply, Ingest.run

    def as_json(self, documents=(), session=None, batches=None):
        if batches is not None:
            documents = [Document(derived.SOURCE, line, None, _native(record))
                         for batch in batches for record, _, line, _ in batch]
            batches = None
        return original_run(self, documents, session, batches)

    def capture(session, *args, **kwargs):
        outcome = original_apply(session, *args, **kwargs)
        seen.extend(session.execute(text(
            "SELECT a.dedup_key, a.alert_type, a.severity, a.status, a.message, a.client_id, a.site_id, a.entity_type,"
            " a.entity_id, a.source, a.metadata, a.first_seen_at, a.last_seen_at, a.duplicate_count,"
            " a.maintenance_window_id, p.dedup_key, a.next_escalation_at, i.title, i.severity"
            " FROM alert a LEFT JOIN alert p ON p.id = a.parent_alert_id"
            " LEFT JOIN incident_alert ia ON ia.alert_id = a.id LEFT JOIN incident i ON i.id = ia.incident_id"
            " ORDER BY a.dedup_key")).all())
        seen.extend(session.execute(text("SELECT action, target_type, count(*) FROM audit_log"
                                         " GROUP BY action, target_type ORDER BY action, target_type")).all())
        seen.append(tuple(sorted(outcome.ingest.__dict__.items())))
        return outcome

    monkeypatch.setattr(derived, "apply", capture)
    if parsed:
        monkeypatch.setattr(Ingest, "run", as_json)
    try:
        config = _config(engine)
        service.run(engine, config, Caller.from_process("default"), NOW, dry_run=True)
    finally:
        monkeypatch.undo()
    return seen


def test_ready_made_records_raise_the_same_alerts_as_the_parsed_path(world, engine, monkeypatch):
    ready = _outcome(world, engine, monkeypatch, parsed=False)
    parsed = _outcome(world, engine, monkeypatch, parsed=True)
    assert len([r for r in ready if len(r) == 19]) == len(RAISED)
    assert ready == parsed


def test_a_long_title_cut_at_a_space_makes_the_message_the_parsed_path_stores(world, engine, units):
    from nocctl.db import make_sessionmaker

    title = "x" * 199 + " yz"  # cut at 200 characters: "xx…x " before the strip
    feed(engine, units, {"kind": "ticket", "external_id": "T-LONG", "site": "ACME-MYS", "status": "OPEN",
                         "priority": "P2", "opened_at": START - HOUR, "due_at": START, "title": title})
    with make_sessionmaker(engine)() as session, session.begin():
        units_by_id = service.load_units(session, 1)
        holding = derived.conditions(session, 1, units_by_id, {}, START, END, _config(engine))
    made = derived.trigger(next(c for c in holding if c.entity_id == "T-LONG"), END)
    assert formats.native(json.loads(json.dumps(_native(made)))) == made
    assert made.message.endswith("— " + "x" * 199)


def test_a_ready_made_record_refused_by_ingest_is_told_with_its_fields(world, engine):
    """A bug's dead letter (the pass keeps none) names the record's fields, not a tuple."""
    from nocctl.services.ingest.reader import raw_text

    made = derived.trigger(derived.Condition("SLA_BREACH", "HIGH", "m", service.Unit(1, "SITE", "S-1", 2, None, None,
                                                                                     None), "ticket", "T-1",
                                             ("ticket", "T-1", "P2", END)), END)
    told = json.loads(raw_text(made))
    assert told["site"] == "S-1" and told["alert_type"] == "SLA_BREACH" and "keys" not in told


# ---------------------------------------------------------------- plain rows

def test_plain_row_reads_give_aware_utc_instants_and_leave_casts_alone(engine):
    from nocctl.db import make_sessionmaker
    from nocctl.rawsql import RawSQL

    at = datetime(2026, 3, 1, 12, 5, 0, 123456, tzinfo=UTC)
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(text("CREATE TEMPORARY TABLE t (at TIMESTAMP WITH TIME ZONE, n INTEGER)"))
        sql = RawSQL(session)
        stamp = sql.ts(at)
        sql.many("INSERT INTO t (at, n) VALUES (?, ?)", [(stamp, 1), (None, 2)])
        cast = "CAST(n AS TEXT)" if not sql.pg else "n::text"
        got = sql.fetch(f"SELECT at, {cast} FROM t WHERE n >= :low ORDER BY n", {"low": 1}, (0,))
        assert got == [(at, "1"), (None, "2")] and got[0][0].tzinfo is UTC
        assert sql.fetch("SELECT n FROM t WHERE at <= :at", {"at": at}) == [(1,)]


# ---------------------------------------------------------------- the outbox

def _channels(tmp_path, monkeypatch, text_: str):
    config = tmp_path / "notify.toml"
    config.write_text(text_)
    monkeypatch.setenv("NOC_CONFIG", str(config))


def test_queue_writes_one_row_per_message_and_accepting_channel_in_any_number(noc, engine, db_url):
    from nocctl.db import make_sessionmaker
    from nocctl.services.channels import CommandChannel

    every = CommandChannel(name="all", timeout=5, severities=None, command="true")
    critical = CommandChannel(name="crit", timeout=5, severities=frozenset({"CRITICAL"}), command="true")
    payload = {"kind": "escalation", "text": "Café ✓ — \"quoted\"\n", "nested": {"a": [1, 2.5, None, True]}}
    messages = [notify.Message("ESCALATION", {**payload, "n": i}, None, None, None, None,
                               ("CRITICAL", "HIGH")[i % 2]) for i in range(1201)]  # past one SQLite chunk
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with make_sessionmaker(engine)() as session, session.begin():
        assert notify.queue(session, 1, messages, {"all": every, "crit": critical}, at) == 1201 + 601
        assert notify.queue(session, 1, messages[:3], {}, at) == 0
    counts = rows(db_url, "SELECT channel, status, attempts, count(*) FROM notification GROUP BY channel, status,"
                          " attempts ORDER BY channel")
    assert counts == [("all", "PENDING", 0, 1201), ("crit", "PENDING", 0, 601)]
    stored = rows(db_url, "SELECT payload, next_attempt_at, created_at FROM notification WHERE channel = 'crit'"
                          " ORDER BY id")
    first = stored[0][0] if isinstance(stored[0][0], dict) else json.loads(stored[0][0])
    assert first == {**payload, "n": 0} and stored[0][1] == stored[0][2]
    assert [json.loads(p)["n"] if isinstance(p, str) else p["n"] for p, _, _ in stored] == list(range(0, 1201, 2))


def _crit(entity: str, severity: str = "CRITICAL") -> dict:
    return {"alert_type": "DEVICE_OFFLINE", "severity": severity, "message": f"down {entity}", "site": "ACME-BLR-WF",
            "entity_type": "device", "entity_id": entity, "occurred_at": "2026-03-01T10:00:00Z"}


def _ingest(noc, *records: dict) -> None:
    result = noc("ingest", input="".join(json.dumps(r) + "\n" for r in records))
    assert result.exit_code == 0, result.stderr


def _escalate(noc, minutes: int) -> dict:
    result = noc("escalate", "run", "--now", iso(datetime(2026, 3, 1, 10, 0, tzinfo=UTC) + timedelta(minutes=minutes)),
                 "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_each_escalation_is_notified_once_and_each_level_again(noc, db_url, tmp_path, monkeypatch):
    _channels(tmp_path, monkeypatch, '[notify.channels.log]\ntype = "command"\ncommand = "true"\n')
    _ingest(noc, _crit("cam-01"), _crit("cam-02"))
    assert len(_escalate(noc, 16)) == 2
    assert _escalate(noc, 16) == [] and _escalate(noc, 17) == []  # the same level: nothing more to tell
    assert rows(db_url, "SELECT count(*) FROM notification") == [(2,)]
    assert len(_escalate(noc, 32)) == 2  # level 2: told again
    levels = rows(db_url, "SELECT alert_id, payload FROM notification ORDER BY id")
    assert sorted((a, (p if isinstance(p, dict) else json.loads(p))["level"]) for a, p in levels) == \
        sorted((a, lv) for a in {a for a, _ in levels} for lv in (1, 2))


def test_a_payload_is_built_only_for_an_escalation_a_channel_takes(noc, db_url, tmp_path, monkeypatch):
    _channels(tmp_path, monkeypatch, '[notify.channels.page]\ntype = "command"\ncommand = "true"\n'
                                     'severities = ["CRITICAL"]\n')
    built: list[int] = []
    original = escalation._payload

    def payload(tenant, alert, *args):
        built.append(alert.id)
        return original(tenant, alert, *args)

    monkeypatch.setattr(escalation, "_payload", payload)
    _ingest(noc, _crit("cam-01"), _crit("cam-02", "HIGH"))
    made = _escalate(noc, 40)
    assert sorted(e["severity"] for e in made) == ["CRITICAL", "HIGH"]
    critical = [e["alert_id"] for e in made if e["severity"] == "CRITICAL"]
    assert built == critical
    assert rows(db_url, "SELECT alert_id, channel FROM notification") == [(critical[0], "page")]
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE action = 'ESCALATE'") == [(2,)]


def test_the_due_read_leaves_a_snoozed_alert_until_its_snooze_ends(noc, db_url):
    _ingest(noc, _crit("cam-01"), _crit("cam-02"))
    snoozed = rows(db_url, "SELECT id FROM alert WHERE entity_id = 'cam-01'")[0][0]
    result = noc("alert", "snooze", str(snoozed), "--for", "30m", env={"NOC_NOW": "2026-03-01T10:05:00Z"})
    assert result.exit_code == 0, result.stderr
    assert [e["alert_id"] for e in _escalate(noc, 16)] != [snoozed]
    assert rows(db_url, "SELECT status FROM alert WHERE id = :i", i=snoozed) == [("NEW",)]
    assert snoozed in [e["alert_id"] for e in _escalate(noc, 36)]  # snoozed until 10:35


def test_snapshots_written_in_several_statements_are_each_written_once(noc, db_url, monkeypatch):
    monkeypatch.setattr(service, "SNAPSHOT_CHUNK", 3)  # the organisation's units take several chunks
    first = run(noc)
    units_there = rows(db_url, "SELECT count(*) FROM business_unit")[0][0]
    assert first["snapshots_created"] == units_there > 3
    assert rows(db_url, "SELECT count(*), count(DISTINCT unit_id) FROM snapshot") == [(units_there, units_there)]
    assert run(noc)["snapshots_created"] == 0
