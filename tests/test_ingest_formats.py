"""Input formats of `nocctl ingest` (DESIGN §4): native records, Alertmanager (webhook v4 and
the /api/v2/alerts array) and PagerDuty Events v2, each mapped onto one `Record`. Pure
functions: no database."""
from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from nocctl.services.ingest import formats
from nocctl.services.ingest.formats import Record, RecordError, am_fingerprint, detect, native, records_with_items


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def records(document, fmt: str = "auto") -> list[Record | RecordError]:
    return [record for _, record in records_with_items(document, fmt)]


def only(document, fmt: str = "auto") -> Record:
    (record,) = records(document, fmt)
    assert isinstance(record, Record), record
    return record


def rejected(document, fmt: str = "auto") -> str:
    (record,) = records(document, fmt)
    assert isinstance(record, RecordError), f"expected a RecordError, got {record!r}"
    return str(record)


# ---------------------------------------------------------------- Alertmanager fingerprint

def test_fingerprint_matches_prometheus_test_vector():
    # prometheus/common model TestMetricToFingerprint: 5799056148416392346 == 0x507a62d79ee76c9a
    assert am_fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == "507a62d79ee76c9a"


def test_fingerprint_of_empty_label_set_is_fnv1a_offset_basis():
    assert am_fingerprint({}) == "cbf29ce484222325"


def test_fingerprint_ignores_label_order_but_not_values():
    a = am_fingerprint({"alertname": "HostDown", "instance": "db1:9100"})
    assert a == am_fingerprint({"instance": "db1:9100", "alertname": "HostDown"})
    assert a != am_fingerprint({"alertname": "HostDown", "instance": "db2:9100"})
    assert len(a) == 16 and int(a, 16) >= 0


# ---------------------------------------------------------------- Alertmanager webhook (version 4)

WEBHOOK = {
    "version": "4",
    "groupKey": '{}/{severity=~"critical|warning"}:{alertname="HostDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "noc-webhook",
    "groupLabels": {"alertname": "HostDown"},
    "commonLabels": {"alertname": "HostDown", "client": "ACME", "job": "node"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.net:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HostDown", "severity": "critical", "instance": "db1.acme.net:9100",
                       "site": "ACME-BLR", "client": "ACME", "job": "node"},
            "annotations": {"summary": "db1 is down", "description": "node_exporter on db1 unreachable for 5m"},
            "startsAt": "2026-03-01T08:00:00.123+05:30",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up%3D%3D0",
            "fingerprint": "c0ffee00c0ffee00",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "severity": "warning", "instance": "fs2.acme.net:9100",
                       "site": "ACME-PUN", "client": "ACME", "job": "node"},
            "annotations": {"description": "/var is 97% full"},
            "startsAt": "2026-03-01T06:00:00Z",
            "endsAt": "2026-03-01T07:45:30Z",
            "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=disk",
            "fingerprint": "0123456789abcdef",
        },
    ],
}


def test_webhook_is_detected_and_each_alert_becomes_one_record():
    assert detect(WEBHOOK) == "alertmanager"
    pairs = list(records_with_items(WEBHOOK))
    assert len(pairs) == 2
    # each record comes with the alert it was made from (kept as the raw text of a reject)
    assert [item for item, _ in pairs] == WEBHOOK["alerts"]
    assert all(isinstance(record, Record) for _, record in pairs)


def test_webhook_firing_alert_mapping():
    firing = records(WEBHOOK)[0]
    assert firing.action == "trigger"
    assert firing.alert_type == "HOST_DOWN"
    assert firing.severity == "CRITICAL"
    assert firing.client == "ACME"
    assert firing.site == "ACME-BLR"
    assert firing.entity_id == "db1.acme.net:9100"
    assert firing.message == "db1 is down"  # summary wins over description
    assert firing.dedup_key == "am:c0ffee00c0ffee00"
    assert firing.occurred_at == utc("2026-03-01T02:30:00.123+00:00")  # startsAt, in UTC
    assert firing.occurred_at.utcoffset().total_seconds() == 0
    assert firing.source == "alertmanager"
    assert firing.metadata["labels"] == WEBHOOK["alerts"][0]["labels"]
    assert firing.metadata["annotations"] == WEBHOOK["alerts"][0]["annotations"]
    assert firing.metadata["generatorURL"] == WEBHOOK["alerts"][0]["generatorURL"]


