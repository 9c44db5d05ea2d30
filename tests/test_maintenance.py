"""`nocctl maintenance add/list/show/end/delete/check` and what windows do at ingest (DESIGN §3
"Maintenance windows", §4, §5), through the command line against the backend under test:
validation, scope and type matching, recurrence, ending early and deleting, alerts held and
surfacing after the window, permissions and visibility, and the audit rows."""
from __future__ import annotations

import json

import pytest

from ingest_helpers import ORG, alert, ndjson, rows

NOW = "2026-03-07T12:00:00Z"  # a Saturday


@pytest.fixture
def noc(admin_cli, monkeypatch):
    """The example organisation, the clock fixed at NOW."""
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def add(noc, *args: str, person: str | None = None) -> int:
    """`maintenance add ARGS` that must succeed; returns the new id."""
    result = noc(*(("--as", person) if person else ()), "maintenance", "add", *args)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def site_window(noc, site="ACME-BLR-WF", start="2026-03-07T10:00:00Z", end="2026-03-07T14:00:00Z", *extra: str,
                person: str | None = None) -> int:
    return add(noc, "--site", site, "--start", start, "--end", end, "--reason", "generator swap",
               *(extra or ("--suppress-all",)), person=person)


def show(noc, window_id: int, person: str | None = None) -> dict:
    result = noc(*(("--as", person) if person else ()), "maintenance", "show", str(window_id), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def check(noc, *args: str, person: str | None = None) -> dict:
    result = noc(*(("--as", person) if person else ()), "maintenance", "check", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def listed(noc, *args: str, person: str | None = None) -> list[int]:
    result = noc(*(("--as", person) if person else ()), "maintenance", "list", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return [w["id"] for w in json.loads(result.stdout)]


def ingest(noc, *records: dict) -> dict:
    result = noc("ingest", "--json", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def statuses(noc) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(site, entity) -> (status, maintenance_window_id) as `alert show` gives them."""
    shown = {}
    for item in json.loads(noc("alert", "list", "--format", "json", "--no-prefs", "--all").stdout):
        full = json.loads(noc("alert", "show", str(item["id"]), "--format", "json").stdout)
        shown[(full["site"] or full["client"], full["entity_id"])] = (full["status"], full["maintenance_window_id"])
    return shown


def client_level(entity: str, client: str, at: str, alert_type: str = "DEVICE_OFFLINE") -> dict:
    record = alert(alert_type=alert_type, entity=entity, at=at)
    del record["site"]
    return record | {"client": client}


def audit_rows(db_url: str, action: str) -> list[tuple]:
    return rows(db_url, "SELECT a.target_type, a.target_id, c.code, s.code, a.details FROM audit_log a"
                        " LEFT JOIN business_unit c ON c.id = a.client_id LEFT JOIN business_unit s ON s.id = a.site_id"
                        " WHERE a.action = :action ORDER BY a.id", action=action)


def window_count(db_url: str) -> int:
    return rows(db_url, "SELECT count(*) FROM maintenance_window")[0][0]


# ---------------------------------------------------------------- add, show

def test_add_prints_the_id_and_show_gives_every_field(noc, db_url):
    window_id = site_window(noc)
    data = show(noc, window_id)
    assert data == {
        "id": window_id, "scope": "site", "client": "ACME", "site": "ACME-BLR-WF", "suppress_all": True,
        "alert_types": [], "matchers": [], "starts_at": "2026-03-07T10:00:00Z", "ends_at": "2026-03-07T14:00:00Z",
        "recurrence": "none", "weekdays": [], "until": None, "timezone": "UTC", "reason": "generator swap",
        "created_by": data["created_by"], "created_at": NOW, "ended_at": None, "deleted_at": None,
        "state": "active", "next_occurrence": {"starts_at": "2026-03-07T10:00:00Z", "ends_at": "2026-03-07T14:00:00Z"},
    }
    assert data["created_by"] == rows(db_url, "SELECT username FROM person ORDER BY id LIMIT 1")[0][0]
    table = noc("maintenance", "show", str(window_id))
    assert table.exit_code == 0 and "generator swap" in table.stdout and "ACME-BLR-WF" in table.stdout


def test_add_with_format_json_prints_the_created_window(noc):
    result = noc("maintenance", "add", "--client", "GLOBEX", "--start", "2026-03-08T02:00:00+05:30",
                 "--duration", "90m", "--type", "DEVICE_OFFLINE", "--type", "sync_degraded,HostDown",
                 "--allow-unknown-type", "--reason", "patching", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scope"] == "client" and data["client"] == "GLOBEX" and data["site"] is None
    assert data["alert_types"] == ["DEVICE_OFFLINE", "SYNC_DEGRADED", "HOST_DOWN"] and data["suppress_all"] is False
    assert (data["starts_at"], data["ends_at"]) == ("2026-03-07T20:30:00Z", "2026-03-07T22:00:00Z")
    assert data["state"] == "pending"


def test_duration_and_end_make_the_same_window(noc):
    by_end = show(noc, site_window(noc, "ACME-MYS", "2026-03-07T10:00:00Z", "2026-03-07T12:30:00Z"))
    by_duration = show(noc, add(noc, "--site", "ACME-MYS", "--start", "2026-03-07T10:00:00Z", "--duration", "2h30m",
                                "--suppress-all", "--reason", "generator swap"))
    assert (by_end["starts_at"], by_end["ends_at"]) == (by_duration["starts_at"], by_duration["ends_at"])


def test_a_recurring_window_shows_its_recurrence_and_next_occurrence(noc):
    window_id = add(noc, "--site", "ACME-BLR-WF", "--start", "2026-03-02T02:00:00+05:30", "--duration", "2h",
                    "--type", "DEVICE_OFFLINE", "--recur", "weekly", "--on", "mon,thu", "--until", "2026-03-31",
                    "--tz", "Asia/Kolkata", "--reason", "weekly reboot")
    data = show(noc, window_id)
    assert (data["recurrence"], data["weekdays"], data["until"], data["timezone"]) == \
           ("weekly", ["mon", "thu"], "2026-03-31", "Asia/Kolkata")
    # now is Saturday 7 March 12:00Z: the next is Monday 9 March 02:00 IST = Sunday 20:30Z
    assert data["state"] == "pending"
    assert data["next_occurrence"] == {"starts_at": "2026-03-08T20:30:00Z", "ends_at": "2026-03-08T22:30:00Z"}
    table = noc("maintenance", "list")
    assert "weekly mon,thu until 2026-03-31 (Asia/Kolkata)" in table.stdout
    assert "2026-03-08T20:30:00Z → 2026-03-08T22:30:00Z" in table.stdout


def test_weekly_without_on_uses_the_start_weekday_in_its_zone(noc):
    # Sunday 23:30 UTC is Monday 05:00 in Kolkata
    window_id = add(noc, "--all-sites", "--start", "2026-03-08T23:30:00Z", "--duration", "1h", "--suppress-all",
                    "--recur", "weekly", "--until", "2026-04-30", "--tz", "Asia/Kolkata", "--reason", "backup")
    assert show(noc, window_id)["weekdays"] == ["mon"]


NO_HOLD = "(neither --suppress-all nor --type)"
BAD_ADDS = [
    # (arguments after `maintenance add`, exit code, message start)
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--end", "2026-03-07T10:00:00Z"), 65,
     "the window must end after it starts: end 2026-03-07T10:00:00Z is not after start 2026-03-07T14:00:00Z"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--end", "2026-03-07T14:00:00Z"), 65,
     "the window must end after it starts"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00", "--duration", "2h"), 2,
     "--start '2026-03-07T14:00:00' has no UTC offset"),
    (("--site", "ACME-BLR-WF", "--start", "tomorrow", "--duration", "2h"), 2, "--start 'tomorrow' is not an ISO"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2 hours"), 65,
     "--duration '2 hours' is not a duration"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--end", "2026-03-07T15:00:00Z",
      "--duration", "2h"), 2, "give --end TIME or --duration LENGTH"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z"), 2, "give --end TIME or --duration LENGTH"),
    (("--site", "NO-SUCH", "--start", "2026-03-07T14:00:00Z", "--duration", "2h"), 3, "no site 'NO-SUCH'"),
    (("--client", "NO-SUCH", "--start", "2026-03-07T14:00:00Z", "--duration", "2h"), 3, "no client 'NO-SUCH'"),
    (("--site", "ACME", "--start", "2026-03-07T14:00:00Z", "--duration", "2h"), 3, "no site 'ACME'"),
    (("--client", "ACME", "--site", "ACME-MYS", "--start", "2026-03-07T14:00:00Z", "--duration", "2h"), 2,
     "give one scope: --client CODE, --site CODE or --all-sites (not --client and --site)"),
    (("--start", "2026-03-07T14:00:00Z", "--duration", "2h"), 2, "give one scope"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--type", "DEVICE_OFFLINE",
      "--suppress-all"), 2, "give --suppress-all or --type TYPE (one of them)"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", NO_HOLD), 2,
     "give --suppress-all or --type TYPE (one of them)"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--type", "9 lives"), 65,
     "alert type '9 lives' is not a usable type name"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--reason", "  "), 65,
     "a maintenance window needs a --reason"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "daily",
      "--on", "sat"), 2, "--on names the days of a weekly window"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "daily"), 2,
     "--recur needs --until DATE"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--until", "2026-04-01"), 2,
     "--until ends a recurrence"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "daily",
      "--until", "2026-03-06"), 65, "--until 2026-03-06 is before the first occurrence (2026-03-07 in UTC)"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "daily",
      "--until", "31/03/2026"), 65, "--until '31/03/2026' is not an ISO 8601 date"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "daily",
      "--until", "2026-04-01", "--tz", "Mars/Olympus"), 65, "unknown time zone 'Mars/Olympus'"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h", "--recur", "weekly",
      "--on", "sat,someday", "--until", "2026-04-01"), 65, "unknown weekday 'someday'"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "25h", "--recur", "daily",
      "--until", "2026-04-01"), 65, "an occurrence of a daily window cannot last longer than a day"),
    (("--site", "ACME-BLR-WF", "--start", "2026-03-09T14:00:00Z", "--duration", "2h", "--recur", "weekly",
      "--on", "sat", "--until", "2026-03-13"), 65, "the window never occurs"),
]


@pytest.mark.parametrize("args, code, message", BAD_ADDS, ids=[m for _, _, m in BAD_ADDS])
def test_add_refuses_with_one_clear_line_and_creates_nothing(noc, db_url, args, code, message):
    full = [a for a in args if a != NO_HOLD]
    if NO_HOLD not in args and "--suppress-all" not in full and "--type" not in full:
        full.append("--suppress-all")
    if "--reason" not in full:
        full += ["--reason", "work"]
    result = noc("maintenance", "add", *full)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith(f"nocctl: error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert window_count(db_url) == 0
    assert audit_rows(db_url, "MAINTENANCE_CREATE") == []


def test_a_missing_reason_is_a_usage_error(noc, db_url):
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration",
                 "2h", "--suppress-all")
    assert result.exit_code == 2 and "Missing option '--reason'" in result.stderr
    assert window_count(db_url) == 0


def test_unseen_types_are_refused_unless_allowed(noc):
    ingest(noc, alert(alert_type="HostDown", entity="h-1"))  # now HOST_DOWN has been seen
    args = ("maintenance", "add", "--site", "ACME-BLR-WF", "--start", "2026-03-07T14:00:00Z", "--duration", "2h",
            "--type", "DEVICE_OFFLINE", "--type", "HOST_DOWN", "--type", "DISK_FULL", "--reason", "work")
    refused = noc(*args)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "unknown alert type 'DISK_FULL': not built in and no alert of it has been seen" in refused.stderr
    result = noc(*args, "--allow-unknown-type")
    assert result.exit_code == 0 and result.stdout.strip().isdigit()
    assert result.stderr == ""
    assert show(noc, int(result.stdout))["alert_types"] == ["DEVICE_OFFLINE", "HOST_DOWN", "DISK_FULL"]


def test_a_window_already_over_is_created_with_a_warning(noc):
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--start", "2026-03-06T10:00:00Z", "--duration",
                 "2h", "--suppress-all", "--reason", "recorded late")
    assert result.exit_code == 0
    assert "nocctl: warning: the window is already over" in result.stderr
    assert show(noc, int(result.stdout))["state"] == "expired"


# ---------------------------------------------------------------- end to end: add, ingest, alert list

def test_a_window_made_by_the_command_suppresses_at_ingest_and_the_alert_surfaces_after(noc, db_url):
    window_id = add(noc, "--site", "ACME-BLR-WF", "--start", "2026-03-07T09:00:00Z", "--end", "2026-03-07T11:00:00Z",
                    "--suppress-all", "--reason", "generator swap")
    summary = ingest(noc, alert(entity="cam-01", at="2026-03-07T10:00:00Z"),
                     alert(entity="cam-01", at="2026-03-07T10:30:00Z"),
                     alert(entity="cam-02", site="ACME-MYS", at="2026-03-07T10:00:00Z"),
                     alert(entity="cam-03", at="2026-03-07T11:00:00Z"))  # the end is not inside
    assert (summary["suppressed"], summary["created"], summary["deduplicated"]) == (1, 2, 1)
    listed = json.loads(noc("alert", "list", "--format", "json", "--status", "SUPPRESSED").stdout)
    assert [(a["site"], a["entity_id"], a["duplicate_count"]) for a in listed] == [("ACME-BLR-WF", "cam-01", 1)]
    assert statuses(noc) == {("ACME-BLR-WF", "cam-01"): ("SUPPRESSED", window_id),
                             ("ACME-MYS", "cam-02"): ("NEW", None), ("ACME-BLR-WF", "cam-03"): ("NEW", None)}
    # escalation never touches a suppressed alert
    refused = noc("alert", "escalate", str(listed[0]["id"]))
    assert refused.exit_code == 4 and "SUPPRESSED" in refused.stderr
    # still firing after the window: the next duplicate turns it NEW so the NOC sees it
    summary = ingest(noc, alert(entity="cam-01", at="2026-03-07T11:20:00Z"))
    assert summary["deduplicated"] == 1
    assert statuses(noc)[("ACME-BLR-WF", "cam-01")] == ("NEW", window_id)
    assert json.loads(noc("alert", "list", "--format", "json", "--status", "SUPPRESSED").stdout) == []


def test_a_resolve_event_resolves_a_suppressed_alert(noc):
    add(noc, "--site", "ACME-BLR-WF", "--start", "2026-03-07T09:00:00Z", "--end", "2026-03-07T11:00:00Z",
        "--type", "DEVICE_OFFLINE", "--reason", "camera work")
    summary = ingest(noc, alert(entity="cam-01", at="2026-03-07T10:00:00Z"),
                     {"action": "resolve", "alert_type": "DEVICE_OFFLINE", "site": "ACME-BLR-WF",
                      "entity_type": "device", "entity_id": "cam-01", "occurred_at": "2026-03-07T10:40:00Z"})
    assert (summary["suppressed"], summary["resolved"]) == (1, 1)
    assert statuses(noc)[("ACME-BLR-WF", "cam-01")][0] == "RESOLVED"


def test_client_window_covers_its_sites_and_client_level_alerts_site_window_only_its_site(noc):
    client_window = add(noc, "--client", "GLOBEX", "--start", "2026-03-07T09:00:00Z", "--duration", "2h",
                        "--suppress-all", "--reason", "GLOBEX network cut-over")
    site_window_id = site_window(noc, "ACME-BLR-WF", "2026-03-07T09:00:00Z", "2026-03-07T11:00:00Z")
    at = "2026-03-07T10:00:00Z"
    summary = ingest(noc, alert(entity="a", site="GLOBEX-PNQ", at=at), alert(entity="b", site="GLOBEX-BOM-WH1", at=at),
                     client_level("c", "GLOBEX", at), alert(entity="d", site="ACME-BLR-WF", at=at),
                     alert(entity="e", site="ACME-MYS", at=at), client_level("f", "ACME", at),
                     alert(entity="g", site="INITECH-GGN", at=at))
    assert summary["suppressed"] == 4 and summary["created"] == 3
    assert statuses(noc) == {
        ("GLOBEX-PNQ", "a"): ("SUPPRESSED", client_window), ("GLOBEX-BOM-WH1", "b"): ("SUPPRESSED", client_window),
        ("GLOBEX", "c"): ("SUPPRESSED", client_window), ("ACME-BLR-WF", "d"): ("SUPPRESSED", site_window_id),
        ("ACME-MYS", "e"): ("NEW", None), ("ACME", "f"): ("NEW", None), ("INITECH-GGN", "g"): ("NEW", None)}


def test_a_tenant_window_covers_every_client(noc):
    window_id = add(noc, "--all-sites", "--start", "2026-03-07T09:00:00Z", "--duration", "2h",
                    "--type", "SYNC_DEGRADED", "--reason", "sync service upgrade")
    at = "2026-03-07T10:00:00Z"
    summary = ingest(noc, alert(alert_type="SYNC_DEGRADED", entity="a", site="GLOBEX-PNQ", at=at),
                     alert(alert_type="SYNC_DEGRADED", entity="b", site="INITECH-GGN", at=at),
                     client_level("c", "ACME", at, "SYNC_DEGRADED"),
                     alert(alert_type="DEVICE_OFFLINE", entity="d", site="GLOBEX-PNQ", at=at))
    assert (summary["suppressed"], summary["created"]) == (3, 1)
    assert statuses(noc)[("GLOBEX-PNQ", "d")] == ("NEW", None)
    assert statuses(noc)[("ACME", "c")] == ("SUPPRESSED", window_id)


def test_type_lists_hold_only_their_types(noc):
    add(noc, "--site", "ACME-BLR-WF", "--start", "2026-03-07T09:00:00Z", "--duration", "2h",
        "--type", "DEVICE_OFFLINE,SYNC_DEGRADED", "--reason", "network work")
    at = "2026-03-07T10:00:00Z"
    summary = ingest(noc, alert(alert_type="DEVICE_OFFLINE", entity="a", at=at),
                     alert(alert_type="SYNC_DEGRADED", entity="b", at=at),
                     alert(alert_type="GEOFENCE_BREACH", entity="c", at=at))
    assert (summary["suppressed"], summary["created"]) == (2, 1)
    assert statuses(noc)[("ACME-BLR-WF", "c")] == ("NEW", None)


def test_a_recurring_window_in_a_zone_suppresses_its_occurrences_only(noc, monkeypatch):
    window_id = add(noc, "--site", "ACME-BLR-WF", "--start", "2026-03-02T02:00:00+05:30", "--duration", "2h",
                    "--suppress-all", "--recur", "daily", "--until", "2026-03-10", "--tz", "Asia/Kolkata",
                    "--reason", "nightly backup")
    monkeypatch.setenv("NOC_NOW", "2026-03-11T00:00:00Z")  # the events arrive once they happened
    summary = ingest(noc, alert(entity="in-1", at="2026-03-05T21:00:00Z"),     # 6 March 02:30 IST
                     alert(entity="out-1", at="2026-03-05T23:00:00Z"),         # 04:30 IST: after
                     alert(entity="last", at="2026-03-09T20:45:00Z"),          # 10 March 02:15 IST: the until day
                     alert(entity="past", at="2026-03-10T20:45:00Z"))          # 11 March: past --until
    assert (summary["suppressed"], summary["created"]) == (2, 2)
    seen = statuses(noc)
    assert seen[("ACME-BLR-WF", "in-1")] == seen[("ACME-BLR-WF", "last")] == ("SUPPRESSED", window_id)
    assert seen[("ACME-BLR-WF", "out-1")][0] == seen[("ACME-BLR-WF", "past")][0] == "NEW"


# ---------------------------------------------------------------- check

def test_check_says_whether_and_by_which_window(noc):
    site_id = site_window(noc, "ACME-BLR-WF", "2026-03-07T10:00:00Z", "2026-03-07T14:00:00Z", "--type",
                          "DEVICE_OFFLINE")
    client_id = add(noc, "--client", "ACME", "--start", "2026-03-07T11:00:00Z", "--duration", "2h",
                    "--suppress-all", "--reason", "ACME-wide power test")
    both = check(noc, "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE")
    assert both["suppressed"] is True and both["window"]["id"] == site_id and both["windows"] == [site_id, client_id]
    assert both["occurrence"] == {"starts_at": "2026-03-07T10:00:00Z", "ends_at": "2026-03-07T14:00:00Z"}
    assert both["at"] == NOW and both["alert_type"] == "DEVICE_OFFLINE" and both["client"] == "ACME"
    other_type = check(noc, "--site", "ACME-BLR-WF", "--type", "geofence_breach")
    assert other_type["windows"] == [client_id] and other_type["alert_type"] == "GEOFENCE_BREACH"
    assert check(noc, "--site", "ACME-MYS", "--type", "DEVICE_OFFLINE")["windows"] == [client_id]
    assert check(noc, "--client", "ACME", "--type", "DEVICE_OFFLINE")["windows"] == [client_id]
    later = check(noc, "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE", "--at", "2026-03-07T14:00:00Z")
    assert later == {"suppressed": False, "alert_type": "DEVICE_OFFLINE", "client": "ACME", "site": "ACME-BLR-WF",
                     "at": "2026-03-07T14:00:00Z", "entity_type": None, "entity_id": None, "labels": {},
                     "window": None, "occurrence": None, "windows": []}
    assert check(noc, "--site", "GLOBEX-PNQ", "--type", "DEVICE_OFFLINE")["suppressed"] is False
    text = noc("maintenance", "check", "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE")
    assert text.stdout.splitlines() == [
        (f"suppressed by maintenance window {site_id} (site ACME-BLR-WF; 2026-03-07T10:00:00Z → "
         "2026-03-07T14:00:00Z): generator swap"),
        f"also covered by window {client_id}"]
    text = noc("maintenance", "check", "--site", "GLOBEX-PNQ", "--type", "DEVICE_OFFLINE", "--at",
               "2026-03-07T15:30:00+05:30")
    assert text.exit_code == 0 and text.stdout == (
        "not suppressed: no maintenance window holds DEVICE_OFFLINE at site GLOBEX-PNQ at 2026-03-07T10:00:00Z\n")


def test_check_errors(noc):
    assert noc("maintenance", "check", "--type", "X").exit_code == 2
    assert noc("maintenance", "check", "--site", "ACME-MYS", "--client", "ACME", "--type", "X").exit_code == 2
    missing = noc("maintenance", "check", "--site", "NOPE", "--type", "DEVICE_OFFLINE")
    assert missing.exit_code == 3 and missing.stderr == "nocctl: error: no site 'NOPE'; see `nocctl org list`\n"
    bad = noc("maintenance", "check", "--site", "ACME-MYS", "--type", "DEVICE_OFFLINE", "--at", "noon")
    assert bad.exit_code == 2  # an unreadable command-line time is a usage error (clock.parse_instant, issue 16)


# ---------------------------------------------------------------- end early, delete

def test_end_stops_the_window_now_and_is_audited(noc, db_url, monkeypatch):
    window_id = site_window(noc, "ACME-BLR-WF", "2026-03-07T10:00:00Z", "2026-03-07T16:00:00Z")
    ingest(noc, alert(entity="held", at="2026-03-07T11:00:00Z"))
    result = noc("maintenance", "end", str(window_id))
    assert (result.exit_code, result.stdout) == (0, f"maintenance window {window_id}: ended at {NOW}\n")
    data = show(noc, window_id)
    assert (data["state"], data["ended_at"], data["next_occurrence"]) == ("expired", NOW, None)
    # events before the end (arriving late) are still held; events after it are not
    monkeypatch.setenv("NOC_NOW", "2026-03-07T13:00:00Z")  # an hour later, when they arrive
    summary = ingest(noc, alert(entity="late", at="2026-03-07T11:30:00Z"),
                     alert(entity="after", at="2026-03-07T12:30:00Z"))
    assert (summary["suppressed"], summary["created"]) == (1, 1)
    assert check(noc, "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE", "--at", "2026-03-07T13:00:00Z")[
        "suppressed"] is False
    # the alert it held stays SUPPRESSED until its next duplicate, which now surfaces it
    assert statuses(noc)[("ACME-BLR-WF", "held")][0] == "SUPPRESSED"
    ingest(noc, alert(entity="held", at="2026-03-07T12:10:00Z"))
    assert statuses(noc)[("ACME-BLR-WF", "held")][0] == "NEW"
    ((target_type, target_id, client, site, details),) = audit_rows(db_url, "MAINTENANCE_UPDATE")
    assert (target_type, target_id, client, site) == ("maintenance_window", str(window_id), "ACME", "ACME-BLR-WF")
    assert (json.loads(details) if isinstance(details, str) else details) == {
        "change": "end", "ended_at": NOW, "state_before": "active"}
    again = noc("maintenance", "end", str(window_id))
    assert again.exit_code == 4 and again.stdout == ""
    assert again.stderr.startswith(f"nocctl: error: maintenance window {window_id} is expired (ended at {NOW})")
    assert len(audit_rows(db_url, "MAINTENANCE_UPDATE")) == 1


def test_end_of_a_pending_recurring_window_cancels_its_future(noc, monkeypatch):
    window_id = add(noc, "--site", "ACME-MYS", "--start", "2026-03-07T20:00:00Z", "--duration", "1h",
                    "--suppress-all", "--recur", "daily", "--until", "2026-03-20", "--reason", "nightly")
    assert show(noc, window_id)["state"] == "pending"
    assert noc("maintenance", "end", str(window_id), "--format", "json").exit_code == 0
    assert show(noc, window_id)["state"] == "expired"
    monkeypatch.setenv("NOC_NOW", "2026-03-09T21:00:00Z")  # two days on, when the event arrives
    assert ingest(noc, alert(entity="x", site="ACME-MYS", at="2026-03-09T20:30:00Z"))["suppressed"] == 0


def test_end_of_a_window_that_is_over_is_refused(noc, db_url):
    window_id = site_window(noc, "ACME-BLR-WF", "2026-03-06T10:00:00Z", "2026-03-06T12:00:00Z")
    result = noc("maintenance", "end", str(window_id))
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"nocctl: error: maintenance window {window_id} is expired (no occurrence now or later): nothing to end")
    assert show(noc, window_id)["ended_at"] is None
    assert audit_rows(db_url, "MAINTENANCE_UPDATE") == []


def test_delete_cancels_keeps_the_row_and_is_audited(noc, db_url):
    window_id = site_window(noc, "ACME-BLR-WF", "2026-03-07T10:00:00Z", "2026-03-07T16:00:00Z")
    result = noc("maintenance", "delete", str(window_id), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["deleted_at"], data["state"], data["reason"]) == (NOW, "expired", "generator swap")
    assert listed(noc) == [] and listed(noc, "--state", "all") == [window_id]
    assert listed(noc, "--state", "expired") == [window_id]
    # a deleted window covers nothing, not even late events of its past
    assert ingest(noc, alert(entity="late", at="2026-03-07T11:00:00Z"))["suppressed"] == 0
    assert check(noc, "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE")["suppressed"] is False
    ((target_type, target_id, client, site, _details),) = audit_rows(db_url, "MAINTENANCE_DELETE")
    assert (target_type, target_id, client, site) == ("maintenance_window", str(window_id), "ACME", "ACME-BLR-WF")
    again = noc("maintenance", "delete", str(window_id))
    assert again.exit_code == 4
    assert again.stderr == f"nocctl: error: maintenance window {window_id} was already deleted at {NOW}\n"
    ended = noc("maintenance", "end", str(window_id))
    assert ended.exit_code == 4 and f"(deleted at {NOW})" in ended.stderr
    assert len(audit_rows(db_url, "MAINTENANCE_DELETE")) == 1


def test_an_ended_window_can_still_be_deleted_for_the_record(noc):
    window_id = site_window(noc)
    assert noc("maintenance", "end", str(window_id)).exit_code == 0
    assert noc("maintenance", "delete", str(window_id)).exit_code == 0


def test_unknown_ids_are_not_found(noc):
    for command in ("show", "end", "delete"):
        result = noc("maintenance", command, "4242")
        assert result.exit_code == 3
        assert result.stderr == ("nocctl: error: no maintenance window 4242; "
                                 "see `nocctl maintenance list --state all`\n")


# ---------------------------------------------------------------- list

def test_list_states_and_filters(noc, monkeypatch):
    active = site_window(noc, "ACME-BLR-WF", "2026-03-07T10:00:00Z", "2026-03-07T14:00:00Z")
    pending = add(noc, "--client", "GLOBEX", "--start", "2026-03-08T10:00:00Z", "--duration", "1h",
                  "--suppress-all", "--reason", "later")
    expired = site_window(noc, "ACME-MYS", "2026-03-06T10:00:00Z", "2026-03-06T11:00:00Z")
    tenant = add(noc, "--all-sites", "--start", "2026-03-07T11:00:00Z", "--duration", "2h", "--suppress-all",
                 "--reason", "platform")
    recurring_over = add(noc, "--site", "INITECH-GGN", "--start", "2026-03-01T01:00:00Z", "--duration", "1h",
                         "--suppress-all", "--recur", "daily", "--until", "2026-03-05", "--reason", "done")
    assert listed(noc) == [active, tenant, pending]  # pending and active, by start
    assert listed(noc, "--state", "active") == [active, tenant]
    assert listed(noc, "--state", "pending") == [pending]
    assert listed(noc, "--state", "expired") == [recurring_over, expired]
    assert listed(noc, "--state", "all") == [recurring_over, expired, active, tenant, pending]
    # --client: what covers the client or its sites; --site: what covers the site
    assert listed(noc, "--state", "all", "--client", "ACME") == [expired, active, tenant]
    assert listed(noc, "--state", "all", "--site", "ACME-BLR-WF") == [active, tenant]
    assert listed(noc, "--state", "all", "--site", "GLOBEX-PNQ") == [tenant, pending]
    assert noc("maintenance", "list", "--client", "ACME", "--site", "ACME-MYS").exit_code == 2
    assert noc("maintenance", "list", "--client", "NOPE").exit_code == 3
    # the clock moves: the pending one becomes active, the first one expires
    monkeypatch.setenv("NOC_NOW", "2026-03-08T10:30:00Z")
    assert listed(noc, "--state", "active") == [pending]
    assert listed(noc, "--state", "expired") == [recurring_over, expired, active, tenant]


def test_list_formats(noc, tmp_path):
    window_id = site_window(noc)
    ndjson_out = noc("maintenance", "list", "--format", "ndjson")
    (line,) = ndjson_out.stdout.splitlines()
    data = json.loads(line)
    assert list(data) == ["id", "scope", "client", "site", "suppress_all", "alert_types", "matchers", "starts_at",
                          "ends_at",
                          "recurrence", "weekdays", "until", "timezone", "reason", "created_by", "created_at",
                          "ended_at", "deleted_at", "state", "next_occurrence"]
    assert data["id"] == window_id
    csv_out = noc("maintenance", "list", "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("id,scope,client,site,suppress_all,alert_types")
    assert len(csv_out.stdout.splitlines()) == 2
    table = noc("maintenance", "list")
    assert table.stdout.splitlines()[0].split() == ["id", "state", "scope", "types", "matchers", "starts_at", "ends_at",
                                                    "recurrence", "next_occurrence", "reason"]
    assert "site ACME-BLR-WF" in table.stdout and "active" in table.stdout
    target = tmp_path / "windows.json"
    assert noc("maintenance", "list", "--format", "json", "-o", str(target)).stdout == ""
    assert [w["id"] for w in json.loads(target.read_text())] == [window_id]
    assert noc("maintenance", "list", "--state", "expired").stdout == "(none)\n"


# ---------------------------------------------------------------- permissions and visibility

@pytest.fixture
def people(noc):
    """a_mgr: sees and manages ACME; a_site: sees and manages one ACME site; viewer: sees
    everything, manages ACME only; plain: sees ACME, manages nothing."""
    grants = {
        "a_mgr": [("noc:view_client", "--client", "ACME"), ("noc:manage_maintenance", "--client", "ACME")],
        "a_site": [("noc:view_assigned_sites", "--site", "ACME-BLR-WF"),
                   ("noc:manage_maintenance", "--site", "ACME-BLR-WF")],
        "viewer": [("noc:view_all_clients",), ("noc:manage_maintenance", "--client", "ACME")],
        "plain": [("noc:view_client", "--client", "ACME")],
    }
    for person, granted in grants.items():
        assert noc("user", "add", person).exit_code == 0
        for grant in granted:
            assert noc("user", "grant", person, *grant).exit_code == 0
    return noc


def test_adding_needs_the_capability_over_the_scope(people, db_url):
    noc = people
    args = ("--start", "2026-03-07T14:00:00Z", "--duration", "1h", "--suppress-all", "--reason", "work")
    assert add(noc, "--client", "ACME", *args, person="a_mgr")
    assert add(noc, "--site", "ACME-MYS", *args, person="a_mgr")  # a client grant covers its sites
    assert add(noc, "--site", "ACME-BLR-WF", *args, person="a_site")
    refusals = [
        ("a_site", ("--site", "ACME-MYS"), 3, "no site 'ACME-MYS'"),  # not seen, not managed: no leak
        ("a_site", ("--client", "ACME"), 77, "'a_site' lacks noc:manage_maintenance for client ACME"),
        ("a_mgr", ("--client", "GLOBEX"), 3, "no client 'GLOBEX'"),
        ("viewer", ("--client", "GLOBEX"), 77, "'viewer' lacks noc:manage_maintenance for client GLOBEX"),
        ("a_mgr", ("--all-sites",), 77, "'a_mgr' lacks noc:manage_maintenance tenant-wide"),
        ("plain", ("--site", "ACME-MYS"), 77, "'plain' lacks noc:manage_maintenance for site ACME-MYS"),
    ]
    before = window_count(db_url)
    for person, scope, code, message in refusals:
        result = noc("--as", person, "maintenance", "add", *scope, *args)
        assert result.exit_code == code, (person, scope, result.stderr)
        assert result.stdout == "" and result.stderr.startswith(f"nocctl: error: {message}"), result.stderr
        if code == 77:
            assert "an admin can run `nocctl user grant" in result.stderr
    assert window_count(db_url) == before
    created = audit_rows(db_url, "MAINTENANCE_CREATE")
    assert [(r[2], r[3]) for r in created] == [("ACME", None), ("ACME", "ACME-MYS"), ("ACME", "ACME-BLR-WF")]


def test_windows_follow_visibility(people):
    noc = people
    acme = add(noc, "--client", "ACME", "--start", "2026-03-07T11:00:00Z", "--duration", "2h", "--suppress-all",
               "--reason", "acme work")
    acme_mys = site_window(noc, "ACME-MYS")
    globex = add(noc, "--site", "GLOBEX-PNQ", "--start", "2026-03-07T11:00:00Z", "--duration", "2h",
                 "--suppress-all", "--reason", "globex secret work")
    tenant = add(noc, "--all-sites", "--start", "2026-03-07T11:30:00Z", "--duration", "2h", "--suppress-all",
                 "--reason", "platform")
    assert listed(noc, person="a_mgr") == [acme_mys, acme, tenant]
    # a site-scoped person sees the client window that covers their site, not other sites'
    assert listed(noc, person="a_site") == [acme, tenant]
    for person in ("a_mgr", "a_site"):
        for command in ("show", "end", "delete"):
            hidden = noc("--as", person, "maintenance", command, str(globex))
            assert (hidden.exit_code, hidden.stdout) == (3, ""), (person, command)
            assert "GLOBEX" not in hidden.stderr and "secret" not in hidden.stderr
    assert noc("--as", "a_site", "maintenance", "show", str(acme_mys)).exit_code == 3
    assert noc("--as", "a_mgr", "maintenance", "list", "--site", "GLOBEX-PNQ").exit_code == 3
    assert noc("--as", "a_mgr", "maintenance", "check", "--site", "GLOBEX-PNQ", "--type", "X").exit_code == 3
    assert check(noc, "--site", "ACME-BLR-WF", "--type", "DEVICE_OFFLINE", person="a_site")["windows"] == [acme,
                                                                                                         tenant]
    assert show(noc, globex, person="viewer")["reason"] == "globex secret work"
    # seen but not managed: 77, and nothing changes
    refused = noc("--as", "viewer", "maintenance", "end", str(globex))
    assert refused.exit_code == 77 and "lacks noc:manage_maintenance for maintenance window" in refused.stderr
    assert noc("--as", "a_mgr", "maintenance", "end", str(tenant)).exit_code == 77
    assert noc("--as", "a_site", "maintenance", "delete", str(acme)).exit_code == 77
    assert show(noc, globex)["ended_at"] is None and show(noc, tenant)["ended_at"] is None
    assert show(noc, acme)["deleted_at"] is None
    # in scope: allowed, and the audit row names the person
    assert noc("--as", "a_mgr", "maintenance", "end", str(acme)).exit_code == 0
    audit = json.loads(noc("audit", "list", "--action", "MAINTENANCE_UPDATE", "--format", "json").stdout)
    assert [(a["actor"], a["target_id"], a["client"]) for a in audit] == [("a_mgr", str(acme), "ACME")]


def test_a_person_without_any_view_sees_no_windows(people):
    noc = people
    site_window(noc)
    add(noc, "--all-sites", "--start", "2026-03-07T11:30:00Z", "--duration", "2h", "--suppress-all",
        "--reason", "platform")
    assert noc("user", "add", "blind").exit_code == 0
    assert listed(noc, person="blind") == []


def test_creating_windows_writes_audit_rows_that_scoped_auditors_see(people, db_url):
    noc = people
    acme = site_window(noc)
    add(noc, "--client", "GLOBEX", "--start", "2026-03-07T14:00:00Z", "--duration", "1h", "--suppress-all",
        "--reason", "globex")
    tenant = add(noc, "--all-sites", "--start", "2026-03-07T14:00:00Z", "--duration", "1h", "--suppress-all",
                 "--reason", "platform")
    created = audit_rows(db_url, "MAINTENANCE_CREATE")
    assert [(r[1], r[2], r[3]) for r in created] == [
        (str(acme), "ACME", "ACME-BLR-WF"), (str(acme + 1), "GLOBEX", None), (str(tenant), None, None)]
    details = created[0][4]
    details = json.loads(details) if isinstance(details, str) else details
    assert details["reason"] == "generator swap" and details["starts_at"] == "2026-03-07T10:00:00Z"
    assert noc("user", "grant", "a_mgr", "noc:audit_view", "--client", "ACME").exit_code == 0
    seen = json.loads(noc("--as", "a_mgr", "audit", "list", "--action", "MAINTENANCE_CREATE", "--format",
                          "json").stdout)
    assert [a["target_id"] for a in seen] == [str(acme)]
    assert noc("audit", "verify").exit_code == 0
