"""The history of one alert (`alert show`): what happened to it, when, by whom, in order.

Built from what is stored, nothing recorded twice: the alert row (first seen; duplicates —
their count, the last one, the severity now: the upsert keeps only the latest severity,
so the severity of each occurrence is not recorded), the audit rows targeting the alert
(every acknowledge, assign, escalate, note, resolve, suppress, unsuppress, snooze and
unsnooze, with who and the note), its notifications (queued, sent, failed), the maintenance
window that held it, the end of a snooze that ran out, the other alerts of its correlation
group and the incidents it belongs to. The caller has been shown the alert (its scope):
its audit rows carry its client/site, so they are its history, not other clients' data.
Each event is `{at, event, actor, details}`; ordered by time, then as recorded."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from nocctl import clock, lifecycle
from nocctl.models import (
    Alert,
    AuditLog,
    BusinessUnit,
    Incident,
    IncidentAlert,
    MaintenanceWindow,
    Notification,
    Person,
)
from nocctl.services.access import Scope

# Audit actions as timeline events: the past tense the engineer reads.
EVENTS = {
    "ACKNOWLEDGE": "acknowledged",
    "ASSIGN": "assigned",
    "ESCALATE": "escalated",
    "RESOLVE": "resolved",
    "SUPPRESS": "suppressed",
    "UNSUPPRESS": "unsuppressed",
    "NOTE": "note",
    "SNOOZE": "snoozed",
    "UNSNOOZE": "unsnoozed",
}


EARLIEST = datetime.min.replace(tzinfo=UTC)


def _event(at: datetime | None, event: str, actor: str | None, details: dict[str, Any], order: int
           ) -> tuple[datetime, int, dict[str, Any]]:
    return (at or EARLIEST, order,
            {"at": at, "event": event, "actor": actor, "details": details})


def build(session: Session, scope: Scope, alert: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The timeline of `alert` (a row of `services.alerts`, visible to `scope`)."""
    tid = scope.actor.tenant_id
    alert_id = alert["id"]
    events: list[tuple[datetime, int, dict[str, Any]]] = []
    order = 0

    def add(at: datetime | None, event: str, actor: str | None, details: dict[str, Any]) -> None:
        nonlocal order
        order += 1
        events.append(_event(at, event, actor, details, order))

    add(alert["first_seen_at"], "first_seen", alert.get("source"),
        {"severity": alert["severity"], "message": alert["message"], "dedup_key": alert["dedup_key"]})
    if alert["duplicate_count"]:
        add(alert["last_seen_at"], "duplicates", alert.get("source"),
            {"count": alert["duplicate_count"], "last_seen_at": alert["last_seen_at"],
             "severity_now": alert["severity"]})

    window = None
    if alert.get("maintenance_window_id") is not None:
        window = session.execute(select(MaintenanceWindow.id, MaintenanceWindow.reason, MaintenanceWindow.starts_at,
                                        MaintenanceWindow.ends_at).where(
            MaintenanceWindow.tenant_id == tid, MaintenanceWindow.id == alert["maintenance_window_id"])).first()
    held_by_window = False

    person = aliased(Person)
    rows = session.execute(
        select(AuditLog.at, AuditLog.action, AuditLog.details, AuditLog.os_user, person.username)
        .outerjoin(person, person.id == AuditLog.actor_id)
        .where(AuditLog.tenant_id == tid, AuditLog.target_type == "alert", AuditLog.target_id == str(alert_id))
        .order_by(AuditLog.id))
    snoozes: list[tuple[datetime, datetime | None]] = []  # (when, until: None = woken)
    for at, action, stored, os_user, username in rows:
        details = dict(stored or {})
        actor = username or details.get("by") or (f"system ({os_user})" if os_user else "system")
        if action == "SUPPRESS" and window is not None and details.get("maintenance_window_id") == window.id:
            held_by_window = True
            details.update(reason=window.reason, window_starts_at=window.starts_at, window_ends_at=window.ends_at)
        if action == "SNOOZE":
            snoozes.append((at, _instant(details.get("snoozed_until"))))
        elif action == "UNSNOOZE":
            snoozes.append((at, None))
        add(at, EVENTS.get(action, action.lower()), actor, details)
    if window is not None and not held_by_window:
        add(alert["first_seen_at"], "maintenance", None,
            {"maintenance_window_id": window.id, "reason": window.reason, "window_starts_at": window.starts_at,
             "window_ends_at": window.ends_at})
    # A snooze that ran out (nobody woke it, no later snooze replaced it) ends by itself.
    for index, (at, until) in enumerate(snoozes):
        following = snoozes[index + 1][0] if index + 1 < len(snoozes) else None
        if until is not None and not lifecycle.snoozed(until, now) and (following is None or following > until):
            add(until, "snooze_ended", None, {"snoozed_at": at})

    for n in session.execute(
            select(Notification.id, Notification.kind, Notification.channel, Notification.status,
                   Notification.created_at, Notification.sent_at, Notification.next_attempt_at,
                   Notification.attempts, Notification.last_error, person.username)
            .outerjoin(person, person.id == Notification.recipient_id)
            .where(Notification.tenant_id == tid, Notification.alert_id == alert_id)
            .order_by(Notification.id)):
        details = {"notification_id": n.id, "kind": n.kind, "channel": n.channel, "recipient": n.username,
                   "attempts": n.attempts, "queued_at": n.created_at}
        if n.status == lifecycle.SENT:
            add(n.sent_at, "notification_sent", None, details)
        elif n.status == lifecycle.FAILED:  # the last attempt was due at next_attempt_at
            add(n.next_attempt_at, "notification_failed", None, details | {"error": n.last_error})
        else:
            add(n.created_at, "notification_queued", None,
                details | {"next_attempt_at": n.next_attempt_at, "error": n.last_error})

    if alert.get("correlation_id"):
        site = aliased(BusinessUnit)
        for other in session.execute(
                select(Alert.id, Alert.alert_type, Alert.severity, Alert.status, Alert.first_seen_at,
                       site.code.label("site"))
                .outerjoin(site, site.id == Alert.site_id)
                .where(Alert.tenant_id == tid, Alert.correlation_id == alert["correlation_id"], Alert.id != alert_id,
                       scope.visible(Alert.client_id, Alert.site_id))
                .order_by(Alert.first_seen_at, Alert.id)):
            add(other.first_seen_at, "correlated", None,
                {"alert_id": other.id, "alert_type": other.alert_type, "severity": other.severity,
                 "status": other.status, "site": other.site, "correlation_id": alert["correlation_id"]})

    for incident in session.execute(
            select(Incident.id, Incident.title, Incident.status, IncidentAlert.added_at)
            .join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
            .where(IncidentAlert.tenant_id == tid, IncidentAlert.alert_id == alert_id, Incident.tenant_id == tid,
                   scope.visible(Incident.client_id, Incident.site_id))
            .order_by(IncidentAlert.added_at, Incident.id)):
        add(incident.added_at, "incident", None,
            {"incident_id": incident.id, "title": incident.title, "status": incident.status})

    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def _instant(value: Any) -> datetime | None:
    """An instant as the audit details keep it (ISO text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def summary(details: dict[str, Any]) -> str:
    """The details of an event on one line for a table: `key=value` pairs (times ISO);
    the renderer escapes the text (`output.printable`)."""
    parts = []
    for key, value in details.items():
        if value is None or value in ({}, []):
            continue
        parts.append(f"{key}={clock.isoformat(value) if isinstance(value, datetime) else value}")
    return " ".join(parts)
