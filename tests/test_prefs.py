"""Operator preferences (`nocctl prefs`) and how `nocctl alert list` applies them: filters
where the user gave none, the default format, the time zone of table output, per person."""
from __future__ import annotations

import json

import pytest

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl.services import alerts as alert_service
from nocctl.services import prefs as prefs_service

UNSET = {"client": None, "severity": None, "status": None, "format": None, "timezone": None}


@pytest.fixture
def noc(admin_cli):
    """The example organisation and four alerts of three clients:

    cam-01  ACME-BLR-WF  HIGH      NEW           10:00Z
    cam-05  ACME-MYS     CRITICAL  RESOLVED      10:20Z
    h-1     GLOBEX-PNQ   LOW       NEW           10:40Z
    i-1     INITECH-GGN  CRITICAL  ACKNOWLEDGED  10:50Z
    """
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    result = admin_cli("ingest", input=ndjson(
        alert(entity="cam-01", at="2026-03-01T10:00:00Z"),
        alert(entity="cam-05", site="ACME-MYS", severity="CRITICAL", at="2026-03-01T10:20:00Z"),
        {"action": "resolve", "alert_type": "DEVICE_OFFLINE", "site": "ACME-MYS", "entity_type": "device",
         "entity_id": "cam-05", "occurred_at": "2026-03-01T10:30:00Z"},
        alert(entity="h-1", site="GLOBEX-PNQ", severity="LOW", at="2026-03-01T10:40:00Z"),
        alert(entity="i-1", site="INITECH-GGN", severity="CRITICAL", at="2026-03-01T10:50:00Z"),
        {"action": "acknowledge", "alert_type": "DEVICE_OFFLINE", "site": "INITECH-GGN", "entity_type": "device",
         "entity_id": "i-1", "occurred_at": "2026-03-01T10:55:00Z"},
    ))
    assert result.exit_code == 0, result.stderr
    return admin_cli


