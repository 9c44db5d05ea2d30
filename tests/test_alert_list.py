"""`nocctl alert list` as the queue an engineer works (issue 16): the alerts in front of the
NOC by default (not RESOLVED, not SUPPRESSED, not snoozed), worst first then the longest
waiting, a limit that says on stderr when it cuts (JSON stays a plain array), filters on
Alertmanager labels and metadata (=, !=, =~, !~), on the entity, relative times at NOC_NOW,
and --watch writing NDJSON snapshots when piped — on the backend under test."""
from __future__ import annotations

import json

import pytest

from ingest_helpers import ORG, alert, ndjson

NOW = "2026-03-01T12:00:00Z"
AT_NOW = {"NOC_NOW": NOW}


def t(clock: str) -> str:
    return f"2026-03-01T{clock}Z"


def am(instance: str, env: str, severity: str, starts: str) -> dict:
    return {"status": "firing", "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": "HostDown", "instance": instance, "env": env, "site": "ACME-CHN",
                       "severity": severity},
            "annotations": {"summary": f"{instance} is down"}}


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture
def noc(admin_cli, monkeypatch):
    """Ten alerts at 12:00: see each line."""
    monkeypatch.setenv("NOC_NOW", NOW)
    ok(admin_cli("org", "import", str(ORG)))
    ok(admin_cli("maintenance", "add", "--site", "GLOBEX-AMD", "--start", t("10:30:00"), "--end", t("13:00:00"),
                 "--suppress-all", "--reason", "rewiring"))
    ok(admin_cli("ingest", input=ndjson(
        alert(entity="cam-01", at=t("10:00:00"), metadata={"rack": "r7", "zone": 3}),  # HIGH
        alert(entity="cam-02", site="ACME-MYS", severity="CRITICAL", at=t("11:30:00")),
        alert(entity="door-1", site="GLOBEX-PNQ", severity="CRITICAL", at=t("09:00:00")),  # acknowledged below
        alert(entity="fan-1", site="INITECH-GGN", severity="LOW", at=t("11:59:00")),
        alert(entity="ups-1", site="ACME-CHN", severity="MEDIUM", at=t("08:00:00")),
        alert(entity="ups-1", site="ACME-CHN", severity="MEDIUM", at=t("08:30:00"), action="resolve"),
        alert(entity="cam-09", site="GLOBEX-AMD", at=t("11:00:00")),  # in maintenance: SUPPRESSED
        alert(entity="cam-07", site="INITECH-HYD", severity="CRITICAL", at=t("10:30:00")),  # snoozed below
    )))
    ok(admin_cli("ingest", input=ndjson(alert(entity="cam-03", at=t("10:00:00")))))  # as old as cam-01, a later id
    ok(admin_cli("ingest", "--format", "alertmanager", input=json.dumps(
        {"version": "4", "status": "firing", "receiver": "noc", "groupLabels": {}, "commonLabels": {},
         "commonAnnotations": {}, "externalURL": "http://am", "alerts": [
             am("edge-1:9100", "prod", "critical", t("11:45:00")),
             am("edge-2:9100", "staging", "warning", t("11:50:00"))]})))
    ids = {a["entity_id"]: a["id"] for a in listed(admin_cli, "--all")}
    ok(admin_cli("alert", "ack", str(ids["door-1"]), "--note", "on it"))
    ok(admin_cli("alert", "snooze", str(ids["cam-07"]), "--until", t("13:00:00")))
    return admin_cli


def listed(noc, *args: str, env: dict | None = None) -> list[dict]:
    result = ok(noc("alert", "list", "--format", "json", *args, env=env))
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def entities(noc, *args: str, env: dict | None = None) -> list[str]:
    return [a["entity_id"] for a in listed(noc, *args, env=env)]


DEFAULT = ["door-1", "cam-02", "edge-1:9100", "cam-01", "cam-03", "edge-2:9100", "fan-1"]


def test_the_default_is_the_queue_worst_first_then_the_longest_waiting(noc):
    rows = listed(noc)
    assert [a["entity_id"] for a in rows] == DEFAULT
    assert [(a["severity"], a["status"]) for a in rows] == [
        ("CRITICAL", "ACKNOWLEDGED"), ("CRITICAL", "NEW"), ("CRITICAL", "NEW"), ("HIGH", "NEW"), ("HIGH", "NEW"),
        ("MEDIUM", "NEW"), ("LOW", "NEW")]
    assert rows[3]["id"] < rows[4]["id"] and rows[3]["first_seen_at"] == rows[4]["first_seen_at"]


