"""Operational feeds through `nocctl ingest --kind KIND`: typed columns per kind, newest
updated_at wins in any order, counts, rejects (stderr, file, dead letters, retry), --strict,
--dry-run, permissions, and alert ingest left as it was (issue #8)."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest_helpers import ORG, ROOT, alert, ndjson, rows, state
from nocctl.db import make_engine
from nocctl.models import BusinessUnit, FeedRecord
from nocctl.services.ingest import feeds
from nocctl.services.ingest.formats import RecordError
from nocctl.vocabulary import FEED_KINDS

EXAMPLES = ROOT / "examples" / "feeds"
EXAMPLE_FILES = {"ticket": "tickets.ndjson", "work_order": "work_orders.ndjson", "attendance": "attendance.ndjson",
                 "device": "devices.ndjson", "geofence": "geofence.ndjson", "security": "security.ndjson"}
VALUE_COLUMNS = ("updated_at", "status", "priority", "title", "opened_at", "due_at", "closed_at", "escalated",
                 "person", "people_group", "shift_start", "shift_end", "checked_in_at", "last_seen_at",
                 "offline_after", "sync_health", "occurred_at", "event_type", "severity", "data")


@pytest.fixture
def noc(admin_cli):
    """An initialised database with the example organisation."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def summary(result) -> dict:
    return json.loads(result.stdout)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def stored(db_url: str) -> dict[tuple[str, str], dict]:
    """Every feed record as the model reads it (aware UTC times on both databases), keyed by
    (kind, external id), with the client and site as codes."""
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            codes = dict(session.execute(select(BusinessUnit.id, BusinessUnit.code)).all())
            out = {}
            for r in session.scalars(select(FeedRecord)):
                values = {c: getattr(r, c) for c in VALUE_COLUMNS}
                values.update(client=codes[r.client_id], site=codes.get(r.site_id))
                out[(r.kind, r.external_id)] = values
            return out
    finally:
        engine.dispose()


def received_at(db_url: str) -> set:
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            return set(session.scalars(select(FeedRecord.received_at)))
    finally:
        engine.dispose()


# ---------------------------------------------------------------- every kind, typed

GOOD = {
    "ticket": ({"id": "FM-1", "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF", "priority": "p1",
                "status": "in progress", "opened_at": "2026-03-02T08:00:00+05:30", "due_at": "2026-03-02T12:00:00Z",
                "closed_at": "2026-03-02T13:00:00Z", "escalated": True, "title": " Chiller down ",
                "metadata": {"category": "HVAC"}},
               {"status": "IN_PROGRESS", "priority": "P1", "opened_at": utc("2026-03-02T02:30:00+00:00"),
                "due_at": utc("2026-03-02T12:00:00+00:00"), "closed_at": utc("2026-03-02T13:00:00+00:00"),
                "escalated": True, "title": "Chiller down", "data": {"category": "HVAC"}}),
    "work_order": ({"id": 4410, "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF",
                    "status": "Completed", "due_at": "2026-03-02T14:00:00+05:30",
                    "completed_at": "2026-03-02T08:30:00+05:30", "title": "Replace contactor"},
                   {"status": "COMPLETED", "due_at": utc("2026-03-02T08:30:00+00:00"),
                    "closed_at": utc("2026-03-02T03:00:00+00:00"), "title": "Replace contactor"}),
    "attendance": ({"id": "SHIFT-1", "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF",
                    "person": "g-1042", "group": "security-guards", "shift_start": "2026-03-02T06:00:00+05:30",
                    "shift_end": "2026-03-02T14:00:00+05:30", "checked_in_at": "2026-03-02T06:12:00+05:30"},
                   {"person": "g-1042", "people_group": "security-guards",
                    "shift_start": utc("2026-03-02T00:30:00+00:00"), "shift_end": utc("2026-03-02T08:30:00+00:00"),
                    "checked_in_at": utc("2026-03-02T00:42:00+00:00")}),
    "device": ({"id": "cam-gate-1", "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF",
                "status": "offline", "last_seen_at": "2026-03-02T08:50:00+05:30", "offline_after": "1h30m",
                "sync_health": 62, "device_type": "camera", "name": "Gate camera", "metadata": {"fw": "4.2"}},
               {"status": "OFFLINE", "last_seen_at": utc("2026-03-02T03:20:00+00:00"), "offline_after": 5400,
                "sync_health": 62.0, "title": "Gate camera", "data": {"fw": "4.2", "device_type": "camera"}}),
    "geofence": ({"id": "gf-1", "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF",
                  "person": "g-1042", "event": "breach", "occurred_at": "2026-03-02T08:59:00+05:30"},
                 {"person": "g-1042", "event_type": "BREACH", "occurred_at": utc("2026-03-02T03:29:00+00:00")}),
    "security": ({"id": "sec-1", "updated_at": "2026-03-02T09:00:00+05:30", "site": "ACME-BLR-WF",
                  "event": "door forced", "severity": "high", "occurred_at": "2026-03-02T08:59:30+05:30",
                  "message": "Dock door forced"},
                 {"event_type": "DOOR_FORCED", "severity": "HIGH", "occurred_at": utc("2026-03-02T03:29:30+00:00"),
                  "title": "Dock door forced"}),
}


