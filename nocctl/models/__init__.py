"""SQLAlchemy models, one module per noun, all on one Base (imported here so the metadata
is complete for Alembic)."""
from nocctl.models.alert import Alert
from nocctl.models.audit import AuditLog
from nocctl.models.base import Base
from nocctl.models.escalation import EscalationPolicy, Notification
from nocctl.models.feed import FeedRecord
from nocctl.models.incident import Incident, IncidentAlert
from nocctl.models.ingest import IngestEvent, IngestReject
from nocctl.models.integration import Integration
from nocctl.models.maintenance import MaintenanceWindow
from nocctl.models.oncall import OncallMember, OncallOverride, OncallSchedule
from nocctl.models.org import BusinessUnit
from nocctl.models.passrun import PassRun
from nocctl.models.person import AccessGrant, Person
from nocctl.models.prefs import OperatorPref
from nocctl.models.snapshot import Snapshot
from nocctl.models.tenant import Tenant

__all__ = [
    "AccessGrant",
    "Alert",
    "AuditLog",
    "Base",
    "BusinessUnit",
    "EscalationPolicy",
    "FeedRecord",
    "Incident",
    "IncidentAlert",
    "IngestEvent",
    "IngestReject",
    "Integration",
    "MaintenanceWindow",
    "Notification",
    "OncallMember",
    "OncallOverride",
    "OncallSchedule",
    "OperatorPref",
    "PassRun",
    "Person",
    "Snapshot",
    "Tenant",
]