def test_all_active_and_status_widen_the_view(noc):
    assert entities(noc, "--all") == ["door-1", "cam-07", "cam-02", "edge-1:9100", "cam-01", "cam-03", "cam-09",
                                      "ups-1", "edge-2:9100", "fan-1"]
    # --active keeps its meaning (not RESOLVED): the held and the snoozed too
    assert entities(noc, "--active") == ["door-1", "cam-07", "cam-02", "edge-1:9100", "cam-01", "cam-03", "cam-09",
                                         "edge-2:9100", "fan-1"]
    assert entities(noc, "--status", "suppressed") == ["cam-09"]
    assert entities(noc, "--status", "resolved") == ["ups-1"]
    assert entities(noc, "--status", "new", "--severity", "critical") == ["cam-07", "cam-02", "edge-1:9100"]
    refused = noc("alert", "list", "--all", "--status", "NEW")
    assert refused.exit_code == 2 and "give --all or --status/--active, not both" in refused.stderr


def test_a_snoozed_alert_comes_back_to_the_default_view_when_its_snooze_ends(noc):
    assert "cam-07" not in entities(noc, env={"NOC_NOW": t("12:59:59")})
    assert entities(noc, env={"NOC_NOW": t("13:00:00")})[:2] == ["door-1", "cam-07"]


def test_a_cut_listing_says_so_on_stderr_and_the_json_stays_a_plain_array(noc):
    result = ok(noc("alert", "list", "--format", "json", "--limit", "3"))
    assert [a["entity_id"] for a in json.loads(result.stdout)] == DEFAULT[:3]
    assert result.stderr == "nocctl: showing 3 of 7 (--limit N, or --all)\n"
    cut_all = ok(noc("alert", "list", "--format", "ndjson", "--all", "--limit", "2"))
    assert [json.loads(line)["entity_id"] for line in cut_all.stdout.splitlines()] == ["door-1", "cam-07"]
    assert cut_all.stderr == "nocctl: showing 2 of 10 (--limit N)\n"
    assert ok(noc("alert", "list", "--format", "json", "--limit", "7")).stderr == ""  # all fit: nothing to say
    assert ok(noc("-q", "alert", "list", "--format", "json", "--limit", "3")).stderr == ""


def test_the_default_limit_is_100_and_all_lifts_it(noc):
    records = [alert(entity=f"bulk-{n:03}", site="INITECH-NOI", severity="INFO", at=t("07:00:00"))
               for n in range(100)]
    ok(noc("ingest", input=ndjson(*records)))
    result = ok(noc("alert", "list", "--format", "json"))
    assert len(json.loads(result.stdout)) == 100
    assert result.stderr == "nocctl: showing 100 of 107 (--limit N, or --all)\n"
    every = ok(noc("alert", "list", "--format", "json", "--all"))
    assert len(json.loads(every.stdout)) == 110 and every.stderr == ""


@pytest.mark.parametrize("matchers, expected", [
    (("instance=edge-1:9100",), ["edge-1:9100"]),
    (('instance="edge-2:9100"',), ["edge-2:9100"]),  # amtool's quoting
    (("instance=~edge-.*",), ["edge-1:9100", "edge-2:9100"]),
    (("instance=~edge",), []),  # anchored, as in Alertmanager: the whole value must match
    (("env=prod", "instance=~edge-.*"), ["edge-1:9100"]),  # repeatable: all must match
    (("env!=prod",), [e for e in DEFAULT if e != "edge-1:9100"]),  # a missing label reads as ""
    (("env!~prod|staging",), ["door-1", "cam-02", "cam-01", "cam-03", "fan-1"]),
    (("alertname=HostDown", "severity=critical"), ["edge-1:9100"]),
    (("rack=r7",), ["cam-01"]),  # a native record's metadata key
    (("zone=3",), ["cam-01"]),  # a number in the metadata compares as its text
    (("env=",), ["door-1", "cam-02", "cam-01", "cam-03", "fan-1"]),
])
def test_label_matchers_over_alertmanager_labels_and_metadata(noc, matchers, expected):
    args = [arg for m in matchers for arg in ("--label", m)]
    assert entities(noc, *args) == expected