def expected(kind: str, external_id: str | None = None, **columns) -> dict:
    record, values = GOOD[kind]
    out = {c: None for c in VALUE_COLUMNS}
    out.update(updated_at=utc(record["updated_at"]), client="ACME", site="ACME-BLR-WF")
    out.update(values)
    out.update(columns)
    return out


@pytest.mark.parametrize("kind", FEED_KINDS)
def test_each_kind_stores_its_typed_columns(noc, db_url, kind):
    record, _ = GOOD[kind]
    now = "2026-03-02T04:00:00+00:00"
    result = noc("ingest", "--kind", kind, "--json", input=ndjson(record), env={"NOC_NOW": now})
    assert result.exit_code == 0, result.stderr
    assert summary(result) == {"received": 1, "inserted": 1, "updated": 0, "unchanged": 0, "rejected": 0}
    assert stored(db_url) == {(kind, str(record["id"])): expected(kind)}
    assert received_at(db_url) == {utc(now)}
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]  # feeds are not alerts


@pytest.mark.parametrize("kind", FEED_KINDS)
def test_the_examples_ingest_cleanly(noc, db_url, kind):
    assert sorted(p.name for p in EXAMPLES.glob("*.ndjson")) == sorted(EXAMPLE_FILES.values())
    path = EXAMPLES / EXAMPLE_FILES[kind]
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    result = noc("ingest", "--kind", kind, str(path), "--json")
    assert result.exit_code == 0, result.stderr
    counts = summary(result)
    ids = {str(r["id"]) for r in lines}
    assert counts["received"] == len(lines) and counts["inserted"] == len(ids) and counts["rejected"] == 0
    assert {key[1] for key in stored(db_url)} == ids


def test_client_level_records_and_the_client_site_defaults(noc, db_url):
    record, _ = GOOD["ticket"]
    bare = {k: v for k, v in record.items() if k != "site"}
    assert noc("ingest", "--kind", "ticket", input=ndjson(bare | {"client": "GLOBEX"})).exit_code == 0
    assert noc("ingest", "--kind", "ticket", "--site", "ACME-MYS", input=ndjson(bare | {"id": "d1"})).exit_code == 0
    assert noc("ingest", "--kind", "ticket", "--client", "INITECH", input=ndjson(bare | {"id": "d2"})).exit_code == 0
    found = {key[1]: (v["client"], v["site"]) for key, v in stored(db_url).items()}
    assert found == {"FM-1": ("GLOBEX", None), "d1": ("ACME", "ACME-MYS"), "d2": ("INITECH", None)}


def test_kind_is_case_insensitive_and_format_is_for_alerts_only(noc, db_url):
    record, _ = GOOD["device"]
    assert noc("ingest", "--kind", "DEVICE", "--format", "auto", input=ndjson(record)).exit_code == 0
    refused = noc("ingest", "--kind", "device", "--format", "native", input=ndjson(record))
    assert refused.exit_code == 2 and "--format native applies to alerts" in refused.stderr
    assert len(stored(db_url)) == 1


# ---------------------------------------------------------------- newest wins

def version(n: int, updated_at: str, **extra) -> dict:
    record, _ = GOOD["ticket"]
    return record | {"updated_at": updated_at, "title": f"v{n}"} | extra


V1 = version(1, "2026-03-02T09:00:00Z", status="OPEN")
V2 = version(2, "2026-03-02T10:00:00Z", status="RESOLVED")


