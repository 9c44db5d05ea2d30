"""`nocctl oncall schedule add/list`, `oncall override add`, `oncall who` (DESIGN §3
"Escalation", §4): the rotation maths, overrides, which schedule answers for a client,
validation, permissions and audit rows, against the backend under test."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from ingest_helpers import ORG, rows
from nocctl.services.oncall import Pick, on_call, who_is_on_call

NOW = "2026-03-07T12:00:00Z"
START = "2026-03-02T09:00:00Z"
MEMBERS = ("asha.rao", "vikram.nair", "meera.iyer")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def add_schedule(noc, name="ops", *extra: str, members=MEMBERS, start=START, turn="1d") -> int:
    args = [a for m in members for a in ("--member", m)]
    result = noc("oncall", "schedule", "add", name, *args, "--start", start, "--turn", turn, *extra)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def add_override(noc, schedule: str, user: str, start: str, end: str) -> int:
    result = noc("oncall", "override", "add", schedule, user, "--start", start, "--end", end)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def who(noc, when: str, *extra: str, person: str | None = None) -> dict:
    result = noc(*(("--as", person) if person else ()), "oncall", "who", "--at", when, "--format", "json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- pure maths

def test_rotation_turns_over_exactly_at_the_boundary_and_wraps_around():
    schedule = SimpleNamespace(starts_at=at(START), turn_seconds=86400)
    members = [10, 20, 30]
    assert who_is_on_call(schedule, members, [], at("2026-03-02T09:00:00Z")) == Pick(10, turn=1)
    assert who_is_on_call(schedule, members, [], at("2026-03-03T08:59:59.999999Z")) == Pick(10, turn=1)
    assert who_is_on_call(schedule, members, [], at("2026-03-03T09:00:00Z")) == Pick(20, turn=2)
    assert who_is_on_call(schedule, members, [], at("2026-03-04T09:00:00Z")) == Pick(30, turn=3)
    assert who_is_on_call(schedule, members, [], at("2026-03-05T09:00:00Z")) == Pick(10, turn=4)  # wraps
    assert who_is_on_call(schedule, members, [], at("2026-04-01T09:00:00Z")).person_id == members[30 % 3]


def test_before_the_start_the_first_member_is_on_call():
    schedule = SimpleNamespace(starts_at=at(START), turn_seconds=43200)
    pick = who_is_on_call(schedule, [10, 20], [], at("2026-03-01T09:00:00Z"))
    assert pick == Pick(10, turn=0) and pick.before_start


def test_overrides_cover_a_half_open_interval_and_the_latest_start_wins():
    schedule = SimpleNamespace(starts_at=at(START), turn_seconds=86400)
    first = SimpleNamespace(id=1, person_id=99,
                            starts_at=at("2026-03-03T00:00:00Z"), ends_at=at("2026-03-05T00:00:00Z"))
    later = SimpleNamespace(id=2, person_id=77,
                            starts_at=at("2026-03-04T00:00:00Z"), ends_at=at("2026-03-04T12:00:00Z"))
    overrides = [later, first]
    assert who_is_on_call(schedule, [10], overrides, at("2026-03-02T23:59:59Z")) == Pick(10, turn=1)
    assert who_is_on_call(schedule, [10], overrides, at("2026-03-03T00:00:00Z")) == Pick(99, override_id=1)
    assert who_is_on_call(schedule, [10], overrides, at("2026-03-04T00:00:00Z")) == Pick(77, override_id=2)
    assert who_is_on_call(schedule, [10], overrides, at("2026-03-04T12:00:00Z")) == Pick(99, override_id=1)
    assert who_is_on_call(schedule, [10], overrides, at("2026-03-05T00:00:00Z")).override_id is None


# ---------------------------------------------------------------- through the CLI

def test_who_follows_the_rotation(noc):
    add_schedule(noc)
    assert who(noc, "2026-03-02T09:00:00Z")["person"] == "asha.rao"
    before = who(noc, "2026-03-03T08:59:59Z")
    assert (before["person"], before["why"], before["turn"]) == ("asha.rao", "turn 1 of schedule ops", 1)
    boundary = who(noc, "2026-03-03T09:00:00Z")
    assert (boundary["person"], boundary["why"]) == ("vikram.nair", "turn 2 of schedule ops")
    assert who(noc, "2026-03-04T10:00:00+01:00")["person"] == "meera.iyer"  # 09:00Z: turn 3
    assert who(noc, "2026-03-05T09:00:00Z")["person"] == "asha.rao"  # wrapped around
    early = who(noc, "2026-02-01T00:00:00Z")
    assert early["person"] == "asha.rao" and "starts at 2026-03-02T09:00:00Z" in early["why"]
    # default: the clock's now (Saturday 7 March 12:00Z is turn 6 -> meera.iyer)
    now = json.loads(noc("oncall", "who", "--format", "json").stdout)
    assert (now["person"], now["at"], now["turn"]) == ("meera.iyer", NOW, 6)
    table = noc("oncall", "who", "--at", "2026-03-03T09:00:00Z")
    assert table.exit_code == 0
    assert table.stdout == ("vikram.nair is on call until 2026-03-04T09:00:00Z (schedule ops, turn 2); "
                            "next: meera.iyer (turn 3)\n")


def test_overrides_through_the_cli(noc):
    add_schedule(noc)
    first = add_override(noc, "ops", "noc.lead", "2026-03-03T00:00:00Z", "2026-03-05T00:00:00Z")
    second = add_override(noc, "ops", "sana.khan", "2026-03-04T00:00:00+05:30", "2026-03-04T12:00:00Z")
    assert who(noc, "2026-03-02T23:59:59Z")["person"] == "asha.rao"
    edge = who(noc, "2026-03-03T00:00:00Z")
    assert (edge["person"], edge["why"], edge["override_id"]) == ("noc.lead", f"override #{first}", first)
    overlap = who(noc, "2026-03-04T06:00:00Z")
    assert (overlap["person"], overlap["why"]) == ("sana.khan", f"override #{second}")
    assert who(noc, "2026-03-04T12:00:00Z")["person"] == "noc.lead"
    after = who(noc, "2026-03-05T00:00:00Z")
    assert (after["person"], after["override_id"]) == ("meera.iyer", None)


def test_a_client_schedule_beats_the_tenant_default_and_others_fall_back(noc, new_session):
    tenant = add_schedule(noc, "ops")
    add_schedule(noc, "acme", "--client", "ACME", members=("sana.khan", "priya.sharma"), turn="12h")
    add_schedule(noc, "acme-2", "--client", "ACME", members=("karthik.s",))  # higher id: not used
    acme_pick = who(noc, "2026-03-02T21:00:00Z", "--client", "ACME")
    assert (acme_pick["schedule"], acme_pick["schedule_client"], acme_pick["person"]) == (
        "acme", "ACME", "priya.sharma")
    globex = who(noc, "2026-03-02T21:00:00Z", "--client", "GLOBEX")
    assert (globex["schedule"], globex["schedule_client"], globex["person"]) == ("ops", None, "asha.rao")
    assert who(noc, "2026-03-02T21:00:00Z")["schedule"] == "ops"
    # the function the escalation pass calls
    with new_session() as session:
        tenant_id, acme_id, globex_id = session.execute(
            text("SELECT tenant_id, (SELECT id FROM business_unit WHERE code = 'ACME'),"
                                          " (SELECT id FROM business_unit WHERE code = 'GLOBEX')"
                                          " FROM oncall_schedule WHERE id = :id"), {"id": tenant}).one()
        person = {r[1]: r[0] for r in session.execute(text("SELECT id, username FROM person"))}
        assert on_call(session, tenant_id, acme_id, at("2026-03-02T21:00:00Z")) == person["priya.sharma"]
        assert on_call(session, tenant_id, globex_id, at("2026-03-02T21:00:00Z")) == person["asha.rao"]
        assert on_call(session, tenant_id, None, at("2026-03-03T09:00:00Z")) == person["vikram.nair"]


def test_no_schedule_is_a_clear_not_found(noc, new_session):
    result = noc("oncall", "who", "--client", "ACME")
    assert result.exit_code == 3
    assert "no on-call schedule for client ACME and no tenant-wide one" in result.stderr
    tenant_wide = noc("oncall", "who")
    assert tenant_wide.exit_code == 3 and "no on-call schedule for the tenant" in tenant_wide.stderr
    add_schedule(noc, "acme", "--client", "ACME")
    assert noc("oncall", "who", "--client", "GLOBEX").exit_code == 3  # ACME's schedule is not a fallback
    with new_session() as session:
        tenant_id = session.execute(text("SELECT id FROM tenant")).scalar()
        assert on_call(session, tenant_id, None, at(NOW)) is None


def test_list_shows_the_schedules_in_every_format(noc):
    add_schedule(noc, "ops")
    add_schedule(noc, "acme", "--client", "ACME", members=("sana.khan",), turn="12h")
    listed = json.loads(noc("oncall", "schedule", "list", "--format", "json").stdout)
    assert [(s["name"], s["client"], s["turn"], s["turn_seconds"], s["members"]) for s in listed] == [
        ("ops", None, "1d", 86400, list(MEMBERS)), ("acme", "ACME", "12h", 43200, ["sana.khan"])]
    assert listed[0]["starts_at"] == START and listed[0]["created_at"] == NOW
    table = noc("oncall", "schedule", "list").stdout
    assert "(tenant-wide)" in table and "asha.rao, vikram.nair, meera.iyer" in table
    csv = noc("oncall", "schedule", "list", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("id,name,client") and "asha.rao,vikram.nair,meera.iyer" in csv[1]
    assert len(noc("oncall", "schedule", "list", "--format", "ndjson").stdout.splitlines()) == 2


def test_add_with_format_json_prints_the_created_schedule(noc):
    result = noc("oncall", "schedule", "add", "weekly", "--member", "asha.rao", "--start", "2026-03-02T09:00:00+05:30",
                 "--turn", "7d", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["name"], data["starts_at"], data["turn_seconds"], data["members"]) == (
        "weekly", "2026-03-02T03:30:00Z", 604800, ["asha.rao"])


@pytest.mark.parametrize("args, code, message", [
    (("ops", "--member", "nobody", "--start", START, "--turn", "1d"), 3, "no person 'nobody'"),
    (("ops", "--client", "NOPE", "--member", "asha.rao", "--start", START, "--turn", "1d"), 3, "no client 'NOPE'"),
    (("ops", "--member", "asha.rao", "--start", START, "--turn", "soon"), 65, "--turn 'soon' is not a duration"),
    (("ops", "--member", "asha.rao", "--start", START, "--turn", "0"), 65, "must be longer than zero"),
    (("ops", "--member", "asha.rao", "--start", "2026-03-02T09:00:00", "--turn", "1d"), 2, "has no UTC offset"),
    (("ops", "--start", START, "--turn", "1d"), 2, "--member"),
])
def test_schedule_validation(noc, db_url, args, code, message):
    result = noc("oncall", "schedule", "add", *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert rows(db_url, "SELECT count(*) FROM oncall_schedule")[0][0] == 0


def test_a_duplicate_name_is_a_conflict(noc, db_url):
    add_schedule(noc, "ops")
    again = noc("oncall", "schedule", "add", "ops", "--client", "ACME", "--member", "asha.rao", "--start", START,
                "--turn", "1d")
    assert again.exit_code == 4 and "an on-call schedule named 'ops' exists already" in again.stderr
    assert rows(db_url, "SELECT count(*) FROM oncall_schedule")[0][0] == 1


@pytest.mark.parametrize("args, code, message", [
    (("ops", "asha.rao", "--start", "2026-03-04T00:00:00Z", "--end", "2026-03-03T00:00:00Z"), 65,
     "the override must end after it starts"),
    (("ops", "asha.rao", "--start", "2026-03-04T00:00:00Z", "--end", "2026-03-04T00:00:00Z"), 65,
     "the override must end after it starts"),
    (("ops", "nobody", "--start", "2026-03-03T00:00:00Z", "--end", "2026-03-04T00:00:00Z"), 3, "no person 'nobody'"),
    (("other", "asha.rao", "--start", "2026-03-03T00:00:00Z", "--end", "2026-03-04T00:00:00Z"), 3,
     "no on-call schedule 'other'"),
])
def test_override_validation(noc, db_url, args, code, message):
    add_schedule(noc, "ops")
    result = noc("oncall", "override", "add", *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert rows(db_url, "SELECT count(*) FROM oncall_override")[0][0] == 0


def test_configuring_needs_noc_configure_over_the_scope(noc, db_url):
    grants = {"a_cfg": [("noc:view_client", "--client", "ACME"), ("noc:configure", "--client", "ACME")],
              "viewer": [("noc:view_all_clients",)]}
    for person, granted in grants.items():
        assert noc("user", "add", person).exit_code == 0
        for grant in granted:
            assert noc("user", "grant", person, *grant).exit_code == 0
    base = ("--member", "asha.rao", "--start", START, "--turn", "1d")
    refused = noc("--as", "viewer", "oncall", "schedule", "add", "x", *base)
    assert refused.exit_code == 77 and "'viewer' lacks noc:configure tenant-wide" in refused.stderr
    assert "an admin can run `nocctl user grant viewer noc:configure`" in refused.stderr
    refused = noc("--as", "a_cfg", "oncall", "schedule", "add", "x", *base)
    assert refused.exit_code == 77 and "'a_cfg' lacks noc:configure tenant-wide" in refused.stderr
    refused = noc("--as", "viewer", "oncall", "schedule", "add", "x", "--client", "ACME", *base)
    assert refused.exit_code == 77 and "'viewer' lacks noc:configure for client ACME" in refused.stderr
    assert noc("--as", "a_cfg", "oncall", "schedule", "add", "acme", "--client", "ACME", *base).exit_code == 0
    add_schedule(noc, "ops")
    add_schedule(noc, "globex", "--client", "GLOBEX")
    window = ("--start", "2026-03-03T00:00:00Z", "--end", "2026-03-04T00:00:00Z")
    assert noc("--as", "a_cfg", "oncall", "override", "add", "ops", "sana.khan", *window).exit_code == 77
    assert noc("--as", "viewer", "oncall", "override", "add", "acme", "sana.khan", *window).exit_code == 77
    assert noc("--as", "a_cfg", "oncall", "override", "add", "acme", "sana.khan", *window).exit_code == 0
    assert rows(db_url, "SELECT count(*) FROM oncall_schedule")[0][0] == 3
    assert rows(db_url, "SELECT count(*) FROM oncall_override")[0][0] == 1
    # the viewer sees every schedule; a_cfg the tenant-wide one and ACME's, not GLOBEX's
    assert who(noc, "2026-03-03T12:00:00Z", "--client", "ACME", person="viewer")["person"] == "sana.khan"
    assert [s["name"] for s in json.loads(noc("--as", "viewer", "oncall", "schedule", "list",
                                              "--format", "json").stdout)] == ["acme", "ops", "globex"]
    seen = json.loads(noc("--as", "a_cfg", "oncall", "schedule", "list", "--format", "json").stdout)
    assert [s["name"] for s in seen] == ["acme", "ops"]
    assert noc("--as", "a_cfg", "oncall", "who", "--client", "GLOBEX").exit_code == 3  # not visible


def test_changes_are_audited(noc, db_url):
    schedule_id = add_schedule(noc, "acme", "--client", "ACME", members=("sana.khan", "asha.rao"))
    override_id = add_override(noc, "acme", "noc.lead", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z")
    found = rows(db_url, "SELECT a.target_type, a.target_id, c.code, a.details FROM audit_log a"
                         " LEFT JOIN business_unit c ON c.id = a.client_id"
                         " WHERE a.action = 'CONFIG_CHANGE' AND a.target_type LIKE 'oncall%' ORDER BY a.id")
    assert [(r[0], str(r[1]), r[2]) for r in found] == [("oncall_schedule", str(schedule_id), "ACME"),
                                                         ("oncall_override", str(override_id), "ACME")]
    details = [r[3] if isinstance(r[3], dict) else json.loads(r[3]) for r in found]
    assert details[0] == {"change": "oncall schedule add", "name": "acme", "client": "ACME", "starts_at": START,
                          "turn_seconds": 86400, "members": ["sana.khan", "asha.rao"]}
    assert details[1] == {"change": "oncall override add", "schedule": "acme", "person": "noc.lead",
                          "starts_at": "2026-03-03T00:00:00Z", "ends_at": "2026-03-04T00:00:00Z"}
    assert noc("audit", "verify").exit_code == 0
