"""Maintenance windows from now, for a while, narrowed by Alertmanager matchers (issue 16):
`maintenance add --start now|+30m --for 2h`, `--match` (=, !=, =~, !~ over labels, entity,
entity_type and type; ANDed with the scope and the types; anchored regexes), what ingest
then holds (exactly what matches, nothing else), `maintenance check` with labels, unknown
types refused unless allowed, and `maintenance list` in the preferred time zone — against
the backend under test."""
from __future__ import annotations

import json

import pytest

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl.errors import UsageError
from nocctl.services.maintenance import matchers

NOW = "2026-03-07T12:00:00Z"
INSIDE = "2026-03-07T12:01:00Z"  # within a window that starts now for 2h


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def add(noc, *args: str) -> int:
    result = noc("maintenance", "add", *args, *(() if "--reason" in args else ("--reason", "edge firmware")))
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def show(noc, window_id: int) -> dict:
    result = noc("maintenance", "show", str(window_id), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def am_alert(instance: str, site: str, alertname: str = "HostDown", **labels: str) -> dict:
    return {"status": "firing", "labels": {"alertname": alertname, "instance": instance, "site": site, **labels},
            "annotations": {"summary": f"{instance} down"}, "startsAt": INSIDE, "endsAt": "0001-01-01T00:00:00Z"}


def ingest_am(noc, *alerts: dict) -> dict:
    payload = {"version": "4", "status": "firing", "receiver": "noc", "groupKey": "{}", "alerts": list(alerts)}
    result = noc("ingest", "--format", "alertmanager", "--json", input=json.dumps(payload))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def ingest(noc, *records: dict) -> dict:
    result = noc("ingest", "--json", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def held(db_url: str) -> dict[str, tuple[str, int | None]]:
    """entity_id -> (status, maintenance_window_id)."""
    return {entity: (status, window) for entity, status, window in
            rows(db_url, "SELECT entity_id, status, maintenance_window_id FROM alert")}


def window_count(db_url: str) -> int:
    return rows(db_url, "SELECT count(*) FROM maintenance_window")[0][0]


# ---------------------------------------------------------------- from now, for a while

def test_start_now_for_2h_is_the_exact_window_and_now_is_the_default(noc):
    explicit = show(noc, add(noc, "--site", "ACME-BLR-WF", "--start", "now", "--for", "2h", "--suppress-all"))
    assert (explicit["starts_at"], explicit["ends_at"], explicit["state"]) == (
        "2026-03-07T12:00:00Z", "2026-03-07T14:00:00Z", "active")
    implicit = show(noc, add(noc, "--site", "ACME-BLR-WF", "--for", "2h", "--suppress-all"))
    assert (implicit["starts_at"], implicit["ends_at"]) == ("2026-03-07T12:00:00Z", "2026-03-07T14:00:00Z")


def test_start_in_30_minutes(noc):
    later = show(noc, add(noc, "--site", "ACME-BLR-WF", "--start", "+30m", "--for", "2h", "--suppress-all"))
    assert (later["starts_at"], later["ends_at"], later["state"]) == (
        "2026-03-07T12:30:00Z", "2026-03-07T14:30:00Z", "pending")
    until = show(noc, add(noc, "--site", "ACME-BLR-WF", "--start", "+30m", "--end", "+3h", "--suppress-all"))
    assert (until["starts_at"], until["ends_at"]) == ("2026-03-07T12:30:00Z", "2026-03-07T15:00:00Z")


@pytest.mark.parametrize("lengths", [(), ("--for", "2h", "--duration", "2h"), ("--for", "2h", "--end", "+3h")])
def test_exactly_one_of_end_duration_and_for(noc, db_url, lengths):
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", *lengths, "--suppress-all", "--reason", "r")
    assert result.exit_code == 2
    assert result.stderr.startswith("nocctl: error: give --end TIME or --duration LENGTH (or --for LENGTH)")
    assert window_count(db_url) == 0


# ---------------------------------------------------------------- matchers at ingest

def test_matchers_suppress_exactly_what_they_match(noc, db_url):
    window = add(noc, "--client", "ACME", "--for", "2h", "--match", "instance=~edge-.*")
    summary = ingest_am(noc,
                        am_alert("edge-1", "ACME-BLR-WF"),  # in scope, matches
                        am_alert("edge-2", "ACME-MYS", alertname="DiskFull"),  # another site and type of ACME
                        am_alert("core-1", "ACME-BLR-WF"),  # in scope, does not match
                        am_alert("my-edge-1", "ACME-BLR-WF"),  # anchored: no match
                        am_alert("edge-3", "GLOBEX-PNQ"))  # matches, out of scope
    # a native record of ACME without labels: `instance` reads empty, its entity is not a label
    summary_native = ingest(noc, alert(entity="edge-4", at=INSIDE))
    assert (summary["suppressed"], summary["created"], summary_native["suppressed"]) == (2, 3, 0)
    assert held(db_url) == {"edge-1": ("SUPPRESSED", window), "edge-2": ("SUPPRESSED", window),
                            "core-1": ("NEW", None), "my-edge-1": ("NEW", None), "edge-3": ("NEW", None),
                            "edge-4": ("NEW", None)}


def test_not_equal_and_not_regex_hold_alerts_without_the_label(noc, db_url):
    window = add(noc, "--all-sites", "--type", "DEVICE_OFFLINE", "--for", "2h",
                 "--match", "team!=db", "--match", "entity!~core-.*")
    ingest(noc,
           alert(entity="cam-1", at=INSIDE, metadata={"labels": {"team": "net"}}),  # held
           alert(entity="cam-2", at=INSIDE, site="GLOBEX-PNQ"),  # no team: reads "", held
           alert(entity="cam-3", at=INSIDE, metadata={"team": "db"}),  # top-level metadata: team=db
           alert(entity="core-1", at=INSIDE, metadata={"labels": {"team": "net"}}),  # entity excluded
           alert(alert_type="GEOFENCE_BREACH", entity="fence-1", at=INSIDE))  # type not held
    assert held(db_url) == {"cam-1": ("SUPPRESSED", window), "cam-2": ("SUPPRESSED", window),
                            "cam-3": ("NEW", None), "core-1": ("NEW", None), "fence-1": ("NEW", None)}


def test_type_and_entity_type_matchers_and_the_window_time(noc, db_url):
    window = add(noc, "--site", "ACME-BLR-WF", "--for", "2h", "--match", "type=HostDown",
                 "--match", "entity_type=instance")
    ingest_am(noc, am_alert("edge-1", "ACME-BLR-WF"), am_alert("edge-2", "ACME-BLR-WF", alertname="DiskFull"))
    early = am_alert("edge-9", "ACME-BLR-WF") | {"startsAt": "2026-03-07T11:59:59Z"}  # before the window
    ingest_am(noc, early)
    ingest(noc, alert(alert_type="HOST_DOWN", entity="edge-5", at=INSIDE))  # entity_type device
    assert held(db_url) == {"edge-1": ("SUPPRESSED", window), "edge-2": ("NEW", None), "edge-9": ("NEW", None),
                            "edge-5": ("NEW", None)}


def test_a_duplicate_that_no_longer_matches_surfaces(noc, db_url):
    add(noc, "--site", "ACME-BLR-WF", "--for", "2h", "--match", "phase=maintenance")
    held_one = alert(entity="ups-1", at=INSIDE, metadata={"phase": "maintenance"})
    ingest(noc, held_one)
    assert held(db_url)["ups-1"][0] == "SUPPRESSED"
    ingest(noc, held_one | {"occurred_at": "2026-03-07T12:05:00Z", "metadata": {"phase": "live"}})
    assert held(db_url)["ups-1"][0] == "NEW"


def test_check_reads_labels_and_entity(noc):
    window = add(noc, "--client", "ACME", "--for", "2h", "--match", "instance=~edge-.*", "--match", "env!=lab")

    def check(*args: str) -> dict:
        result = noc("maintenance", "check", "--site", "ACME-BLR-WF", "--type", "HostDown", *args, "--format", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    matched = check("--label", "instance=edge-1")
    assert (matched["suppressed"], matched["windows"], matched["labels"]) == (True, [window], {"instance": "edge-1"})
    assert check("--label", "instance=edge-1", "--label", "env=lab")["suppressed"] is False
    assert check()["suppressed"] is False  # no instance label: "" does not match edge-.*
    assert check("--entity", "edge-1")["suppressed"] is False  # the entity is not the instance label
    text = noc("maintenance", "check", "--site", "ACME-BLR-WF", "--type", "HostDown", "--label", "instance=core-1")
    assert text.stdout == ("not suppressed: no maintenance window holds HOST_DOWN at site ACME-BLR-WF at "
                           "2026-03-07T12:00:00Z\n")


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("matcher, message", [
    ("instance=~edge-([", "--match 'instance=~edge-([': bad regular expression 'edge-(['"),
    ("instance!~*", "--match 'instance!~*': bad regular expression '*'"),
    ("instance", "--match 'instance' is not a matcher"),
    ("9x=y", "--match '9x=y' is not a matcher"),
    ('instance="edge', None),  # an unbalanced quote is part of the value: accepted
])
def test_bad_matchers_are_usage_errors_naming_them(noc, db_url, matcher, message):
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--for", "2h", "--match", matcher, "--reason", "r")
    if message is None:
        assert result.exit_code == 0, result.stderr
        return
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"nocctl: error: {message}") and result.stderr.count("\n") == 1
    assert result.stdout == "" and window_count(db_url) == 0


def test_an_unknown_type_is_refused_unless_allowed(noc, db_url):
    typo = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--for", "2h", "--type", "DEVICE_OFLINE",
               "--reason", "r")
    assert typo.exit_code == 2 and window_count(db_url) == 0
    assert typo.stderr == ("nocctl: error: unknown alert type 'DEVICE_OFLINE': not built in and no alert of it has "
                           "been seen; did you mean DEVICE_OFFLINE? --allow-unknown-type to hold it all the same\n")
    ingest(noc, alert(alert_type="HostDown", entity="h-1"))  # HOST_DOWN has been seen now
    seen = add(noc, "--site", "ACME-BLR-WF", "--for", "2h", "--type", "HOST_DOWN")
    assert show(noc, seen)["alert_types"] == ["HOST_DOWN"]
    near_seen = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--for", "2h", "--type", "HOST_DWN",
                    "--reason", "r")
    assert near_seen.exit_code == 2 and "did you mean HOST_DOWN?" in near_seen.stderr
    allowed = add(noc, "--site", "ACME-BLR-WF", "--for", "2h", "--type", "DISK_FULL", "--allow-unknown-type")
    assert show(noc, allowed)["alert_types"] == ["DISK_FULL"]


