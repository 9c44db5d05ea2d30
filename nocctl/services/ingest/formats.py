"""Input formats: native records, Alertmanager (webhook v4 and the /api/v2/alerts array)
and PagerDuty Events v2, each mapped onto one normalised `Record` (DESIGN §4)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from nocctl.clock import parse_iso
from nocctl.errors import BadInput
from nocctl.vocabulary import SEVERITIES

SEVERITY_SET = frozenset(SEVERITIES)

FORMATS = ("auto", "native", "alertmanager", "pagerduty")
ACTIONS = {"trigger": "trigger", "acknowledge": "acknowledge", "ack": "acknowledge", "resolve": "resolve"}
NATIVE_KEYS = frozenset((
    "alert_type", "severity", "message", "client", "site", "entity_type", "entity_id", "metadata",
    "occurred_at", "action", "dedup_key", "source", "event_id",
))
ALERT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")

AM_SEVERITY = {"critical": "CRITICAL", "high": "HIGH", "error": "HIGH", "major": "HIGH", "warning": "MEDIUM",
               "minor": "MEDIUM", "low": "LOW", "info": "INFO", "none": "INFO"}
PD_SEVERITY = {"critical": "CRITICAL", "error": "HIGH", "warning": "MEDIUM", "info": "INFO"}


class RecordError(Exception):
    """One record cannot be used; the reason is shown to the user and kept with the reject."""


class Record(NamedTuple):
    """One normalised input record (a tuple: cheap to build and to pickle)."""

    action: str
    alert_type: str | None
    severity: str | None
    message: str | None
    client: str | None
    site: str | None
    entity_type: str | None
    entity_id: str | None
    metadata: dict | None
    occurred_at: datetime | None
    dedup_key: str | None
    source: str | None
    event_id: str | None
    # The sender reports the alert muted: Alertmanager's /api/v2/alerts says `suppressed`
    # (silenced or inhibited). The trigger then holds the alert SUPPRESSED (the pipeline).
    suppressed: bool = False
    # (dedup key, event key) as the reader process computed them for where the record says it
    # is (`events.with_keys`), so the writer does not; None: not computed (the writer does).
    keys: tuple[str | None, bytes | None] | None = None


def alert_type_name(value: Any, field: str = "alert_type") -> str:
    """UPPER_SNAKE type name; CamelCase and other spellings are converted (HostDown → HOST_DOWN)."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field} must be a non-empty string")
    name = value.strip()
    if not ALERT_TYPE.match(name):
        name = _NON_WORD.sub("_", _CAMEL.sub("_", name)).strip("_").upper()
    if not ALERT_TYPE.match(name):
        shown = repr(value) if len(value) <= 70 else repr(value[:64]) + "…"
        raise RecordError(f"{field} {shown} is not a usable type name (UPPER_SNAKE, up to 64 characters)")
    return name


def _text(record: dict, key: str, required: bool = False, limit: int | None = None) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} must be a string, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise RecordError(f"{key} must not be empty")
    if limit and len(value) > limit:
        raise RecordError(f"{key} is longer than {limit} characters")
    return value or None


def _ident(record: dict, key: str, limit: int = 200) -> str | None:
    """An identifier that may come as a string or an integer (device ids, event ids)."""
    value = record.get(key)
    if type(value) is str and 0 < len(value) <= limit and not value[0].isspace() and not value[-1].isspace():
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise RecordError(f"{key} must be a string or an integer, not {type(value).__name__}")
    if value is None or value == "":
        return None
    value = str(value).strip()
    if len(value) > limit:
        raise RecordError(f"{key} is longer than {limit} characters")
    return value


# Instants a record may carry: from the Unix epoch (a clock never set says 1970) to well
# before the calendar ends, so that windows and durations around them stay computable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def instant(value: Any, key: str) -> datetime:
    """An ISO 8601 instant with an offset, as aware UTC, within EARLIEST..LATEST."""
    try:
        parsed = parse_iso(value, key)
    except BadInput as exc:
        raise RecordError(str(exc)) from None
    except (OverflowError, ValueError):  # the offset takes it past year 1 or 9999
        raise RecordError(f"{key} {value!r} is not a representable time") from None
    if not EARLIEST <= parsed < LATEST:
        raise RecordError(f"{key} {value!r} is outside the times nocctl accepts (1970 to 9000)")
    return parsed


def _instant(value: Any, key: str) -> datetime | None:
    return None if value is None else instant(value, key)


def _severity(value: Any, key: str = "severity") -> str:
    if not isinstance(value, str) or value.strip().upper() not in SEVERITIES:
        raise RecordError(f"{key} must be one of {', '.join(SEVERITIES)}, not {value!r}")
    return value.strip().upper()