def shown(run, *who: str) -> dict:
    result = run(*who, "prefs", "show", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    data.pop("updated_at")
    return data


def listed(run, *args: str, who: tuple[str, ...] = ()) -> list[str]:
    """Entity ids of `alert list ARGS --format json`, worst first, then the oldest."""
    result = run(*who, "alert", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return [a["entity_id"] for a in json.loads(result.stdout)]


def set_ok(run, key: str, value: str, *who: str) -> None:
    result = run(*who, "prefs", "set", key, value)
    assert result.exit_code == 0, result.stderr


def audit_rows(db_url: str) -> list[tuple]:
    found = rows(db_url, "SELECT a.action, a.target_type, p.username, a.details FROM audit_log a"
                         " JOIN person p ON p.id = a.actor_id WHERE a.target_type = 'operator_pref' ORDER BY a.id")
    return [(a, t, u, json.loads(d) if isinstance(d, str) else d) for a, t, u, d in found]


# ---------------------------------------------------------------- prefs show / set / unset


def test_show_with_nothing_set(noc):
    assert shown(noc) == UNSET
    table = noc("prefs", "show")
    assert table.exit_code == 0
    assert table.stdout.split() == ["client", "(not", "set)", "severity", "(not", "set)", "status", "(not", "set)",
                                    "format", "(not", "set)", "timezone", "(not", "set)"]


@pytest.mark.parametrize("key, value, stored", [
    ("client", "GLOBEX", "GLOBEX"),
    ("severity", "high, Critical", ["CRITICAL", "HIGH"]),
    ("severity", "info,low,low", ["LOW", "INFO"]),
    ("status", "active", ["NEW", "ACKNOWLEDGED", "ASSIGNED", "ESCALATED", "SUPPRESSED"]),
    ("status", "resolved,New", ["NEW", "RESOLVED"]),
    ("format", "JSON", "json"),
    ("format", "csv", "csv"),
    ("timezone", "Asia/Kolkata", "Asia/Kolkata"),
    ("TimeZone", "UTC", "UTC"),
])
def test_set_show_unset_round_trip(noc, key, value, stored):
    result = noc("prefs", "set", key, value)
    assert result.exit_code == 0, result.stderr
    text = ",".join(stored) if isinstance(stored, list) else stored
    assert result.stdout == f"{key.lower()}: {text}\n"
    assert shown(noc) == UNSET | {key.lower(): stored}
    table = noc("prefs", "show").stdout
    assert any(line.split() == [key.lower(), text] for line in table.splitlines()), table
    assert "updated_at" in table

    cleared = noc("prefs", "unset", key)
    assert cleared.exit_code == 0 and cleared.stdout == f"{key.lower()}: (not set)\n"
    assert shown(noc) == UNSET


def test_setting_one_key_keeps_the_others(noc):
    set_ok(noc, "client", "ACME")
    set_ok(noc, "format", "ndjson")
    set_ok(noc, "client", "INITECH")
    assert shown(noc) == UNSET | {"client": "INITECH", "format": "ndjson"}
    noc("prefs", "unset", "client")
    assert shown(noc) == UNSET | {"format": "ndjson"}


@pytest.mark.parametrize("key, value, code, message", [
    ("severity", "urgent", 65, "unknown severity 'urgent'; give a comma list of: CRITICAL, HIGH, MEDIUM, LOW, INFO"),
    ("severity", "high,urgent", 65, "unknown severity 'urgent'; "),
    ("severity", " , ", 65, "no severity given; use `nocctl prefs unset` to clear the preference"),
    ("status", "open", 65, ("unknown status 'open'; give a comma list of: NEW, ACKNOWLEDGED, ASSIGNED, ESCALATED, "
                            "SUPPRESSED, RESOLVED, active")),
    ("format", "xml", 65, "unknown format 'xml'; one of: table, json, ndjson, csv"),
    ("timezone", "Mars/Olympus_Mons", 65, "unknown time zone 'Mars/Olympus_Mons'; use an IANA name"),
    ("timezone", "../../etc/passwd", 65, "unknown time zone '../../etc/passwd'; "),
    ("timezone", "", 65, "unknown time zone ''; "),
    ("client", "NOPE", 3, "no client 'NOPE' that you can see; see `nocctl org list --kind client`"),
    ("client", "ACME-MYS", 3, "no client 'ACME-MYS' that you can see"),  # a site is not a client
    ("client", "", 65, "no client given; use `nocctl prefs unset client` to clear the preference"),
])
def test_bad_values_are_refused_and_nothing_changes(noc, db_url, key, value, code, message):
    set_ok(noc, "format", "csv")
    before = audit_rows(db_url)
    result = noc("prefs", "set", key, value)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"nocctl: error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert shown(noc) == UNSET | {"format": "csv"}
    assert audit_rows(db_url) == before


def test_an_unknown_key_is_a_usage_error(noc):
    for args in (("set", "colour", "blue"), ("unset", "colour")):
        result = noc("prefs", *args)
        assert result.exit_code == 2
        assert "Invalid value for 'KEY': 'colour' is not one of 'client', 'severity', 'status', 'format', " \
               "'timezone'" in result.stderr


def test_the_command_line_offers_the_keys_the_service_knows():
    from nocctl import output
    from nocctl.cli import prefs as prefs_cli

    assert prefs_cli.KEYS == prefs_service.KEYS
    assert prefs_service.FORMATS == output.LIST_FORMATS


def test_the_preferred_client_must_be_one_the_person_can_see(noc):
    noc("user", "add", "sana")
    noc("user", "grant", "sana", "noc:view_client", "--client", "GLOBEX")
    hidden = noc("--as", "sana", "prefs", "set", "client", "ACME")
    assert hidden.exit_code == 3
    # the same answer as for a client that does not exist: no hint that ACME is there
    assert hidden.stderr == "nocctl: error: no client 'ACME' that you can see; see `nocctl org list --kind client`\n"
    set_ok(noc, "client", "GLOBEX", "--as", "sana")
    # seeing one site of a client is enough
    noc("user", "add", "vikram")
    noc("user", "grant", "vikram", "noc:view_assigned_sites", "--site", "ACME-MYS")
    set_ok(noc, "client", "ACME", "--as", "vikram")
    assert noc("--as", "vikram", "prefs", "set", "client", "GLOBEX").exit_code == 3


def test_preferences_need_no_capability_only_a_person(noc):
    noc("user", "add", "bob")  # no grants at all
    set_ok(noc, "format", "json", "--as", "bob")
    set_ok(noc, "timezone", "Europe/London", "--as", "bob")
    assert shown(noc, "--as", "bob") == UNSET | {"format": "json", "timezone": "Europe/London"}
    assert noc("--as", "bob", "prefs", "set", "client", "ACME").exit_code == 3  # he sees no client
    stranger = noc("--as", "nobody", "prefs", "set", "format", "json")
    assert stranger.exit_code == 77 and "'nobody' is not a NOC operator" in stranger.stderr


def test_changes_are_audited(noc, db_url):
    set_ok(noc, "severity", "critical,high")
    set_ok(noc, "severity", "high,critical")  # the same value: no change, no row
    noc("prefs", "show")
    noc("prefs", "unset", "severity")
    noc("prefs", "unset", "severity")  # was not set: no row
    noc("user", "add", "meera")
    set_ok(noc, "client", "ACME")
    set_ok(noc, "timezone", "Asia/Kolkata", "--as", "meera")
    login = rows(db_url, "SELECT username FROM person WHERE id = (SELECT MIN(id) FROM person)")[0][0]
    assert audit_rows(db_url) == [
        ("CONFIG_CHANGE", "operator_pref", login,
         {"change": "prefs set", "key": "severity", "value": ["CRITICAL", "HIGH"]}),
        ("CONFIG_CHANGE", "operator_pref", login, {"change": "prefs unset", "key": "severity", "value": None}),
        ("CONFIG_CHANGE", "operator_pref", login, {"change": "prefs set", "key": "client", "value": "ACME"}),
        ("CONFIG_CHANGE", "operator_pref", "meera",
         {"change": "prefs set", "key": "timezone", "value": "Asia/Kolkata", "impersonated_by": login}),
    ]


def test_updated_at_is_the_time_of_the_change(noc):
    noc("prefs", "set", "format", "json", env={"NOC_NOW": "2026-04-01T09:00:00Z"})
    assert json.loads(noc("prefs", "show", "--format", "json").stdout)["updated_at"] == "2026-04-01T09:00:00Z"
    noc("prefs", "unset", "format", env={"NOC_NOW": "2026-04-02T09:00:00Z"})
    assert json.loads(noc("prefs", "show", "--format", "json").stdout)["updated_at"] == "2026-04-02T09:00:00Z"


# ---------------------------------------------------------------- alert list applies them


def test_without_preferences_alert_list_shows_everything(noc):
    # issue 16: the default view is the queue (not RESOLVED), worst first; --all every status
    result = noc("alert", "list", "--format", "json")
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["i-1", "cam-01", "h-1"]
    assert result.stderr == ""
    every = noc("alert", "list", "--format", "json", "--all")
    assert [a["entity_id"] for a in json.loads(every.stdout)] == ["cam-05", "i-1", "cam-01", "h-1"]


def test_client_preference_filters_the_listing(noc):
    set_ok(noc, "client", "ACME")
    result = noc("alert", "list", "--format", "json", "--all")
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["cam-05", "cam-01"]
    assert result.stderr == "nocctl: filtered by your preferences: client=ACME (--no-prefs to ignore them)\n"
    assert noc("-q", "alert", "list", "--format", "json").stderr == ""


def test_severity_preference_filters_the_listing(noc):
    set_ok(noc, "severity", "critical")
    assert listed(noc, "--all") == ["cam-05", "i-1"]
    set_ok(noc, "severity", "low,high")
    assert listed(noc, "--all") == ["cam-01", "h-1"]


def test_status_preference_filters_the_listing(noc):
    set_ok(noc, "status", "active")
    assert listed(noc) == ["i-1", "cam-01", "h-1"]
    set_ok(noc, "status", "resolved,acknowledged")
    assert listed(noc) == ["cam-05", "i-1"]


def test_filter_preferences_combine(noc):
    set_ok(noc, "client", "ACME")
    set_ok(noc, "severity", "critical")
    set_ok(noc, "status", "active")
    assert listed(noc) == []
    result = noc("alert", "list")
    assert result.stdout == "(none)\n"
    assert result.stderr == ("nocctl: filtered by your preferences: client=ACME severity=CRITICAL "
                             "status=NEW,ACKNOWLEDGED,ASSIGNED,ESCALATED,SUPPRESSED (--no-prefs to ignore them)\n")


def test_explicit_filters_replace_the_preference_of_their_kind_only(noc):
    set_ok(noc, "client", "ACME")
    set_ok(noc, "severity", "critical")
    set_ok(noc, "status", "resolved")
    assert listed(noc) == ["cam-05"]
    # --client replaces the client preference; severity and status preferences still apply
    assert listed(noc, "--client", "INITECH") == []
    assert listed(noc, "--client", "INITECH", "--status", "acknowledged") == ["i-1"]
    # --severity replaces the severity preference
    assert listed(noc, "--severity", "high", "--status", "new") == ["cam-01"]
    # --active and --status replace the status preference
    assert listed(noc, "--active", "--client", "INITECH") == ["i-1"]
    # --site names its own client: the client preference does not apply
    assert listed(noc, "--site", "GLOBEX-PNQ", "--severity", "low", "--active") == ["h-1"]
    result = noc("alert", "list", "--client", "GLOBEX", "--severity", "low", "--status", "new", "--format", "json")
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["h-1"]
    assert result.stderr == ""  # every preference was replaced: nothing to note


def test_no_prefs_ignores_them_all(noc):
    set_ok(noc, "client", "GLOBEX")
    set_ok(noc, "severity", "low")
    set_ok(noc, "status", "new")
    set_ok(noc, "format", "csv")
    set_ok(noc, "timezone", "Asia/Kolkata")
    assert listed(noc) == ["h-1"]
    result = noc("alert", "list", "--no-prefs", "--all")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == list(alert_service.TABLE_COLUMNS)  # table, not csv
    assert len(lines) == 2 + 4
    assert "2026-03-01T10:00:00Z" in result.stdout and "+05:30" not in result.stdout


def test_format_preference_is_the_default_and_the_flag_wins(noc):
    set_ok(noc, "format", "json")
    result = noc("alert", "list")
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["i-1", "cam-01", "h-1"]
    set_ok(noc, "format", "csv")
    assert noc("alert", "list").stdout.splitlines()[0] == ",".join(alert_service.LIST_COLUMNS)
    set_ok(noc, "format", "ndjson")
    assert [json.loads(line)["entity_id"] for line in noc("alert", "list").stdout.splitlines()] == [
        "i-1", "cam-01", "h-1"]
    table = noc("alert", "list", "--format", "table").stdout
    assert table.splitlines()[0].split() == list(alert_service.TABLE_COLUMNS)
    noc("prefs", "unset", "format")
    assert noc("alert", "list").stdout.splitlines()[0].split() == list(alert_service.TABLE_COLUMNS)


def test_format_preference_applies_to_output_files(noc, tmp_path):
    set_ok(noc, "format", "json")
    target = tmp_path / "alerts.json"
    assert noc("alert", "list", "-o", str(target)).exit_code == 0
    assert len(json.loads(target.read_text())) == 3


def test_time_zone_applies_to_table_output_only(noc):
    utc_table = noc("alert", "list").stdout
    assert "2026-03-01T10:00:00Z" in utc_table
    set_ok(noc, "timezone", "Asia/Kolkata")
    table = noc("alert", "list")
    assert table.stderr == ""  # not a filter: nothing to note
    line = next(line for line in table.stdout.splitlines() if "cam-01" in line)
    assert "2026-03-01T15:30:00+05:30" in line and "10:00:00Z" not in table.stdout
    set_ok(noc, "timezone", "America/New_York")
    line = next(line for line in noc("alert", "list").stdout.splitlines() if "cam-01" in line)
    assert "2026-03-01T05:00:00-05:00" in line
    # machine formats stay UTC ISO 8601
    [data] = [a for a in json.loads(noc("alert", "list", "--format", "json").stdout) if a["entity_id"] == "cam-01"]
    assert data["first_seen_at"] == "2026-03-01T10:00:00Z"
    assert data["last_seen_at"] == "2026-03-01T10:00:00Z"
    csv_text = noc("alert", "list", "--format", "csv").stdout
    assert "2026-03-01T10:00:00Z" in csv_text and "-05:00" not in csv_text
    ndjson_text = noc("alert", "list", "--format", "ndjson").stdout
    assert "2026-03-01T10:00:00Z" in ndjson_text and "-05:00" not in ndjson_text


def test_preferences_are_per_person(noc):
    noc("user", "add", "karthik")
    noc("user", "grant", "karthik", "noc:view")
    karthik = ("--as", "karthik")
    set_ok(noc, "client", "GLOBEX")
    set_ok(noc, "format", "csv")
    set_ok(noc, "timezone", "Asia/Kolkata")
    assert shown(noc, *karthik) == UNSET
    assert listed(noc, who=karthik) == ["i-1", "cam-01", "h-1"]
    own_table = noc(*karthik, "alert", "list")
    assert own_table.stdout.splitlines()[0].split() == list(alert_service.TABLE_COLUMNS)
    assert "10:00:00Z" in own_table.stdout and own_table.stderr == ""

    set_ok(noc, "severity", "critical", *karthik)
    assert listed(noc, "--all", who=karthik) == ["cam-05", "i-1"]
    assert listed(noc) == ["h-1"]  # the admin's client preference, not karthik's severity
    assert shown(noc) == UNSET | {"client": "GLOBEX", "format": "csv", "timezone": "Asia/Kolkata"}


def test_a_preferred_client_that_became_hidden_shows_nothing_more(noc):
    noc("user", "add", "sana")
    noc("user", "grant", "sana", "noc:view_client", "--client", "GLOBEX")
    noc("user", "grant", "sana", "noc:view_client", "--client", "ACME")
    set_ok(noc, "client", "ACME", "--as", "sana")
    assert listed(noc, who=("--as", "sana")) == ["cam-01"]
    noc("user", "revoke", "sana", "noc:view_client", "--client", "ACME")
    assert listed(noc, who=("--as", "sana")) == []
    assert listed(noc, "--no-prefs", who=("--as", "sana")) == ["h-1"]


def test_listing_reads_preferences_in_its_one_transaction(noc):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    set_ok(noc, "client", "ACME")
    begins = []

    def listener(conn):
        begins.append(conn)

    event.listen(Engine, "begin", listener)
    try:
        result = noc("alert", "list", "--format", "json", "--all")
    finally:
        event.remove(Engine, "begin", listener)
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["cam-05", "cam-01"]
    assert len(begins) == 1


def test_the_service_reports_what_it_applied(noc, new_session, caller):
    set_ok(noc, "client", "ACME")
    set_ok(noc, "severity", "high")
    set_ok(noc, "timezone", "UTC")
    listing = alert_service.list_alerts(new_session(), caller, use_prefs=True)
    assert [r["entity_id"] for r in listing.rows] == ["cam-01"]
    assert listing.applied == prefs_service.Prefs(client="ACME", severities=("HIGH",), timezone="UTC")
    given = alert_service.list_alerts(new_session(), caller, severities=["critical"], use_prefs=True,
                                      every_status=True)
    assert [r["entity_id"] for r in given.rows] == ["cam-05"]
    assert given.applied.severities == () and given.applied.client == "ACME"
    plain = alert_service.list_alerts(new_session(), caller)
    assert len(plain.rows) == 3 and plain.applied == prefs_service.NO_PREFS
    assert len(alert_service.list_alerts(new_session(), caller, every_status=True).rows) == 4