def test_a_window_needs_types_or_matchers(noc, db_url):
    result = noc("maintenance", "add", "--site", "ACME-BLR-WF", "--for", "2h", "--reason", "r")
    assert result.exit_code == 2 and window_count(db_url) == 0
    assert result.stderr.startswith("nocctl: error: give --suppress-all or --type TYPE (one of them), or --match")


# ---------------------------------------------------------------- shown

def test_show_and_list_give_the_matchers(noc):
    window = add(noc, "--client", "ACME", "--type", "DEVICE_OFFLINE", "--for", "2h",
                 "--match", 'instance=~"edge-.*"', "--match", "env != lab", "--match", "instance=~edge-.*")
    data = show(noc, window)
    assert data["matchers"] == [{"name": "instance", "op": "=~", "value": "edge-.*"},
                                {"name": "env", "op": "!=", "value": "lab"}]  # duplicates dropped
    assert (data["suppress_all"], data["alert_types"]) == (False, ["DEVICE_OFFLINE"])
    table = noc("maintenance", "show", str(window)).stdout
    (line,) = [line for line in table.splitlines() if line.startswith("matchers ")]
    assert line.split(None, 1)[1] == 'instance=~"edge-.*", env!="lab"'  # as typed, once each
    listed = json.loads(noc("maintenance", "list", "--format", "json").stdout)
    assert listed[0]["matchers"] == data["matchers"]
    lines = noc("maintenance", "list").stdout.splitlines()
    assert lines[0].split()[:5] == ["id", "state", "scope", "types", "matchers"]
    assert 'DEVICE_OFFLINE  instance=~"edge-.*", env!="lab"' in lines[2]
    matched_only = show(noc, add(noc, "--client", "ACME", "--for", "2h", "--match", "instance=edge-1"))
    assert (matched_only["suppress_all"], matched_only["alert_types"]) == (True, [])  # every type it matches