def _optional(record: dict, key: str, limit: int) -> str | None:
    """Fast path of `_text` for optional fields: most values are clean short strings."""
    value = record.get(key)
    if value is None:
        return None
    if type(value) is str and 0 < len(value) <= limit and not value[0].isspace() and not value[-1].isspace():
        return value
    return _text(record, key, limit=limit)


def native(record: Any) -> Record:
    if type(record) is not dict:
        raise RecordError(f"a record must be a JSON object, not {type(record).__name__}")
    if not NATIVE_KEYS.issuperset(record):
        raise RecordError(f"unknown field(s): {', '.join(sorted(record.keys() - NATIVE_KEYS))}")
    get = record.get
    action = get("action", "trigger")
    if type(action) is not str or action not in ACTIONS:
        raise RecordError(f"action must be trigger, acknowledge or resolve, not {action!r}")
    action = ACTIONS[action]
    metadata = get("metadata")
    if metadata is not None and type(metadata) is not dict:
        raise RecordError("metadata must be an object")
    dedup_key = _optional(record, "dedup_key", 200)
    trigger = action == "trigger"
    alert_type = get("alert_type")
    if (type(alert_type) is not str or not ALERT_TYPE.match(alert_type)) and (
            trigger or dedup_key is None or alert_type is not None):
        alert_type = alert_type_name(alert_type)
    severity = get("severity")
    if (type(severity) is not str or severity not in SEVERITY_SET) and (trigger or severity is not None):
        severity = _severity(severity)
    message = get("message")
    if type(message) is not str or not message or message[0].isspace() or message[-1].isspace():
        message = _text(record, "message", required=trigger)
    occurred_at = get("occurred_at")
    return Record(
        action, alert_type, severity, message,
        _optional(record, "client", 64), _optional(record, "site", 64), _optional(record, "entity_type", 64),
        _ident(record, "entity_id"), metadata,
        None if occurred_at is None else _instant(occurred_at, "occurred_at"),
        dedup_key, _optional(record, "source", 100), _ident(record, "event_id"),
    )


# ---------------------------------------------------------------- Alertmanager

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF


def am_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's label-set fingerprint: FNV-1a 64 over the sorted label names and
    values, each followed by the separator byte 0xFF (prometheus/common model.LabelSet)."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


def _am_alert(alert: Any, defaults: dict[str, Any]) -> Record:
    if not isinstance(alert, dict):
        raise RecordError("an Alertmanager alert must be an object")
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise RecordError("labels must be an object of strings")
    annotations = alert.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise RecordError("annotations must be an object of strings")
    name = labels.get("alert_type") or labels.get("alertname")
    if not name:
        raise RecordError("labels carry neither alert_type nor alertname")
    status = alert.get("status") or defaults.get("status")
    resolved = status == "resolved"  # webhook; /api/v2/alerts gives {"state": …}: still firing
    state = am_state(status) if isinstance(status, dict) else None
    when = alert.get("endsAt") if resolved else alert.get("startsAt")
    if when in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"):
        when = None  # Go's zero time: Alertmanager's way of saying "not set"
    fingerprint = alert.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise RecordError("fingerprint must be a string")
    severity = labels.get("severity", "")
    metadata = {"labels": labels, "annotations": annotations}
    for key in ("generatorURL", "receiver", "groupKey", "externalURL"):
        value = alert.get(key, defaults.get(key))
        if value:
            metadata[key] = value
    event_id = None
    if state is not None:
        metadata["status"] = state
        # What this observation of the alert says: a later pull of the array with the same
        # state (and no re-send from Prometheus: the same updatedAt) is a replay; a silence
        # added or ended makes a new event, so the state it brings is applied.
        event_id = "|".join(("v2", str(alert.get("updatedAt") or alert.get("startsAt") or ""), state["state"],
                             ",".join(state["silencedBy"]), ",".join(state["inhibitedBy"])))
    return Record(
        action="resolve" if resolved else "trigger",
        alert_type=alert_type_name(name, "alertname"),
        severity=AM_SEVERITY.get(severity.lower(), "MEDIUM"),
        message=annotations.get("summary") or annotations.get("description") or name,
        client=labels.get("client") or None,
        site=labels.get("site") or None,
        entity_type="instance" if labels.get("instance") else None,
        entity_id=labels.get("instance") or None,
        metadata=metadata,
        occurred_at=_instant(when, "endsAt" if resolved else "startsAt") if when else None,
        dedup_key="am:" + (fingerprint or am_fingerprint(labels)),
        source="alertmanager",
        event_id=event_id,
        suppressed=state is not None and state["state"] == "suppressed",
    )


