"""The permission matrix (DESIGN §3 "People and RBAC", §5): for each alert, incident and audit
command, a person scoped to client A (ACME), to one site of A, to all clients, and with no
grants. A scoped person can neither see nor change client B's (GLOBEX's) alerts, incidents or
audit rows — exit 77 or "not found", never B's data — and listing totals never include B.
An action needs its capability and visibility of the object, on the backend under test."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pytest

from ingest_helpers import ORG, alert, ndjson, rows

PEOPLE = ("a_client", "a_site", "all_clients", "nobody")
# person -> [(capability, scope option...)]
GRANTS = {
    "a_client": [(cap, "--client", "ACME") for cap in
                 ("noc:view_client", "noc:ack_alerts", "noc:escalate", "noc:assign_incidents")],
    "a_site": [(cap, "--site", "ACME-BLR-WF") for cap in ("noc:view_assigned_sites", "noc:ack_alerts")],
    "all_clients": [(cap,) for cap in
                    ("noc:view_all_clients", "noc:ack_alerts", "noc:escalate", "noc:assign_incidents")],
    "nobody": [],
}
# added by the tests that need them
EXTRA_GRANTS = {
    "viewer": [("noc:view_client", "--client", "ACME")],  # sees ACME but may not act on it
    "acme_auditor": [("noc:audit_view", "--client", "ACME")],  # reads ACME's part of the audit log
    "site_auditor": [("noc:audit_view", "--site", "ACME-BLR-WF")],  # ... and one ACME site's
}

# label -> (site, client, entity, first seen); client-level alerts have no site
ALERTS = {
    "A_WF": ("ACME-BLR-WF", None, "wf-cam-01", "2026-03-01T10:00:00Z"),
    "A_WF_SPARE": ("ACME-BLR-WF", None, "wf-cam-02", "2026-03-01T11:00:00Z"),  # outside the correlation window
    "A_MYS": ("ACME-MYS", None, "mys-cam-01", "2026-03-01T10:01:00Z"),
    "A_ACME": (None, "ACME", "acme-vpn", "2026-03-01T10:02:00Z"),
    "B_WH1": ("GLOBEX-BOM-WH1", None, "wh1-cam-01", "2026-03-01T10:03:00Z"),
    "B_PNQ": ("GLOBEX-PNQ", None, "pnq-cam-01", "2026-03-01T10:04:00Z"),
    "B_GLOBEX": (None, "GLOBEX", "globex-vpn", "2026-03-01T10:05:00Z"),
    "C_GGN": ("INITECH-GGN", None, "ggn-cam-01", "2026-03-01T10:06:00Z"),
}
# incident label -> the alert it wraps (B_PNQ, A_WF_SPARE and C_GGN stay outside incidents)
INCIDENTS = {"IA_WF": "A_WF", "IA_MYS": "A_MYS", "IA_ACME": "A_ACME", "IB_WH1": "B_WH1", "IB_GLOBEX": "B_GLOBEX"}

VISIBLE_ALERTS = {
    "a_client": {"A_WF", "A_WF_SPARE", "A_MYS", "A_ACME"},
    "a_site": {"A_WF", "A_WF_SPARE"},  # neither ACME's client-level alert nor other ACME sites
    "all_clients": set(ALERTS),
    "nobody": set(),
}
VISIBLE_INCIDENTS = {
    person: {label for label, wrapped in INCIDENTS.items() if wrapped in seen}
    for person, seen in VISIBLE_ALERTS.items()
}
B_MARKERS = ("GLOBEX", "wh1-cam", "pnq-cam", "globex-vpn")  # what would betray client B's data

ALERT_MOVES = {  # command -> (capability, status after, audit action)
    "ack": ("noc:ack_alerts", "ACKNOWLEDGED", "ACKNOWLEDGE"),
    "escalate": ("noc:escalate", "ESCALATED", "ESCALATE"),
    "resolve": ("noc:ack_alerts", "RESOLVED", "RESOLVE"),
    "assign": ("noc:assign_incidents", "ASSIGNED", "ASSIGN"),
}
INCIDENT_MOVES = {
    "ack": ("noc:ack_alerts", "ACKNOWLEDGED", "INCIDENT_ACKNOWLEDGE"),
    "assign": ("noc:assign_incidents", "ASSIGNED", "INCIDENT_ASSIGN"),
    "start": ("noc:ack_alerts", "IN_PROGRESS", "INCIDENT_START"),
    "resolve": ("noc:ack_alerts", "RESOLVED", "INCIDENT_RESOLVE"),
    "close": ("noc:ack_alerts", "CLOSED", "INCIDENT_CLOSE"),
}
ASSIGNEE = "noc.lead"  # a person of examples/org.json


def holds(person: str, capability: str) -> bool:
    """Whether the person holds the capability over ACME-BLR-WF (every grant above covers it)."""
    return any(grant[0] == capability for grant in GRANTS[person])


@dataclass
class Noc:
    cli: object
    db_url: str
    alerts: dict[str, int]
    incidents: dict[str, int]
    people: dict[str, int]

    def run(self, person: str, *args: str):
        return self.cli("--as", person, *args)

    def alert_row(self, label: str) -> tuple:
        return rows(self.db_url, "SELECT * FROM alert WHERE id = :id", id=self.alerts[label])[0]

    def incident_row(self, label: str) -> tuple:
        return rows(self.db_url, "SELECT * FROM incident WHERE id = :id", id=self.incidents[label])[0]

    def audit_count(self) -> int:
        return rows(self.db_url, "SELECT count(*) FROM audit_log")[0][0]

    def last_audit(self) -> tuple:
        """(action, target type, target id, actor id) of the newest audit row."""
        return rows(self.db_url, "SELECT action, target_type, target_id, actor_id FROM audit_log"
                                 " ORDER BY id DESC LIMIT 1")[0]

    def links(self) -> set[tuple[int, int]]:
        return set(rows(self.db_url, "SELECT incident_id, alert_id FROM incident_alert"))

    def add_person(self, person: str, grants) -> None:
        assert self.cli("user", "add", person).exit_code == 0
        for grant in grants:
            result = self.cli("user", "grant", person, *grant)
            assert result.exit_code == 0, result.stderr
        self.people[person] = rows(self.db_url, "SELECT id FROM person WHERE username = :u", u=person)[0][0]


@pytest.fixture
def noc(admin_cli, db_url) -> Noc:
    """The example organisation; HIGH alerts (no automatic incident) at ACME sites, at ACME
    itself, at GLOBEX sites and GLOBEX itself and at an INITECH site; an incident by hand
    for five of them; the people of GRANTS."""
    cli = admin_cli
    assert cli("org", "import", str(ORG)).exit_code == 0
    records = [alert(entity=entity, at=at, site=site) if site else
               {**{k: v for k, v in alert(entity=entity, at=at).items() if k != "site"}, "client": client}
               for site, client, entity, at in ALERTS.values()]
    result = cli("ingest", "--json", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == len(ALERTS)
    by_entity = dict(rows(db_url, "SELECT entity_id, id FROM alert"))
    alerts = {label: by_entity[entity] for label, (_, _, entity, _) in ALERTS.items()}

    incidents = {}
    for label, wrapped in INCIDENTS.items():
        result = cli("incident", "create", "--title", f"incident of {wrapped}", "--alert", str(alerts[wrapped]))
        assert result.exit_code == 0, result.stderr
        incidents[label] = int(result.stdout)

    noc = Noc(cli, db_url, alerts, incidents, dict(rows(db_url, "SELECT username, id FROM person")))
    for person, grants in GRANTS.items():
        noc.add_person(person, grants)
    return noc


def assert_no_b_data(result) -> None:
    for marker in B_MARKERS:
        assert marker not in result.stdout and marker not in result.stderr, (marker, result.stdout, result.stderr)


def assert_refused(result, code: int, message: str) -> None:
    """A refusal: nothing on stdout, one `nocctl: error:` line starting with `message`."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith(f"nocctl: error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