def test_list_shows_times_in_the_preferred_zone(noc):
    window = add(noc, "--site", "ACME-BLR-WF", "--start", "+30m", "--for", "2h", "--suppress-all")
    assert noc("prefs", "set", "timezone", "Asia/Kolkata").exit_code == 0
    table = noc("maintenance", "list").stdout.splitlines()
    (row,) = [line for line in table[2:] if line.split()[0] == str(window)]
    assert "2026-03-07T18:00:00+05:30  2026-03-07T20:00:00+05:30" in row
    assert "2026-03-07T18:00:00+05:30 → 2026-03-07T20:00:00+05:30" in row  # next occurrence too
    assert "Z" not in row.replace("ACME-BLR-WF", "")
    data = json.loads(noc("maintenance", "list", "--format", "json").stdout)
    assert (data[0]["starts_at"], data[0]["next_occurrence"]["ends_at"]) == (
        "2026-03-07T12:30:00Z", "2026-03-07T14:30:00Z")  # data formats stay UTC


# ---------------------------------------------------------------- the matcher rules

def test_matcher_semantics_follow_alertmanager():
    def holds(text: str, **labels: object) -> bool:
        m = matchers.parse(text)
        return m.holds(matchers.value_of(m.name, "HOST_DOWN", "instance", "edge-1", {"labels": labels}))

    assert holds("instance=~edge-.*", instance="edge-1")
    assert not holds("instance=~edge", instance="edge-1")  # anchored at the end too
    assert not holds("instance=~dge-1", instance="edge-1")  # and at the start
    assert holds("instance=~a|edge-1", instance="edge-1")  # the alternation is grouped: ^(?:a|edge-1)$
    assert holds("team!=db") and holds("team=") and holds("team=~.*") and not holds("team=~.+")
    assert holds("type=HostDown") and holds("type=HOST_DOWN") and not holds("type!=HostDown")
    assert holds("entity=edge-1") and holds("entity_type=instance")
    assert holds('note="a \\"quoted\\" value"', note='a "quoted" value')
    assert matchers.value_of("n", None, None, None, {"n": 3}) == "3"
    assert matchers.value_of("n", None, None, None, {"n": True}) == "true"
    assert matchers.value_of("n", None, None, None, {"n": {"deep": 1}}) == ""
    with pytest.raises(UsageError, match="bad regular expression"):
        matchers.parse("a=~(")