def am_state(status: dict) -> dict[str, Any]:
    """The `status` of an /api/v2/alerts element, checked: `state` (Alertmanager 0.25 says
    active, suppressed or unprocessed) and the ids of the silences and the fingerprints of
    the alerts that mute it. Only `suppressed` with a silence or an inhibitor holds the
    alert; `unprocessed` (not yet matched against the silences) and any other state count
    as active. A `suppressed` that names nothing muting it is kept as active."""
    state = status.get("state")
    if not isinstance(state, str) or not 0 < len(state) <= 32:
        raise RecordError("status.state must be a string (active, suppressed or unprocessed)")
    lists = {}
    for key in ("silencedBy", "inhibitedBy"):
        value = status.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in value):
            raise RecordError(f"status.{key} must be a list of ids")
        lists[key] = sorted(value)
    if state == "suppressed" and not (lists["silencedBy"] or lists["inhibitedBy"]):
        state = "active"
    return {"state": state, **lists}


# ---------------------------------------------------------------- PagerDuty

def _pagerduty(event: dict) -> Record:
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        raise RecordError(f"event_action must be trigger, acknowledge or resolve, not {action!r}")
    dedup_key = _text(event, "dedup_key", limit=200)
    payload = event.get("payload") or {}
    if not isinstance(payload, dict):
        raise RecordError("payload must be an object")
    if action != "trigger":
        if not dedup_key:
            raise RecordError(f"dedup_key is required to {action}")
        return Record(action, None, None, None, None, None, None, None, None, None, dedup_key, "pagerduty", None)
    details = payload.get("custom_details") or {}
    if not isinstance(details, dict):
        details = {"details": details}
    severity = payload.get("severity")
    if not isinstance(severity, str) or severity.lower() not in PD_SEVERITY:
        raise RecordError(f"payload.severity must be critical, error, warning or info, not {severity!r}")
    kind = payload.get("class") or "PAGERDUTY_EVENT"
    metadata = {k: v for k, v in (("custom_details", details), ("component", payload.get("component")),
                                  ("group", payload.get("group")), ("links", event.get("links")),
                                  ("client", event.get("client"))) if v}
    return Record(
        action="trigger",
        alert_type=alert_type_name(kind, "payload.class"),
        severity=PD_SEVERITY[severity.lower()],
        message=_text(payload, "summary", required=True, limit=None),
        client=details.get("client") if isinstance(details.get("client"), str) else None,
        site=(details.get("site") if isinstance(details.get("site"), str) else None) or _text(payload, "group"),
        entity_type=_text(payload, "component", limit=64),
        entity_id=_ident(payload, "source"),
        metadata=metadata or None,
        occurred_at=_instant(payload.get("timestamp"), "payload.timestamp"),
        dedup_key=dedup_key,
        source="pagerduty",
        event_id=None,
    )


# ---------------------------------------------------------------- detection

def detect(document: Any) -> str:
    """The format of one document: alertmanager, pagerduty or native."""
    if isinstance(document, dict):
        if isinstance(document.get("alerts"), list) and ("version" in document or "groupKey" in document
                                                            or "receiver" in document):
            return "alertmanager"
        if "labels" in document and ("startsAt" in document or "fingerprint" in document or "annotations" in document):
            return "alertmanager"
        if "event_action" in document or ("routing_key" in document and "payload" in document):
            return "pagerduty"
    return "native"


def records_with_items(document: Any, fmt: str = "auto") -> Iterator[tuple[Any, Record | RecordError]]:
    """The records of one document (a webhook payload or an array holds several), each with
    the JSON it came from (kept as the raw text of a reject). A bad record yields its
    RecordError in its place, so the others still count."""
    if isinstance(document, list):
        for item in document:
            yield from records_with_items(item, fmt)
        return
    kind = detect(document) if fmt == "auto" else fmt
    try:
        if kind == "alertmanager":
            if not isinstance(document, dict):
                raise RecordError("an Alertmanager document must be an object")
            if "alerts" in document:
                alerts = document["alerts"]
                if not isinstance(alerts, list):
                    raise RecordError("alerts must be a list")
                defaults = {k: document.get(k) for k in ("status", "receiver", "groupKey", "externalURL")}
                for alert in alerts:
                    try:
                        yield alert, _am_alert(alert, defaults)
                    except RecordError as exc:
                        yield alert, exc
                return
            yield document, _am_alert(document, {})
        elif kind == "pagerduty":
            if not isinstance(document, dict):
                raise RecordError("a PagerDuty event must be an object")
            yield document, _pagerduty(document)
        else:
            yield document, native(document)
    except RecordError as exc:
        yield document, exc