def test_label_matchers_keep_the_limit_exact(noc):
    result = ok(noc("alert", "list", "--format", "json", "--label", "env!=prod", "--limit", "2"))
    assert [a["entity_id"] for a in json.loads(result.stdout)] == ["door-1", "cam-02"]
    assert result.stderr == "nocctl: showing 2 of 6 (--limit N, or --all)\n"


@pytest.mark.parametrize("matcher, message", [
    ("instance", "--label 'instance' is not a matcher; use KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX"),
    ("instance=~(", "--label 'instance=~(': '(' is not a regular expression"),
    ('ke"y=1', "is not a matcher"),
])
def test_a_bad_matcher_is_a_usage_error(noc, matcher, message):
    result = noc("alert", "list", "--label", matcher)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


@pytest.mark.parametrize("entity, expected", [
    ("cam-01", ["cam-01"]),
    ("device:cam-01", ["cam-01"]),
    ("edge-1:9100", ["edge-1:9100"]),  # an id with a colon
    ("instance:edge-1:9100", ["edge-1:9100"]),
    ("instance:cam-01", []),
    ("nothing", []),
])
def test_entity_filter(noc, entity, expected):
    assert entities(noc, "--entity", entity) == expected


@pytest.mark.parametrize("args, expected", [
    (("--since", "1h"), ["cam-02", "edge-1:9100", "edge-2:9100", "fan-1"]),
    (("--since", "-1h"), ["cam-02", "edge-1:9100", "edge-2:9100", "fan-1"]),
    (("--since", "60m"), ["cam-02", "edge-1:9100", "edge-2:9100", "fan-1"]),
    (("--since", "2h", "--until", "30m"), ["cam-01", "cam-03"]),  # [10:00, 11:30)
    (("--since", "1d"), DEFAULT),
    (("--since", "2h", "--until", "now"), ["cam-02", "edge-1:9100", "cam-01", "cam-03", "edge-2:9100", "fan-1"]),
    (("--since", "2026-03-01T17:15:00+05:30"), ["edge-1:9100", "edge-2:9100", "fan-1"]),  # ISO as before
])
def test_relative_times_count_back_from_noc_now(noc, args, expected):
    assert entities(noc, *args) == expected


def test_a_bad_time_is_a_usage_error_naming_the_accepted_forms(noc):
    result = noc("alert", "list", "--since", "yesterday")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "nocctl: error: --since 'yesterday' is not an ISO 8601 time; use ISO 8601 with an offset "
        "(2026-03-01T08:00:00+05:30), now, 2h / 30m / 1d / 45s / 1w ago (or -2h), +30m from now\n")
    naive = noc("alert", "list", "--until", "2026-03-01T10:00:00")
    assert naive.exit_code == 2 and "--until '2026-03-01T10:00:00' has no UTC offset; add one" in naive.stderr


def test_watch_piped_writes_one_json_array_a_line_per_refresh(noc):
    result = ok(noc("alert", "list", "--watch", "0.01", "--count", "3", "--limit", "2"))
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert [[a["entity_id"] for a in json.loads(line)] for line in lines] == [DEFAULT[:2]] * 3
    assert result.stderr == "nocctl: showing 2 of 7 (--limit N, or --all)\n"  # once: it did not change
    default_interval = ok(noc("alert", "list", "--watch", "--count", "1", "--severity", "low"))
    assert [[a["entity_id"] for a in json.loads(line)] for line in default_interval.stdout.splitlines()] == [["fan-1"]]


def test_watch_on_a_terminal_redraws_in_place(noc, monkeypatch):
    from nocctl.cli import status as status_cli

    monkeypatch.setattr(status_cli, "_isatty", lambda: True)
    sleeps: list[float] = []

    def interrupt_the_second_time(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_cli, "_sleep", interrupt_the_second_time)
    result = noc("alert", "list", "--watch", "--severity", "low")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.count(status_cli.CLEAR) == 2 and result.stdout.count("INITECH-GGN") == 2
    assert sleeps == [5.0, 5.0]