def test_webhook_resolved_alert_is_a_resolve_at_ends_at():
    resolved = records(WEBHOOK)[1]
    assert resolved.action == "resolve"
    assert resolved.occurred_at == utc("2026-03-01T07:45:30+00:00")
    assert resolved.alert_type == "DISK_FULL"
    assert resolved.severity == "MEDIUM"
    assert resolved.site == "ACME-PUN"
    assert resolved.dedup_key == "am:0123456789abcdef"
    assert resolved.message == "/var is 97% full"  # no summary: description


def test_webhook_group_status_applies_when_an_alert_has_none():
    payload = copy.deepcopy(WEBHOOK)
    payload["status"] = "resolved"
    for alert in payload["alerts"]:
        del alert["status"]
    assert [r.action for r in records(payload)] == ["resolve", "resolve"]


def test_webhook_fingerprint_is_computed_when_absent():
    payload = copy.deepcopy(WEBHOOK)
    del payload["alerts"][0]["fingerprint"]
    record = records(payload)[0]
    assert record.dedup_key == "am:" + am_fingerprint(payload["alerts"][0]["labels"])
    # and the computed key is stable from one delivery to the next
    assert records(copy.deepcopy(payload))[0].dedup_key == record.dedup_key


def am_alert(**labels) -> dict:
    return {"status": "firing", "labels": {"alertname": "HostDown", **labels},
            "annotations": {}, "startsAt": "2026-03-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}


def webhook_of(*alerts) -> dict:
    return {"version": "4", "status": "firing", "receiver": "noc", "groupKey": "{}", "alerts": list(alerts)}


@pytest.mark.parametrize("label, expected", [
    ("critical", "CRITICAL"), ("CRITICAL", "CRITICAL"),
    ("high", "HIGH"), ("error", "HIGH"), ("major", "HIGH"),
    ("warning", "MEDIUM"), ("minor", "MEDIUM"),
    ("low", "LOW"),
    ("info", "INFO"), ("none", "INFO"),
    ("page", "MEDIUM"),  # unknown → default
    (None, "MEDIUM"),  # no severity label → default
])
def test_alertmanager_severity_mapping(label, expected):
    alert = am_alert() if label is None else am_alert(severity=label)
    assert only(webhook_of(alert)).severity == expected


@pytest.mark.parametrize("alertname, expected", [
    ("HostDown", "HOST_DOWN"),
    ("KubePodCrashLooping", "KUBE_POD_CRASH_LOOPING"),
    ("HTTPErrorRateHigh", "HTTP_ERROR_RATE_HIGH"),
    ("node-exporter down", "NODE_EXPORTER_DOWN"),
    ("Watchdog", "WATCHDOG"),
    ("DEVICE_OFFLINE", "DEVICE_OFFLINE"),
])
def test_alertmanager_alertname_becomes_upper_snake(alertname, expected):
    assert only(webhook_of(am_alert(alertname=alertname))).alert_type == expected


def test_alertmanager_alert_type_label_wins_over_alertname():
    record = only(webhook_of(am_alert(alert_type="SYNC_DEGRADED")))
    assert record.alert_type == "SYNC_DEGRADED"


def test_alertmanager_message_falls_back_to_alertname_and_no_instance_means_no_entity():
    record = only(webhook_of(am_alert()))
    assert record.message == "HostDown"
    assert record.entity_id is None
    assert record.client is None and record.site is None  # left to --client/--site


def test_alertmanager_bad_alert_does_not_hide_the_good_one():
    bad = {"status": "firing", "labels": {"severity": "critical"}, "startsAt": "2026-03-01T08:00:00Z"}
    good = am_alert(site="S1")
    out = list(records_with_items(webhook_of(bad, good)))
    assert out[0][0] is bad and isinstance(out[0][1], RecordError)
    assert "alertname" in str(out[0][1])
    assert out[1][0] is good and isinstance(out[1][1], Record) and out[1][1].site == "S1"


@pytest.mark.parametrize("alert, reason", [
    ({"status": "firing", "labels": {"alertname": "X", "port": 9100}}, "labels"),
    ({"status": "firing", "labels": ["alertname"]}, "labels"),
    ({"status": "firing", "labels": {"alertname": "X"}, "annotations": {"summary": {"text": "x"}}}, "annotations"),
    ({"status": "firing", "labels": {"alertname": "X"}, "startsAt": "yesterday"}, "startsAt"),
    ({"status": "firing", "labels": {"alertname": "X"}, "fingerprint": 12}, "fingerprint"),
    ("HostDown", "object"),
])
def test_alertmanager_bad_alerts_are_record_errors(alert, reason):
    assert reason in rejected(webhook_of(alert))


# ---------------------------------------------------------------- Alertmanager /api/v2/alerts

API_V2 = [
    {
        "annotations": {"summary": "db1 is down"},
        "endsAt": "2026-03-01T08:09:00.000Z",
        "fingerprint": "6f1a2b3c4d5e6f70",
        "receivers": [{"name": "noc-webhook"}],
        "startsAt": "2026-03-01T08:00:00.000Z",
        "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
        "updatedAt": "2026-03-01T08:05:00.000Z",
        "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up%3D%3D0",
        "labels": {"alertname": "HostDown", "instance": "db1.acme.net:9100", "severity": "error",
                   "site": "ACME-BLR", "client": "ACME"},
    },
    {
        "annotations": {},
        "endsAt": "2026-03-01T09:09:00.000Z",
        "fingerprint": "00000000000000aa",
        "receivers": [{"name": "noc-webhook"}],
        "startsAt": "2026-03-01T09:00:00.000Z",
        "status": {"inhibitedBy": [], "silencedBy": ["b1d3"], "state": "suppressed"},
        "updatedAt": "2026-03-01T09:05:00.000Z",
        "labels": {"alertname": "TargetMissing", "severity": "info"},
    },
]


def test_api_v2_alerts_are_detected_one_by_one():
    for element in API_V2:
        assert detect(element) == "alertmanager"


def test_api_v2_alerts_map_as_triggers_at_starts_at():
    out = records(API_V2)
    assert all(isinstance(r, Record) for r in out)
    first, second = out
    assert first.action == "trigger"  # status is an object, not "resolved": still firing
    assert first.occurred_at == utc("2026-03-01T08:00:00+00:00")  # startsAt, not endsAt
    assert first.alert_type == "HOST_DOWN"
    assert first.severity == "HIGH"
    assert first.entity_id == "db1.acme.net:9100"
    assert (first.client, first.site) == ("ACME", "ACME-BLR")
    assert first.dedup_key == "am:6f1a2b3c4d5e6f70"
    assert first.message == "db1 is down"
    assert second.action == "trigger" and second.occurred_at == utc("2026-03-01T09:00:00+00:00")
    assert (second.alert_type, second.severity, second.message) == ("TARGET_MISSING", "INFO", "TargetMissing")


# ---------------------------------------------------------------- PagerDuty Events v2

PD_TRIGGER = {
    "routing_key": "R0123456789abcdef0123456789abcde",
    "event_action": "trigger",
    "dedup_key": "srv01/cpu",
    "payload": {
        "summary": "CPU on srv01 is above 95%",
        "timestamp": "2026-03-01T08:42:58.315+0000",
        "source": "srv01.acme.net",
        "severity": "critical",
        "component": "cpu",
        "group": "ACME-BLR",
        "class": "high cpu",
        "custom_details": {"load_1m": 17.2, "client": "ACME"},
    },
    "links": [{"href": "https://grafana.example.net/d/cpu", "text": "CPU dashboard"}],
}


def test_pagerduty_trigger_mapping():
    assert detect(PD_TRIGGER) == "pagerduty"
    record = only(PD_TRIGGER)
    assert record.action == "trigger"
    assert record.dedup_key == "srv01/cpu"
    assert record.message == "CPU on srv01 is above 95%"
    assert record.severity == "CRITICAL"
    assert record.entity_id == "srv01.acme.net"
    assert record.alert_type == "HIGH_CPU"
    assert record.occurred_at == utc("2026-03-01T08:42:58.315+00:00")
    assert record.client == "ACME"
    assert record.site == "ACME-BLR"  # no custom_details.site: payload.group
    assert record.source == "pagerduty"
    assert record.metadata["custom_details"]["load_1m"] == 17.2


def test_pagerduty_custom_details_site_wins_over_group():
    event = copy.deepcopy(PD_TRIGGER)
    event["payload"]["custom_details"]["site"] = "ACME-PUN"
    assert only(event).site == "ACME-PUN"


@pytest.mark.parametrize("severity, expected", [
    ("critical", "CRITICAL"), ("error", "HIGH"), ("warning", "MEDIUM"), ("info", "INFO"),
])
def test_pagerduty_severity_mapping(severity, expected):
    event = copy.deepcopy(PD_TRIGGER)
    event["payload"]["severity"] = severity
    assert only(event).severity == expected


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_need_only_dedup_key(action):
    event = {"routing_key": "R0123456789abcdef0123456789abcde", "event_action": action, "dedup_key": "srv01/cpu"}
    assert detect(event) == "pagerduty"
    record = only(event)
    assert (record.action, record.dedup_key) == (action, "srv01/cpu")


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_without_dedup_key_are_rejected(action):
    reason = rejected({"routing_key": "R0123456789abcdef0123456789abcde", "event_action": action})
    assert "dedup_key" in reason


@pytest.mark.parametrize("change, reason", [
    (lambda e: e["payload"].update(severity="fatal"), "severity"),
    (lambda e: e["payload"].pop("severity"), "severity"),
    (lambda e: e["payload"].pop("summary"), "summary"),
    (lambda e: e.update(event_action="snooze"), "event_action"),
    (lambda e: e["payload"].update(timestamp="2026-03-01 08:42"), "timestamp"),
    (lambda e: e.update(payload="CPU high"), "payload"),
])
def test_pagerduty_bad_trigger_is_a_record_error(change, reason):
    event = copy.deepcopy(PD_TRIGGER)
    change(event)
    assert reason in rejected(event)


# ---------------------------------------------------------------- native records

MINIMAL = {"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "Device T-17 offline", "site": "ACME-BLR"}

FULL = {
    "alert_type": "GEOFENCE_BREACH",
    "severity": "CRITICAL",
    "message": "Guard left the geofence",
    "client": "ACME",
    "site": "ACME-BLR",
    "entity_type": "device",
    "entity_id": "T-17",
    "metadata": {"lat": 12.97, "lon": 77.59},
    "occurred_at": "2026-03-01T13:30:00+05:30",
    "action": "trigger",
    "dedup_key": "geo-T-17",
    "source": "tracker",
    "event_id": "evt-0001",
}


def test_native_minimal_record():
    assert detect(MINIMAL) == "native"
    record = only(MINIMAL)
    assert record == Record("trigger", "DEVICE_OFFLINE", "HIGH", "Device T-17 offline", None, "ACME-BLR",
                            None, None, None, None, None, None, None)


def test_native_full_record():
    record = only(FULL)
    assert record.action == "trigger"
    assert (record.alert_type, record.severity, record.message) == ("GEOFENCE_BREACH", "CRITICAL",
                                                                     "Guard left the geofence")
    assert (record.client, record.site) == ("ACME", "ACME-BLR")
    assert (record.entity_type, record.entity_id) == ("device", "T-17")
    assert record.metadata == {"lat": 12.97, "lon": 77.59}
    assert record.occurred_at == utc("2026-03-01T08:00:00+00:00")
    assert (record.dedup_key, record.source, record.event_id) == ("geo-T-17", "tracker", "evt-0001")


def test_native_lowercase_severity_is_accepted():
    assert only({**MINIMAL, "severity": "critical"}).severity == "CRITICAL"


def test_native_integer_identifiers_become_strings():
    record = only({**MINIMAL, "entity_id": 4711, "event_id": 99})
    assert record.entity_id == "4711" and record.event_id == "99"


def test_native_camel_case_type_is_converted():
    assert only({**MINIMAL, "alert_type": "HostDown"}).alert_type == "HOST_DOWN"


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
def test_native_resolve_or_acknowledge_with_only_dedup_key(action):
    record = only({"action": action, "dedup_key": "geo-T-17", "occurred_at": "2026-03-01T09:00:00Z"})
    assert (record.action, record.dedup_key) == (action, "geo-T-17")
    assert record.alert_type is None and record.severity is None and record.message is None
    assert record.occurred_at == utc("2026-03-01T09:00:00+00:00")


@pytest.mark.parametrize("document, reason", [
    (["DEVICE_OFFLINE", "HIGH"], "object"),
    ("DEVICE_OFFLINE", "object"),
    (42, "object"),
    (None, "object"),
    ({**MINIMAL, "severty": "HIGH"}, "severty"),  # a typo must not lose data silently
    ({k: v for k, v in MINIMAL.items() if k != "alert_type"}, "alert_type"),
    ({k: v for k, v in MINIMAL.items() if k != "severity"}, "severity"),
    ({k: v for k, v in MINIMAL.items() if k != "message"}, "message"),
    ({**MINIMAL, "message": "   "}, "message"),
    ({**MINIMAL, "severity": 5}, "severity"),
    ({**MINIMAL, "severity": ["HIGH"]}, "severity"),
    ({**MINIMAL, "severity": {"level": "HIGH"}}, "severity"),
    ({**MINIMAL, "severity": "URGENT"}, "severity"),
    ({**MINIMAL, "message": {}}, "message"),
    ({**MINIMAL, "metadata": "x"}, "metadata"),
    ({**MINIMAL, "entity_id": [1]}, "entity_id"),
    ({**MINIMAL, "event_id": True}, "event_id"),
    ({**MINIMAL, "site": 12}, "site"),
    ({**MINIMAL, "action": "close"}, "action"),
    ({**MINIMAL, "action": 1}, "action"),
    ({**MINIMAL, "occurred_at": "2026-03-01T08:00:00"}, "offset"),
    ({**MINIMAL, "occurred_at": "last tuesday"}, "occurred_at"),
    ({**MINIMAL, "occurred_at": 1772352000}, "occurred_at"),
    ({**MINIMAL, "alert_type": "!!!"}, "alert_type"),
    ({**MINIMAL, "alert_type": "404 not found"}, "alert_type"),
    ({**MINIMAL, "alert_type": "X" * 65}, "alert_type"),
    ({"action": "resolve"}, "alert_type"),  # neither dedup_key nor a type to build one from
])
def test_native_bad_records_are_record_errors_with_a_reason(document, reason):
    with pytest.raises(RecordError) as caught:
        native(document)
    assert reason in str(caught.value)
    if not isinstance(document, list):  # (a list is an array of records, split by records_with_items)
        assert reason in rejected(document, "native")


def test_native_unknown_key_error_names_the_key():
    message = rejected({**MINIMAL, "severty": "HIGH", "sight": "X"})
    assert "severty" in message and "sight" in message


# ---------------------------------------------------------------- records_with_items and --format

def test_mixed_array_yields_every_record_with_its_item():
    bad_native = {**MINIMAL, "severty": "HIGH"}
    array = [MINIMAL, bad_native, PD_TRIGGER, "junk", API_V2[0], {**MINIMAL, "severity": 5}, FULL]
    out = list(records_with_items(array))
    assert [item for item, _ in out] == array
    kinds = [type(record).__name__ for _, record in out]
    assert kinds == ["Record", "RecordError", "Record", "RecordError", "Record", "RecordError", "Record"]
    assert [r.source for _, r in out if isinstance(r, Record)] == [None, "pagerduty", "alertmanager", "tracker"]


def test_webhook_inside_an_array_is_expanded():
    out = records([MINIMAL, WEBHOOK])
    assert len(out) == 3 and all(isinstance(r, Record) for r in out)


def test_forcing_native_on_an_alertmanager_payload_gives_record_errors_not_a_crash():
    out = list(records_with_items(WEBHOOK, "native"))
    assert len(out) == 1
    item, error = out[0]
    assert item is WEBHOOK and isinstance(error, RecordError)
    assert "unknown field" in str(error)
    out = records(API_V2, "native")
    assert len(out) == 2 and all(isinstance(r, RecordError) for r in out)


def test_forcing_other_formats_on_the_wrong_input_gives_record_errors():
    assert isinstance(records(MINIMAL, "alertmanager")[0], RecordError)
    assert isinstance(records(MINIMAL, "pagerduty")[0], RecordError)
    assert isinstance(records(PD_TRIGGER, "alertmanager")[0], RecordError)
    assert isinstance(records(WEBHOOK["alerts"][0], "pagerduty")[0], RecordError)
    assert isinstance(records("x", "alertmanager")[0], RecordError)
    assert isinstance(records(5, "pagerduty")[0], RecordError)


def test_forcing_the_right_format_maps_like_auto():
    assert records(WEBHOOK, "alertmanager") == records(WEBHOOK)
    assert records(PD_TRIGGER, "pagerduty") == records(PD_TRIGGER)
    assert records(MINIMAL, "native") == records(MINIMAL)


def test_formats_list_matches_the_cli_choices():
    assert formats.FORMATS == ("auto", "native", "alertmanager", "pagerduty")