def test_newer_then_older_keeps_the_newer(noc, db_url):
    assert noc("ingest", "--kind", "ticket", input=ndjson(V2)).exit_code == 0
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(V1))
    assert summary(result) == {"received": 1, "inserted": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    (only,) = stored(db_url).values()
    assert (only["title"], only["status"], only["updated_at"]) == ("v2", "RESOLVED", utc("2026-03-02T10:00:00+00:00"))


def test_older_then_newer_updates_every_column(noc, db_url):
    noc("ingest", "--kind", "ticket", input=ndjson(V1 | {"metadata": {"a": 1}, "escalated": True}))
    moved = {k: v for k, v in V2.items() if k not in ("escalated", "metadata", "closed_at")} | {"site": "ACME-MYS"}
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(moved))
    assert summary(result) == {"received": 1, "inserted": 0, "updated": 1, "unchanged": 0, "rejected": 0}
    (only,) = stored(db_url).values()
    # The newer version replaces the record: fields it leaves out are cleared, the site moves.
    assert only == expected("ticket", title="v2", status="RESOLVED", updated_at=utc("2026-03-02T10:00:00+00:00"),
                            site="ACME-MYS", escalated=None, data=None, closed_at=None)


def test_an_equal_updated_at_keeps_the_stored_record(noc, db_url):
    noc("ingest", "--kind", "ticket", input=ndjson(V1))
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(V1 | {"title": "same time, other text"}))
    assert summary(result)["unchanged"] == 1
    assert [v["title"] for v in stored(db_url).values()] == ["v1"]


def test_versions_of_one_id_in_one_batch(noc, db_url):
    v3 = version(3, "2026-03-02T10:00:00Z", status="CLOSED")  # ties with V2: the later one in the input wins
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(V2, V1, v3))
    assert summary(result) == {"received": 3, "inserted": 1, "updated": 0, "unchanged": 2, "rejected": 0}
    assert [(v["title"], v["status"]) for v in stored(db_url).values()] == [("v3", "CLOSED")]
    # Stored ids, a newer, an older and a new one in one batch: each counted once, rightly.
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(
        version(4, "2026-03-02T11:00:00Z"), version(0, "2026-03-02T08:00:00Z"),
        version(5, "2026-03-02T11:00:00Z", id="FM-2")))
    assert summary(result) == {"received": 3, "inserted": 1, "updated": 1, "unchanged": 1, "rejected": 0}
    assert {k[1]: v["title"] for k, v in stored(db_url).items()} == {"FM-1": "v4", "FM-2": "v5"}


def history(kind: str, ids: int, versions: int, seed: int = 7) -> list[dict]:
    """`versions` versions of `ids` records of `kind`, each version with its own updated_at."""
    rng = random.Random(seed)
    record, _ = GOOD[kind]
    base = datetime(2026, 3, 2, tzinfo=UTC)
    sites = ["ACME-BLR-WF", "ACME-MYS", "GLOBEX-PNQ", "INITECH-HYD"]
    out = []
    for i in range(ids):
        for v in rng.sample(range(versions * 3), versions):
            at = base + timedelta(minutes=v)
            item = dict(record, id=f"{kind}-{i}", updated_at=at.isoformat(), site=rng.choice(sites))
            if kind == "ticket":
                item.update(status=rng.choice(feeds.TICKET_STATUSES), title=f"v{v}", escalated=rng.random() < 0.5)
            elif kind == "device":
                item.update(sync_health=rng.randrange(101), status=rng.choice(feeds.DEVICE_STATUSES))
            elif kind == "attendance":
                item.update(checked_in_at=(at - timedelta(minutes=rng.randrange(60))).isoformat())
            else:
                item.update(metadata={"v": v})
            out.append(item)
    return out