# ---------------------------------------------------------------- alert list / show


@pytest.mark.parametrize("person", PEOPLE)
def test_alert_list_shows_exactly_the_alerts_in_scope(noc, person):
    result = noc.run(person, "alert", "list", "--format", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    listed = json.loads(result.stdout)
    expected = {noc.alerts[label] for label in VISIBLE_ALERTS[person]}
    assert {a["id"] for a in listed} == expected
    assert len(listed) == len(expected)  # the total, not just the set
    if person != "all_clients":
        assert all(a["client"] == "ACME" for a in listed)
        assert_no_b_data(result)
    if person == "a_site":
        assert {a["site"] for a in listed} == {"ACME-BLR-WF"}

    # listing totals: every format, and every filter naming B, counts none of B's alerts
    expected = len(VISIBLE_ALERTS[person])
    ndjson_out = noc.run(person, "alert", "list", "--format", "ndjson")
    assert ndjson_out.exit_code == 0 and len(ndjson_out.stdout.splitlines()) == expected
    csv_out = noc.run(person, "alert", "list", "--format", "csv")
    assert csv_out.exit_code == 0 and len(list(csv.DictReader(io.StringIO(csv_out.stdout)))) == expected
    b_count = 3 if person == "all_clients" else 0
    for option in (("--client", "GLOBEX"), ("--status", "NEW", "--client", "GLOBEX")):
        filtered = noc.run(person, "alert", "list", "--format", "json", *option)
        assert filtered.exit_code == 0, filtered.stderr
        assert len(json.loads(filtered.stdout)) == b_count
    site = noc.run(person, "alert", "list", "--format", "json", "--site", "GLOBEX-BOM-WH1")
    assert len(json.loads(site.stdout)) == (1 if person == "all_clients" else 0)
    if person != "all_clients":
        for result in (ndjson_out, csv_out):
            assert_no_b_data(result)


@pytest.mark.parametrize("person", PEOPLE)
def test_alert_show_follows_the_scope(noc, person):
    """B's alerts are "not found" (exit 3, nothing on stdout) for anyone scoped to A; A's
    client-level alert and other sites' alerts too for the site-scoped person."""
    for label in ("B_WH1", "B_GLOBEX"):
        alert_id = noc.alerts[label]
        result = noc.run(person, "alert", "show", str(alert_id), "--format", "json")
        if person == "all_clients":
            assert result.exit_code == 0 and json.loads(result.stdout)["client"] == "GLOBEX"
            continue
        assert_refused(result, 3, f"no alert {alert_id}")
        assert_no_b_data(result)

    for label in ("A_WF", "A_MYS", "A_ACME"):
        alert_id = noc.alerts[label]
        result = noc.run(person, "alert", "show", str(alert_id), "--format", "json")
        if label in VISIBLE_ALERTS[person]:
            assert result.exit_code == 0, result.stderr
            shown = json.loads(result.stdout)
            assert (shown["id"], shown["client"]) == (alert_id, "ACME")
            assert {m["id"] for m in shown["correlation_group"]} == {alert_id}
        else:
            assert_refused(result, 3, f"no alert {alert_id}")


# ---------------------------------------------------------------- alert moves


def move(noc: Noc, person: str, noun: str, command: str, label: str, moves: dict) -> None:
    """`nocctl --as PERSON NOUN COMMAND ID [noc.lead]` and what the person must see: done
    when they see the object and hold the capability; exit 77 naming the capability when
    they see it without the capability; exit 3 "no NOUN ID" when they cannot see it. A
    refusal changes neither the row nor the audit log."""
    capability, status, action = moves[command]
    ident = (noc.alerts if noun == "alert" else noc.incidents)[label]
    select_row = f"SELECT * FROM {noun} WHERE id = :id"
    before, audit_before = rows(noc.db_url, select_row, id=ident), noc.audit_count()
    result = noc.run(person, noun, command, str(ident), *((ASSIGNEE,) if command == "assign" else ()))
    sees = label in (VISIBLE_ALERTS[person] if noun == "alert" else VISIBLE_INCIDENTS[person])
    context = (person, noun, command, label, result)
    if sees and holds(person, capability):
        assert (result.exit_code, result.stdout, result.stderr) == (0, f"{noun} {ident}: {status}\n", ""), context
        assert rows(noc.db_url, f"SELECT status FROM {noun} WHERE id = :id", id=ident) == [(status,)], context
        assert noc.audit_count() == audit_before + 1, context
        assert noc.last_audit() == (action, noun, str(ident), noc.people[person]), context
        return
    if sees:
        assert_refused(result, 77, f"{person!r} lacks {capability} for {noun} {ident}")
        assert f"; an admin can run `nocctl user grant {person} {capability}" in result.stderr, context  # remedy
    else:
        assert_refused(result, 3, f"no {noun} {ident}")
        assert_no_b_data(result)
    assert rows(noc.db_url, select_row, id=ident) == before, context
    assert noc.audit_count() == audit_before, context


# An order in which every move is allowed whichever of the earlier ones were refused.
ALERT_SEQUENCE = ("escalate", "ack", "assign", "resolve")


@pytest.mark.parametrize("person", PEOPLE)
def test_alert_moves_on_a_and_b_alerts(noc, person):
    """B's alert first (only all_clients may touch it), then A's alert at the one site every
    scoped person sees."""
    for label in ("B_WH1", "A_WF"):
        for command in ALERT_SEQUENCE:
            move(noc, person, "alert", command, label, ALERT_MOVES)
    me, lead = noc.people[person], noc.people[ASSIGNEE]
    found = rows(noc.db_url, "SELECT status, acknowledged_by, assigned_to, escalation_level, resolved_by FROM alert"
                             " WHERE id = :id", id=noc.alerts["A_WF"])[0]
    assert found == {"a_client": ("RESOLVED", me, lead, 1, me), "a_site": ("RESOLVED", me, None, 0, me),
                     "all_clients": ("RESOLVED", me, lead, 1, me), "nobody": ("NEW", None, None, 0, None)}[person]
    if person != "all_clients":  # B's alert was never touched
        assert rows(noc.db_url, "SELECT status, acknowledged_by, escalation_level FROM alert WHERE id = :id",
                    id=noc.alerts["B_WH1"]) == [("NEW", None, 0)]


@pytest.mark.parametrize("person", ("a_client", "a_site"))
def test_alert_ack_of_a_and_b_ids_does_the_a_one_and_reports_the_b_one(noc, person):
    a_id, b_id = noc.alerts["A_WF"], noc.alerts["B_WH1"]
    before_b, audit_before = noc.alert_row("B_WH1"), noc.audit_count()
    result = noc.run(person, "alert", "ack", str(a_id), str(b_id))
    assert result.exit_code == 3
    assert result.stdout == f"alert {a_id}: ACKNOWLEDGED\n"
    assert result.stderr == f"nocctl: error: no alert {b_id}; see `nocctl alert list`\n"
    assert rows(noc.db_url, "SELECT status FROM alert WHERE id = :id", id=a_id) == [("ACKNOWLEDGED",)]
    assert noc.alert_row("B_WH1") == before_b
    assert noc.last_audit() == ("ACKNOWLEDGE", "alert", str(a_id), noc.people[person])
    assert noc.audit_count() == audit_before + 1


def test_alert_move_json_report_names_no_b_data(noc):
    a_id, b_id = noc.alerts["A_MYS"], noc.alerts["B_PNQ"]
    result = noc.run("a_client", "alert", "resolve", str(b_id), str(a_id), "--note", "fixed", "--format", "json")
    assert result.exit_code == 3
    assert json.loads(result.stdout) == [
        {"target": str(b_id), "id": None, "ok": False, "status": None,
         "error": f"no alert {b_id}; see `nocctl alert list`"},
        {"target": str(a_id), "id": a_id, "ok": True, "status": "RESOLVED", "error": None},
    ]
    assert_no_b_data(result)
    assert rows(noc.db_url, "SELECT status FROM alert WHERE id = :id", id=b_id) == [("NEW",)]


def test_several_ids_exit_with_the_first_failure(noc):
    """a_site sees A_WF but may not escalate it (77) and does not see B_WH1 (3)."""
    a_id, b_id = noc.alerts["A_WF"], noc.alerts["B_WH1"]
    snapshot = rows(noc.db_url, "SELECT * FROM alert ORDER BY id")
    audit_before = noc.audit_count()
    first_a = noc.run("a_site", "alert", "escalate", str(a_id), str(b_id))
    assert (first_a.exit_code, first_a.stdout) == (77, "")
    assert first_a.stderr.splitlines()[0].startswith(f"nocctl: error: 'a_site' lacks noc:escalate for alert {a_id}")
    assert first_a.stderr.splitlines()[1] == f"nocctl: error: no alert {b_id}; see `nocctl alert list`"
    first_b = noc.run("a_site", "alert", "escalate", str(b_id), str(a_id))
    assert (first_b.exit_code, first_b.stdout) == (3, "")
    assert first_b.stderr.splitlines()[0] == f"nocctl: error: no alert {b_id}; see `nocctl alert list`"
    assert rows(noc.db_url, "SELECT * FROM alert ORDER BY id") == snapshot
    assert noc.audit_count() == audit_before


def test_dedup_key_of_a_b_alert_is_not_found(noc):
    (key,) = rows(noc.db_url, "SELECT dedup_key FROM alert WHERE id = :id", id=noc.alerts["B_WH1"])[0]
    before, audit_before = noc.alert_row("B_WH1"), noc.audit_count()
    result = noc.run("a_client", "alert", "ack", "--dedup-key", key)
    assert_refused(result, 3, f"no alert {key}")
    assert noc.alert_row("B_WH1") == before and noc.audit_count() == audit_before


def test_seeing_without_ack_alerts_is_77_with_the_capability_in_the_remedy(noc):
    """`viewer` sees ACME (noc:view_client) but holds no other capability."""
    noc.add_person("viewer", EXTRA_GRANTS["viewer"])
    audit_before = noc.audit_count()
    alert_before, incident_before = noc.alert_row("A_WF"), noc.incident_row("IA_WF")
    assert noc.run("viewer", "alert", "show", str(noc.alerts["A_WF"])).exit_code == 0
    for args, noun, ident in ((("alert", "ack"), "alert", noc.alerts["A_WF"]),
                              (("alert", "resolve"), "alert", noc.alerts["A_WF"]),
                              (("incident", "ack"), "incident", noc.incidents["IA_WF"]),
                              (("incident", "close"), "incident", noc.incidents["IA_WF"])):
        result = noc.run("viewer", *args, str(ident))
        assert_refused(result, 77, f"'viewer' lacks noc:ack_alerts for {noun} {ident}")
        assert "`nocctl user grant viewer noc:ack_alerts" in result.stderr  # the remedy names it
    add = noc.run("viewer", "incident", "add-alert", str(noc.incidents["IA_WF"]), str(noc.alerts["A_WF_SPARE"]))
    assert_refused(add, 77, f"'viewer' lacks noc:ack_alerts for incident {noc.incidents['IA_WF']}")
    assert "`nocctl user grant viewer noc:ack_alerts" in add.stderr
    assert noc.alert_row("A_WF") == alert_before and noc.incident_row("IA_WF") == incident_before
    assert noc.audit_count() == audit_before


# ---------------------------------------------------------------- incidents


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_list_shows_exactly_the_incidents_in_scope(noc, person):
    result = noc.run(person, "incident", "list", "--format", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    listed = json.loads(result.stdout)
    expected = {noc.incidents[label] for label in VISIBLE_INCIDENTS[person]}
    assert {i["id"] for i in listed} == expected and len(listed) == len(expected)
    if person != "all_clients":
        assert all(i["client"] == "ACME" for i in listed)
        assert_no_b_data(result)
    b_only = noc.run(person, "incident", "list", "--format", "json", "--client", "GLOBEX")
    assert len(json.loads(b_only.stdout)) == (2 if person == "all_clients" else 0)
    ndjson_out = noc.run(person, "incident", "list", "--format", "ndjson", "--open")
    assert len(ndjson_out.stdout.splitlines()) == len(expected)


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_show_follows_the_scope(noc, person):
    for label in INCIDENTS:
        incident_id = noc.incidents[label]
        result = noc.run(person, "incident", "show", str(incident_id), "--format", "json")
        if label in VISIBLE_INCIDENTS[person]:
            assert result.exit_code == 0, result.stderr
            shown = json.loads(result.stdout)
            assert [a["id"] for a in shown["linked_alerts"]] == [noc.alerts[INCIDENTS[label]]]
        else:
            assert_refused(result, 3, f"no incident {incident_id}")
            assert_no_b_data(result)


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_alert_count_never_includes_b_alerts(noc, person):
    """An admin links B's alert into A's incident: a person scoped to A still sees one alert
    in it, in the listing's `alerts` total as in `show`."""
    ia = noc.incidents["IA_WF"]
    assert noc.cli("incident", "add-alert", str(ia), str(noc.alerts["B_PNQ"])).exit_code == 0
    if person == "nobody":
        return
    expected = [noc.alerts["A_WF"]] + ([noc.alerts["B_PNQ"]] if person == "all_clients" else [])
    listed = {i["id"]: i for i in json.loads(noc.run(person, "incident", "list", "--format", "json").stdout)}
    shown = noc.run(person, "incident", "show", str(ia), "--format", "json")
    assert sorted(a["id"] for a in json.loads(shown.stdout)["linked_alerts"]) == sorted(expected)
    assert listed[ia]["alerts"] == json.loads(shown.stdout)["alerts"] == len(expected)
    if person != "all_clients":
        assert_no_b_data(shown)


INCIDENT_SEQUENCE = ("ack", "assign", "start", "resolve", "close")


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_moves_on_a_and_b_incidents(noc, person):
    for label in ("IB_WH1", "IA_WF"):
        for command in INCIDENT_SEQUENCE:
            move(noc, person, "incident", command, label, INCIDENT_MOVES)
    found = rows(noc.db_url, "SELECT status, assigned_to, acknowledged_by FROM incident WHERE id = :id",
                 id=noc.incidents["IA_WF"])[0]
    me, lead = noc.people[person], noc.people[ASSIGNEE]
    assert found == {"a_client": ("CLOSED", lead, me), "a_site": ("CLOSED", None, me),
                     "all_clients": ("CLOSED", lead, me), "nobody": ("NEW", None, None)}[person]


def test_incident_ack_of_a_and_b_ids_does_the_a_one_and_reports_the_b_one(noc):
    a_id, b_id = noc.incidents["IA_MYS"], noc.incidents["IB_GLOBEX"]
    before_b, audit_before = noc.incident_row("IB_GLOBEX"), noc.audit_count()
    result = noc.run("a_client", "incident", "ack", str(b_id), str(a_id))
    assert result.exit_code == 3
    assert result.stdout == f"incident {a_id}: ACKNOWLEDGED\n"
    assert result.stderr == f"nocctl: error: no incident {b_id}; see `nocctl incident list`\n"
    assert noc.incident_row("IB_GLOBEX") == before_b
    assert rows(noc.db_url, "SELECT status FROM incident WHERE id = :id", id=a_id) == [("ACKNOWLEDGED",)]
    assert noc.audit_count() == audit_before + 1
    assert noc.last_audit() == ("INCIDENT_ACKNOWLEDGE", "incident", str(a_id), noc.people["a_client"])


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_add_alert_across_clients(noc, person):
    ia, ib = noc.incidents["IA_WF"], noc.incidents["IB_WH1"]
    spare, b_alert = noc.alerts["A_WF_SPARE"], noc.alerts["B_PNQ"]
    scoped = person != "all_clients"

    # B's alert into A's incident
    links, audit_before = noc.links(), noc.audit_count()
    result = noc.run(person, "incident", "add-alert", str(ia), str(b_alert))
    if person == "nobody":
        assert_refused(result, 3, f"no incident {ia}")
    elif scoped:
        assert_refused(result, 3, f"no alert {b_alert}")
    else:
        assert result.exit_code == 0, result.stderr
        assert noc.links() == links | {(ia, b_alert)}
    if scoped:
        assert_no_b_data(result)
        assert noc.links() == links and noc.audit_count() == audit_before

    # A's alert into B's incident
    links, audit_before = noc.links(), noc.audit_count()
    result = noc.run(person, "incident", "add-alert", str(ib), str(spare))
    if scoped:
        assert_refused(result, 3, f"no incident {ib}")
        assert_no_b_data(result)
        assert noc.links() == links and noc.audit_count() == audit_before
    else:
        assert result.exit_code == 0 and noc.links() == links | {(ib, spare)}

    # A's alert into A's incident
    links, audit_before = noc.links(), noc.audit_count()
    result = noc.run(person, "incident", "add-alert", str(ia), str(spare), "--format", "json")
    if person == "nobody":
        assert_refused(result, 3, f"no incident {ia}")
        assert noc.links() == links and noc.audit_count() == audit_before
    else:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == {"incident": ia, "linked": [spare], "already_linked": []}
        assert noc.links() == links | {(ia, spare)}
        assert noc.audit_count() == audit_before + 1
        assert noc.last_audit() == ("INCIDENT_ADD_ALERT", "incident", str(ia), noc.people[person])


@pytest.mark.parametrize("person", PEOPLE)
def test_incident_create_for_b_is_refused(noc, person):
    count = rows(noc.db_url, "SELECT count(*) FROM incident")[0][0]
    audit_before = noc.audit_count()
    b_alert = noc.alerts["B_PNQ"]
    with_b_alert = noc.run(person, "incident", "create", "--title", "t", "--alert", str(b_alert))
    for_globex = noc.run(person, "incident", "create", "--title", "t", "--client", "GLOBEX", "--severity", "HIGH")
    if person == "all_clients":
        assert with_b_alert.exit_code == 0 and for_globex.exit_code == 0
        assert rows(noc.db_url, "SELECT count(*) FROM incident")[0][0] == count + 2
        return
    assert_refused(with_b_alert, 3, f"no alert {b_alert}")
    assert_refused(for_globex, 3, "no client 'GLOBEX'")  # hidden: not found, never 77 (no existence oracle)
    assert_no_b_data(with_b_alert)  # (the other one only repeats the code it was given)
    assert rows(noc.db_url, "SELECT count(*) FROM incident")[0][0] == count
    assert noc.audit_count() == audit_before


# ---------------------------------------------------------------- audit log


@pytest.fixture
def audited(noc) -> Noc:
    """Audit rows about both clients: the incidents of the fixture, and moves by the admin on
    A and B alerts and incidents (site-level and client-level)."""
    for args in (("alert", "ack", str(noc.alerts["A_WF"]), str(noc.alerts["B_WH1"]), str(noc.alerts["A_ACME"]),
                  str(noc.alerts["B_GLOBEX"])),
                 ("incident", "start", str(noc.incidents["IA_MYS"]), str(noc.incidents["IB_WH1"]))):
        assert noc.cli(*args).exit_code == 0
    return noc


def unit_id(noc: Noc, code: str) -> int:
    return rows(noc.db_url, "SELECT id FROM business_unit WHERE code = :code", code=code)[0][0]


@pytest.mark.parametrize("auditor", ("acme_auditor", "site_auditor"))
def test_audit_list_of_a_scoped_auditor_never_shows_b_rows(audited, auditor):
    noc = audited
    noc.add_person(auditor, EXTRA_GRANTS[auditor])
    result = noc.run(auditor, "audit", "list", "--format", "json", "--limit", "1000")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    listed = json.loads(result.stdout)
    if auditor == "acme_auditor":
        expected = rows(noc.db_url, "SELECT id FROM audit_log WHERE client_id = :c", c=unit_id(noc, "ACME"))
    else:
        expected = rows(noc.db_url, "SELECT id FROM audit_log WHERE site_id = :s", s=unit_id(noc, "ACME-BLR-WF"))
    assert sorted(r["id"] for r in listed) == sorted(e[0] for e in expected) and len(listed) == len(expected)
    assert listed and all(r["client"] == "ACME" for r in listed)
    assert_no_b_data(result)
    # the incidents of the fixture and the admin's acks of A alerts are in it
    actions = {(r["action"], r["target_id"]) for r in listed}
    assert ("ACKNOWLEDGE", str(noc.alerts["A_WF"])) in actions
    assert ("INCIDENT_CREATE", str(noc.incidents["IA_WF"])) in actions
    # asking for B's rows by target gives nothing
    for target in (f"alert:{noc.alerts['B_WH1']}", f"incident:{noc.incidents['IB_WH1']}",
                   f"alert:{noc.alerts['B_GLOBEX']}"):
        only = noc.run(auditor, "audit", "list", "--format", "json", "--target", target)
        assert (only.exit_code, json.loads(only.stdout)) == (0, [])
    # and the total of a csv listing matches
    as_csv = noc.run(auditor, "audit", "list", "--format", "csv", "--limit", "1000")
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == len(expected)


def test_audit_list_without_audit_view_is_77_and_verify_needs_it_tenant_wide(audited):
    for person in PEOPLE:  # none of them holds noc:audit_view
        result = audited.run(person, "audit", "list", "--format", "json")
        assert_refused(result, 77, f"{person!r} lacks noc:audit_view")
        assert f"nocctl user grant {person} noc:audit_view" in result.stderr
    audited.add_person("acme_auditor", EXTRA_GRANTS["acme_auditor"])
    result = audited.run("acme_auditor", "audit", "verify")
    assert_refused(result, 77, "'acme_auditor' lacks noc:audit_view tenant-wide")

