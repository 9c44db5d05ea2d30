"""Vocabularies shared by models, services and the command line (plain strings, so the
CLI can offer them as choices without importing SQLAlchemy). The statuses of alerts,
incidents and notifications are `nocctl.lifecycle`'s, with their rules."""
from __future__ import annotations

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")  # most severe first
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

BUILTIN_ALERT_TYPES = (
    "SLA_BREACH",
    "TICKET_ESCALATED",
    "DEVICE_OFFLINE",
    "DEVICE_SPOOF",
    "GEOFENCE_BREACH",
    "ATTENDANCE_MISSING",
    "SYNC_DEGRADED",
    "SECURITY_ANOMALY",
    "WORK_ORDER_OVERDUE",
    "ATTENDANCE_ANOMALY",
)

UNIT_KINDS = ("CLIENT", "SITE")
SCOPE_KINDS = ("TENANT", "CLIENT", "SITE")
RECURRENCES = ("NONE", "DAILY", "WEEKLY")

# Escalation targets; the named ones fall through in this order when they resolve to nobody.
ESCALATION_CHAIN = ("oncall", "site_in_charge", "client_owner")

# Operational feeds (`nocctl ingest --kind KIND`), kept in feed_record.
FEED_KINDS = ("ticket", "work_order", "attendance", "device", "geofence", "security")
NOTIFICATION_CHANNEL_TYPES = ("webhook", "command", "smtp")
# What an integration's sender posts to `nocctl serve` (`nocctl integration add --format`).
INTEGRATION_FORMATS = ("pagerduty", "alertmanager", "native")

CAPABILITIES = (
    "noc:view",
    "noc:view_all_clients",
    "noc:view_client",
    "noc:view_assigned_sites",
    "noc:ack_alerts",
    "noc:escalate",
    "noc:configure",
    "noc:export",
    "noc:manage_maintenance",
    "noc:audit_view",
    "noc:assign_incidents",
    "noc:ingest",
    "noc:impersonate",
)
# Capabilities that only a tenant-wide grant may carry.
TENANT_WIDE_CAPABILITIES = ("noc:view_all_clients", "noc:impersonate")
# Holding any of these on a scope makes the scope's clients/sites visible.
VIEW_CAPABILITIES = ("noc:view", "noc:view_all_clients", "noc:view_client", "noc:view_assigned_sites")

AUDIT_ACTIONS = (
    "ACKNOWLEDGE",
    "ASSIGN",
    "ESCALATE",
    "RESOLVE",
    "SUPPRESS",
    "UNSUPPRESS",  # a SUPPRESSED alert back to NEW: its silence ended and it still fires
    "NOTE",  # a note on an alert (`alert note`): the note is the audit row
    "SNOOZE",
    "UNSNOOZE",  # by hand, or a CRITICAL occurrence woke it early
    "MAINTENANCE_CREATE",
    "MAINTENANCE_UPDATE",
    "MAINTENANCE_DELETE",
    "EXPORT_DATA",
    "VIEW_SENSITIVE",
    "CONFIG_CHANGE",
    "INCIDENT_CREATE",
    "INCIDENT_ACKNOWLEDGE",
    "INCIDENT_ASSIGN",
    "INCIDENT_START",
    "INCIDENT_RESOLVE",
    "INCIDENT_REOPEN",
    "INCIDENT_CLOSE",
    "INCIDENT_ADD_ALERT",
)

# What each report counts, printed in the reports themselves (DESIGN §7).
REPORT_DEFINITIONS = {
    "mttr": "Mean time to resolve: over the alerts resolved in the window, time_to_resolve = resolved_at − "
            "first_seen_at. Mean, p50 and p90 (continuous percentiles with linear interpolation, as "
            "PostgreSQL's percentile_cont) and count; overall, by severity and by client.",
    "mtta": "Mean time to acknowledge: over the alerts acknowledged in the window, time_to_ack = "
            "acknowledged_at − first_seen_at. Mean, p50 and p90 (continuous percentiles with linear "
            "interpolation) and count; overall, by severity and by client.",
    "frequency": "Alerts first seen in the window, suppressed ones included, and their events (1 + duplicates, "
                 "counted on the alert's first day); by type, by severity and per day in the report's time zone.",
    "sla": "Incidents created in the window that have an SLA target: met = resolved (or closed) by the target; "
           "breached = resolved after it, or still open past it when the report is made; pending = open and "
           "not yet due. Compliance = met / (met + breached), none when both are 0.",
    "noisy": "Sites by alerts first seen in the window (most first), with their events (1 + duplicates), the "
             "alerts a maintenance window suppressed, and their share of all alerts in the report.",
}