@pytest.mark.parametrize("kind", ["ticket", "device", "attendance", "security"])
def test_any_order_gives_the_same_table(noc, db_url, tmp_path, kind):
    records = history(kind, ids=40, versions=5)
    ordered = tmp_path / "ordered.ndjson"
    ordered.write_text(ndjson(*sorted(records, key=lambda r: r["updated_at"])))
    first = noc("ingest", "--kind", kind, str(ordered), "--json", "--batch-size", "17")
    assert first.exit_code == 0, first.stderr
    counts = summary(first)  # (two versions of an id in one batch: the older one counts as unchanged)
    assert counts["inserted"] == 40 and counts["updated"] + counts["unchanged"] == 160 and counts["updated"] > 100
    table = stored(db_url)
    newest = {}
    for r in records:
        if r["id"] not in newest or r["updated_at"] > newest[r["id"]]["updated_at"]:
            newest[r["id"]] = r
    assert {k[1]: (v["updated_at"], v["site"]) for k, v in table.items()} == {
        i: (utc(r["updated_at"]), r["site"]) for i, r in newest.items()}
    # Replay: nothing changes, and the counts say so.
    again = noc("ingest", "--kind", kind, str(ordered), "--json")
    assert summary(again) == {"received": 200, "inserted": 0, "updated": 0, "unchanged": 200, "rejected": 0}
    assert stored(db_url) == table
    # From scratch, shuffled, in batches of other sizes: the same table.
    for seed, size in ((1, "9"), (2, "5000")):
        engine = make_engine(db_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM feed_record")
        engine.dispose()
        shuffled = tmp_path / f"shuffled-{seed}.ndjson"
        mixed = records[:]
        random.Random(seed).shuffle(mixed)
        shuffled.write_text(ndjson(*mixed))
        result = noc("ingest", "--kind", kind, str(shuffled), "--json", "--batch-size", size)
        assert result.exit_code == 0 and summary(result)["inserted"] == 40
        assert stored(db_url) == table


def test_many_batches_through_the_reader_process(noc, db_url, tmp_path):
    """More than one batch: later batches are parsed by the forked reader; bad records in
    them travel back as reasons with their line numbers."""
    records = [dict(GOOD["device"][0], id=f"dev-{i}", sync_health=i % 101) for i in range(2500)]
    lines = [json.dumps(r) for r in records]
    lines[1800] = json.dumps(dict(records[1800], sync_health=150))
    lines[2200] = "{broken"
    data = tmp_path / "devices.ndjson"
    data.write_text("\n".join(lines) + "\n")
    result = noc("ingest", "--kind", "device", str(data), "--json", "--batch-size", "500")
    assert result.exit_code == 65
    assert summary(result) == {"received": 2500, "inserted": 2498, "updated": 0, "unchanged": 0, "rejected": 2}
    assert f"{data}:1801: rejected: sync_health must be a number from 0 to 100, not 150" in result.stderr
    assert f"{data}:2201: rejected: invalid JSON" in result.stderr
    assert len(stored(db_url)) == 2498


def test_a_json_array_of_records(noc, db_url):
    items = [GOOD["geofence"][0], dict(GOOD["geofence"][0], id="gf-2", event="teleport")]
    result = noc("ingest", "--kind", "geofence", "--json", input=json.dumps(items, indent=2))
    assert result.exit_code == 65 and summary(result)["inserted"] == 1
    (raw,) = rows(db_url, "SELECT raw FROM ingest_reject")
    assert json.loads(raw[0])["id"] == "gf-2"


# ---------------------------------------------------------------- rejects

def without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def bad_records(kind: str) -> list[tuple[dict, str]]:
    """Per kind: a missing required field, an unknown key, a bad enum (attendance has none:
    its end before its start), a bad time, an unknown site, one more rule."""
    good = GOOD[kind][0]
    missing = {"ticket": "updated_at", "work_order": "id", "attendance": "person", "device": "updated_at",
               "geofence": "occurred_at", "security": "event"}[kind]
    enum = {"ticket": ({"priority": "P9"}, "priority must be one of P1, P2, P3, P4, not 'P9'"),
            "work_order": ({"status": "DONE"}, "status must be one of OPEN, ASSIGNED"),
            "attendance": ({"shift_end": "2026-03-02T05:00:00+05:30"}, "shift_end must be after shift_start"),
            "device": ({"status": "BROKEN"}, "status must be one of ONLINE, OFFLINE, UNKNOWN"),
            "geofence": ({"event": "TELEPORT"}, "event must be one of ENTER, EXIT, BREACH"),
            "security": ({"severity": "URGENT"}, "severity must be one of CRITICAL")}[kind]
    time_field = {"ticket": "due_at", "work_order": "completed_at", "attendance": "checked_in_at",
                  "device": "last_seen_at", "geofence": "occurred_at", "security": "occurred_at"}[kind]
    extra = {"ticket": ({"escalated": "yes"}, "escalated must be true or false"),
             "work_order": ({"title": 42}, "title must be a string, not int"),
             "attendance": ({"person": ["g-1"]}, "person must be a string, not list"),
             "device": ({"offline_after": "soon"}, "offline_after 'soon' is not a duration"),
             "geofence": ({"metadata": "x"}, "metadata must be an object"),
             "security": ({"id": 1.5}, "id must be a string or an integer")}[kind]
    return [
        (without(good, missing) | {"id": f"{kind}-missing"} if missing != "id" else without(good, "id"),
         f"{missing} is required"),
        (good | {"id": f"{kind}-unknown", "colour": "red"}, f"unknown field(s) for {kind}: colour"),
        (good | {"id": f"{kind}-enum"} | enum[0], enum[1]),
        (good | {"id": f"{kind}-time", time_field: "2026-03-02T09:00:00"}, "has no UTC offset"),
        (good | {"id": f"{kind}-site", "site": "ACME-PUNE"}, "unknown site 'ACME-PUNE'"),
        ({**good, "id": f"{kind}-extra", **extra[0]}, extra[1]),
    ]


@pytest.mark.parametrize("kind", FEED_KINDS)
def test_bad_records_are_rejected_kept_and_retried(noc, db_url, tmp_path, kind):
    good = GOOD[kind][0]
    bad = bad_records(kind)
    lines = [json.dumps(good)] + [json.dumps(r) for r, _ in bad] + [json.dumps(good | {"id": "second-good"})]
    data = tmp_path / f"{kind}.ndjson"
    data.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.ndjson"
    result = noc("ingest", "--kind", kind, str(data), "--rejects", str(rejects), "--json")
    assert result.exit_code == 65
    assert summary(result) == {"received": len(lines), "inserted": 2, "updated": 0, "unchanged": 0,
                               "rejected": len(bad)}
    assert {k[1] for k in stored(db_url)} == {str(good["id"]), "second-good"}
    messages = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert len(messages) == len(bad)
    for number, (_, reason) in enumerate(bad, start=2):
        assert any(line.startswith(f"nocctl: {data}:{number}: rejected: ") and reason in line
                   for line in messages), (number, reason, messages)
    assert [json.loads(line) for line in rejects.read_text().splitlines()] == [r for r, _ in bad]
    listed = json.loads(noc("ingest", "rejects", "list", "--format", "json").stdout)
    assert sorted(r["line"] for r in listed) == list(range(2, 2 + len(bad)))
    assert {r["input_format"] for r in listed} == {kind}
    assert rows(db_url, "SELECT count(*) FROM ingest_reject WHERE status = 'PENDING'") == [(len(bad),)]

    # Fix the org: the record of the unknown site goes through, as a record of its kind.
    assert noc("org", "site", "add", "ACME-PUNE", "--client", "ACME", "--name", "Acme Pune").exit_code == 0
    retried = noc("ingest", "rejects", "retry", "--json")
    assert retried.exit_code == 65
    assert json.loads(retried.stdout) == {"retried": len(bad), "accepted": 1, "rejected": len(bad) - 1}
    assert stored(db_url)[(kind, f"{kind}-site")]["site"] == "ACME-PUNE"
    assert rows(db_url, "SELECT status FROM ingest_reject WHERE line = 6") == [("RETRIED",)]
    assert rows(db_url, "SELECT count(*) FROM ingest_reject WHERE status = 'PENDING'") == [(len(bad) - 1,)]


def test_other_rules(noc):
    record = GOOD["ticket"][0]
    cases = [
        (record | {"closed_at": "2026-03-02T07:00:00+05:30"}, "closed_at is before opened_at"),
        (record | {"due_at": "2026-03-02T07:00:00+05:30"}, "due_at is before opened_at"),
        (record | {"client": "GLOBEX"}, "site 'ACME-BLR-WF' does not belong to client 'GLOBEX'"),
        (without(record, "site"), "no client or site"),
        (record | {"client": "NOPE", "site": None}, "unknown client 'NOPE'"),
        (record | {"site": "ACME"}, "unknown site 'ACME'"),  # a client's code is not a site
        (record | {"id": "  "}, "id is required"),
        (record | {"opened_at": "yesterday"}, "is not an ISO 8601 time"),
        (record | {"priority": 1}, "priority must be one of"),
        ([record], None),  # a nested array is read as its records
        ("just text", "a record must be a JSON object, not str"),
    ]
    result = noc("ingest", "--kind", "ticket", "--json", input=ndjson(*(c for c, _ in cases)))
    assert summary(result)["rejected"] == len(cases) - 1 and summary(result)["inserted"] == 1
    reasons = {int(line.split(":")[2]): line.split(" rejected: ", 1)[1]
               for line in result.stderr.splitlines() if line.startswith("nocctl: <stdin>:")}
    for number, (_, reason) in enumerate(cases, start=1):
        if reason:
            assert reason in reasons[number], (number, reason, reasons.get(number))
        else:
            assert number not in reasons


def test_record_parsing():
    parse = feeds.parse
    device = parse({"id": 7, "updated_at": "2026-03-02T09:00:00Z", "site": "S", "offline_after": 900,
                    "device_type": "nvr"}, "device")
    assert device.external_id == "7" and device.offline_after == 900 and device.data == {"device_type": "nvr"}
    assert parse(dict(GOOD["device"][0], offline_after="15m"), "device").offline_after == 900
    assert parse(dict(GOOD["ticket"][0], status="on-hold"), "ticket").status == "ON_HOLD"
    assert parse(dict(GOOD["security"][0], event="tailGating"), "security").event_type == "TAIL_GATING"
    ticket = parse(dict(GOOD["ticket"][0], title=None, escalated=False), "ticket")
    # Instants travel as fixed-width UTC text (sortable, the SQLite form).
    assert ticket[6:11] == (None, "2026-03-02 02:30:00.000000", "2026-03-02 12:00:00.000000",
                            "2026-03-02 13:00:00.000000", False)
    assert feeds.instant_value(ticket.updated_at) == utc("2026-03-02T03:30:00+00:00")
    assert feeds.instant_text(utc("2026-03-02T09:00:00.5+05:30")) == "2026-03-02 03:30:00.500000"
    for kind, record, reason in [
        ("device", dict(GOOD["device"][0], offline_after=0), "more than 0 seconds"),
        ("device", dict(GOOD["device"][0], offline_after=True), "must be a duration"),
        ("device", dict(GOOD["device"][0], sync_health=float("nan")), "from 0 to 100"),
        ("device", dict(GOOD["device"][0], sync_health=-1), "from 0 to 100"),
        ("attendance", dict(GOOD["attendance"][0], shift_end=GOOD["attendance"][0]["shift_start"]), "after"),
        ("attendance", dict(GOOD["attendance"][0], group="x" * 101), "longer than 100"),
        ("ticket", dict(GOOD["ticket"][0], id="x" * 201), "longer than 200"),
        ("ticket", dict(GOOD["ticket"][0], person="p"), "unknown field(s) for ticket: person"),
        ("geofence", dict(GOOD["geofence"][0], message="m"), "unknown field(s) for geofence: message"),
    ]:
        with pytest.raises(RecordError, match=re.escape(reason)):
            parse(record, kind)


# ---------------------------------------------------------------- --strict, --dry-run, access

def test_strict_is_all_or_nothing(noc, db_url):
    good, bad = GOOD["work_order"][0], GOOD["work_order"][0] | {"id": "wo-bad", "status": "DONE"}
    result = noc("ingest", "--kind", "work_order", "--strict", "--json", input=ndjson(good, bad))
    assert result.exit_code == 65 and "nothing was committed" in result.stderr
    assert stored(db_url) == {} and rows(db_url, "SELECT count(*) FROM ingest_reject") == [(0,)]
    ok = noc("ingest", "--kind", "work_order", "--strict", "--json", input=ndjson(good))
    assert ok.exit_code == 0 and len(stored(db_url)) == 1


def test_dry_run_counts_and_writes_nothing(noc, db_url):
    noc("ingest", "--kind", "ticket", input=ndjson(V1))
    result = noc("ingest", "--kind", "ticket", "--dry-run", "--json",
                 input=ndjson(V2, V1 | {"id": "new"}, V1 | {"id": "x", "site": "NOPE"}))
    assert result.exit_code == 65
    assert summary(result) == {"received": 3, "inserted": 1, "updated": 1, "unchanged": 0, "rejected": 1}
    assert [v["title"] for v in stored(db_url).values()] == ["v1"]
    assert rows(db_url, "SELECT count(*) FROM ingest_reject") == [(0,)]


def test_feed_ingest_needs_noc_ingest_and_its_scope(noc, db_url):
    noc("user", "add", "fm-bridge")
    denied = noc("--as", "fm-bridge", "ingest", "--kind", "ticket", input=ndjson(V1))
    assert denied.exit_code == 77 and "noc:ingest" in denied.stderr
    empty = noc("--as", "fm-bridge", "ingest", "--kind", "ticket", input="")
    assert empty.exit_code == 77
    noc("user", "grant", "fm-bridge", "noc:ingest", "--client", "GLOBEX")
    result = noc("--as", "fm-bridge", "ingest", "--kind", "ticket", "--json",
                 input=ndjson(V1, V1 | {"id": "gx", "site": "GLOBEX-PNQ"}))
    assert result.exit_code == 65 and summary(result)["inserted"] == 1
    assert "unknown site 'ACME-BLR-WF'" in result.stderr  # invisible to the sender: not found
    assert [k[1] for k in stored(db_url)] == ["gx"]


def test_database_unavailable_is_exit_75(noc):
    result = noc("--db", "postgresql://nobody@127.0.0.1:1/none", "ingest", "--kind", "device",
                 input=ndjson(GOOD["device"][0]))
    assert result.exit_code == 75


# ---------------------------------------------------------------- alerts unchanged

def test_kind_alert_is_the_default_alert_ingest(noc, db_url, tmp_path):
    data = ROOT / "examples" / "alerts.ndjson"
    default = noc("ingest", str(data), "--dry-run", "--json")
    explicit = noc("ingest", "--kind", "alert", str(data), "--json")
    assert explicit.exit_code == default.exit_code == 65  # the example names a site not created yet
    assert summary(explicit) == summary(default)
    assert set(summary(explicit)) == {"received", "created", "deduplicated", "suppressed", "resolved",
                                      "acknowledged", "replayed", "unmatched", "rejected"}
    before = state(db_url)
    replay = noc("ingest", str(data), "--json")
    assert summary(replay)["replayed"] == summary(explicit)["received"] - summary(explicit)["rejected"]
    assert state(db_url) == before and stored(db_url) == {}
    assert {r[0] for r in rows(db_url, "SELECT input_format FROM ingest_reject")} == {"auto"}
    # Feeds and alerts side by side; retry re-processes each reject as what it was.
    site = "ACME-PUNE-NEW"  # the example's unknown site
    noc("ingest", "--kind", "security", input=ndjson(GOOD["security"][0] | {"site": site}))
    noc("ingest", input=ndjson(alert(site=site, entity="late")))
    assert sorted(r[0] for r in rows(db_url, "SELECT input_format FROM ingest_reject")) == ["auto", "auto", "security"]
    noc("org", "site", "add", site, "--client", "ACME", "--name", "Acme Pune")
    retried = noc("ingest", "rejects", "retry", "--json")
    assert retried.exit_code == 0, retried.stderr
    assert json.loads(retried.stdout) == {"retried": 3, "accepted": 3, "rejected": 0}
    assert list(stored(db_url)) == [("security", "sec-1")]
    assert rows(db_url, "SELECT count(*) FROM alert a JOIN business_unit u ON u.id = a.site_id"
                        f" WHERE u.code = '{site}'") == [(2,)]


# ---------------------------------------------------------------- processes

@pytest.mark.slow
def test_concurrent_ingests_in_different_orders_agree(db_url, tmp_path):
    """Two processes ingest the same history at once, one in time order and one reversed:
    the table holds the newest version of every record, and every record counted once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")} | {"NOC_CONFIG": os.devnull}
    command = [sys.executable, "-m", "nocctl", "--db", db_url]
    for args in (["init"], ["org", "import", str(ORG)]):
        subprocess.run(command + args, check=True, env=env, capture_output=True)
    records = history("ticket", ids=300, versions=4)
    forward, backward = tmp_path / "forward.ndjson", tmp_path / "backward.ndjson"
    ordered = sorted(records, key=lambda r: r["updated_at"])
    forward.write_text(ndjson(*ordered))
    backward.write_text(ndjson(*reversed(ordered)))
    runs = [subprocess.Popen(command + ["ingest", "--kind", "ticket", str(path), "--json", "--batch-size", "100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for path in (forward, backward)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    counts = [json.loads(out) for out, _ in outputs]
    assert sum(c["inserted"] for c in counts) == 300
    assert sum(c["inserted"] + c["updated"] + c["unchanged"] for c in counts) == 2 * len(records)
    newest = {}
    for r in records:
        if r["id"] not in newest or r["updated_at"] > newest[r["id"]]["updated_at"]:
            newest[r["id"]] = r
    assert {k[1]: (v["updated_at"], v["title"]) for k, v in stored(db_url).items()} == {
        i: (utc(r["updated_at"]), r["title"]) for i, r in newest.items()}

