"""What a status means: the statuses of alerts, incidents and notifications, which moves are
allowed from which, and the fields each move sets.

The one place for these rules. The models constrain their status columns to the tuples here;
`services.workflow` applies a move race-free (a conditional UPDATE on `Move.allowed`); every
writer takes the allowed statuses and the fields from here: the interactive moves, ingest's
acknowledge and resolve events (and so the snapshot's derived resolves, which go through
ingest), the escalation pass, notification delivery and `notify retry`. Plain strings and
no SQLAlchemy, so the command line can offer the statuses as choices without importing the
database layer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final


@dataclass(frozen=True)
class Move:
    """One kind of move: from which statuses, to which, needing which capability."""

    name: str  # the verb users type: acknowledge, assign, …
    allowed: tuple[str, ...]
    to: str | None  # None: the status is computed (assigning an incident in progress keeps it so)
    capability: str
    audit_action: str
    # Where the move is made already (a move to the state the row is in): a no-op that
    # exits 0, says `already`, and writes no audit row (DESIGN §3). A service may narrow
    # it (assigning: only to the same person). Empty: the move is never a no-op.
    done_in: tuple[str, ...] = ()
    already: str = ""


def seconds_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def sql_in(statuses: tuple[str, ...]) -> str:
    """`('A', 'B')` for raw SQL (the statuses are constants of this module, never input)."""
    return "(" + ", ".join(f"'{s}'" for s in statuses) + ")"


# ---------------------------------------------------------------- alerts

NEW: Final = "NEW"
ACKNOWLEDGED: Final = "ACKNOWLEDGED"
ASSIGNED: Final = "ASSIGNED"
ESCALATED: Final = "ESCALATED"
SUPPRESSED: Final = "SUPPRESSED"  # raised inside a maintenance window: held, not lost
RESOLVED: Final = "RESOLVED"

ALERT_STATUSES: Final = (NEW, ACKNOWLEDGED, ASSIGNED, ESCALATED, SUPPRESSED, RESOLVED)
# Every status but RESOLVED: at most one active alert per dedup key (the partial unique index).
ALERT_ACTIVE: Final = tuple(s for s in ALERT_STATUSES if s != RESOLVED)
ALERT_ACTIVE_SQL: Final = f"status <> '{RESOLVED}'"
# Active and in front of the NOC: not held by a maintenance window.
ALERT_SURFACED: Final = (NEW, ACKNOWLEDGED, ASSIGNED, ESCALATED)
# Nobody has taken it on: the escalation pass looks at these.
ALERT_UNACKNOWLEDGED: Final = (NEW, ESCALATED)
ALERT_UNACKNOWLEDGED_SQL: Final = f"status IN {sql_in(ALERT_UNACKNOWLEDGED)}"
ALERT_ACKABLE: Final = (NEW, ESCALATED, ASSIGNED)

# Escalating an ESCALATED alert is not a no-op: it climbs one more level.
ALERT_MOVES: Final = {
    "acknowledge": Move("acknowledge", ALERT_ACKABLE, ACKNOWLEDGED, "noc:ack_alerts", "ACKNOWLEDGE",
                        (ACKNOWLEDGED,), "already acknowledged"),
    "assign": Move("assign", ALERT_SURFACED, ASSIGNED, "noc:assign_incidents", "ASSIGN",
                   (ASSIGNED,), "already assigned"),  # to the same person (services.alerts)
    "escalate": Move("escalate", ALERT_SURFACED, ESCALATED, "noc:escalate", "ESCALATE"),
    "resolve": Move("resolve", ALERT_ACTIVE, RESOLVED, "noc:ack_alerts", "RESOLVE", (RESOLVED,), "already resolved"),
}
# Snoozing keeps the status: a snoozed alert is out of the active view and the escalation
# pass until `snoozed_until`, then back by itself (nothing is written when it ends).
# Snoozing again to the same end, or waking an alert that is not snoozed, is a no-op.
# A RESOLVED alert cannot be snoozed (exit 4). A duplicate that arrives CRITICAL wakes a
# snoozed alert early (ingest, audited UNSNOOZE): it is worse than when it was put aside.
ALERT_SNOOZE: Final = Move("snooze", ALERT_ACTIVE, None, "noc:ack_alerts", "SNOOZE", ALERT_ACTIVE, "already snoozed")
ALERT_UNSNOOZE: Final = Move("unsnooze", ALERT_ACTIVE, None, "noc:ack_alerts", "UNSNOOZE", ALERT_ACTIVE,
                             "not snoozed")
ALERT_WAKE_SEVERITY: Final = "CRITICAL"
# Notes change nothing on the alert: an audit row (NOTE) over a visible alert, any status.
ALERT_NOTE: Final = Move("note", ALERT_STATUSES, None, "noc:ack_alerts", "NOTE")
# The system's moves. The escalation pass escalates only what nobody has acknowledged; a
# SUPPRESSED alert still firing after its window surfaces as NEW.
ALERT_PASS_ESCALATE: Final = Move("escalate", ALERT_UNACKNOWLEDGED, ESCALATED, "noc:escalate", "ESCALATE")
ALERT_SURFACE: Final = Move("surface", (SUPPRESSED,), NEW, "noc:ingest", "UNSUPPRESS")
# The sender reports the alert muted (Alertmanager: silenced or inhibited): held like an
# alert raised in a maintenance window, unless someone has taken it on (acknowledged or
# assigned it: their work stays in front of the NOC). ALERT_SURFACE brings it back.
ALERT_HOLD: Final = Move("suppress", ALERT_UNACKNOWLEDGED, SUPPRESSED, "noc:ingest", "SUPPRESS")


def alert_acknowledged(at: datetime, by: int | None, first_seen_at: datetime) -> dict[str, Any]:
    return {"status": ACKNOWLEDGED, "acknowledged_at": at, "acknowledged_by": by,
            "time_to_ack": seconds_between(first_seen_at, at)}


def alert_assigned(at: datetime, to: int | None) -> dict[str, Any]:
    return {"status": ASSIGNED, "assigned_at": at, "assigned_to": to}


def alert_escalated(at: datetime, to: int | None, level: int, next_look: datetime | None) -> dict[str, Any]:
    """`level` is the new escalation level; `next_look` when the pass should look again."""
    return {"status": ESCALATED, "escalated_at": at, "escalated_to": to, "escalation_level": level,
            "next_escalation_at": next_look}


def alert_snoozed(until: datetime | None) -> dict[str, Any]:
    """Snoozed until `until`; None wakes it."""
    return {"snoozed_until": until}


def snoozed(until: datetime | None, now: datetime) -> bool:
    """Whether an alert snoozed until `until` is still snoozed at `now` (the SQL is
    `snoozed_until IS NULL OR snoozed_until <= now` for "not snoozed")."""
    return until is not None and until > now


def alert_resolved(at: datetime, by: int | None, first_seen_at: datetime, note: str | None) -> dict[str, Any]:
    return {"status": RESOLVED, "resolved_at": at, "resolved_by": by, "resolution_note": note,
            "time_to_resolve": seconds_between(first_seen_at, at)}


# ---------------------------------------------------------------- incidents

IN_PROGRESS: Final = "IN_PROGRESS"
CLOSED: Final = "CLOSED"

INCIDENT_STATUSES: Final = (NEW, ACKNOWLEDGED, ASSIGNED, IN_PROGRESS, RESOLVED, CLOSED)
INCIDENT_OPEN: Final = (NEW, ACKNOWLEDGED, ASSIGNED, IN_PROGRESS)
INCIDENT_ENDED: Final = (RESOLVED, CLOSED)  # the SLA clock stops at resolved_at
INCIDENT_MOVES: Final = {
    "acknowledge": Move("acknowledge", (NEW,), ACKNOWLEDGED, "noc:ack_alerts", "INCIDENT_ACKNOWLEDGE"),
    "assign": Move("assign", INCIDENT_OPEN, None, "noc:assign_incidents", "INCIDENT_ASSIGN"),
    "start": Move("start", (NEW, ACKNOWLEDGED, ASSIGNED), IN_PROGRESS, "noc:ack_alerts", "INCIDENT_START"),
    "resolve": Move("resolve", INCIDENT_OPEN, RESOLVED, "noc:ack_alerts", "INCIDENT_RESOLVE"),
    "reopen": Move("reopen", (RESOLVED,), IN_PROGRESS, "noc:ack_alerts", "INCIDENT_REOPEN"),
    "close": Move("close", (*INCIDENT_OPEN, RESOLVED), CLOSED, "noc:ack_alerts", "INCIDENT_CLOSE"),
}


def incident_fields(action: str, status: str, created_at: datetime, resolved_at: datetime | None, now: datetime,
                    by: int | None, target_person: int | None = None, note: str | None = None) -> dict[str, Any]:
    """The fields `action` sets on an incident now in `status`, made by person `by`."""
    if action == "acknowledge":
        return {"status": ACKNOWLEDGED, "acknowledged_at": now, "acknowledged_by": by}
    if action == "assign":
        # Assigning an incident already in progress changes who, not where it stands.
        return {"status": IN_PROGRESS if status == IN_PROGRESS else ASSIGNED, "assigned_at": now,
                "assigned_to": target_person}
    if action == "start":
        return {"status": IN_PROGRESS, "started_at": now}
    if action == "resolve":
        return {"status": RESOLVED, "resolved_at": now, "resolved_by": by,
                "time_to_resolve": seconds_between(created_at, now), "resolution_note": note}
    if action == "reopen":
        return {"status": IN_PROGRESS, "resolved_at": None, "resolved_by": None, "time_to_resolve": None}
    if action != "close":
        raise ValueError(f"no incident move {action!r}")
    values: dict[str, Any] = {"status": CLOSED, "closed_at": now}
    if resolved_at is None:  # closed without a resolve: it ends now
        values.update(resolved_at=now, resolved_by=by, time_to_resolve=seconds_between(created_at, now))
    return values


# ---------------------------------------------------------------- notifications

PENDING: Final = "PENDING"
SENT: Final = "SENT"
FAILED: Final = "FAILED"  # out of attempts: kept until `notify retry` puts it back

NOTIFICATION_STATUSES: Final = (PENDING, SENT, FAILED)
NOTIFICATION_RETRY: Final = Move("retry", (FAILED,), PENDING, "noc:escalate", "")


def notification_sent(at: datetime, attempts: int) -> dict[str, Any]:
    return {"status": SENT, "sent_at": at, "attempts": attempts}


def notification_retrying(attempts: int, error: str | None, next_attempt_at: datetime) -> dict[str, Any]:
    """A failed attempt with attempts left: the message stays PENDING, due again at `next_attempt_at`."""
    return {"attempts": attempts, "last_error": error, "next_attempt_at": next_attempt_at}


def notification_failed(attempts: int, error: str | None) -> dict[str, Any]:
    return {"status": FAILED, "attempts": attempts, "last_error": error}


def notification_retried(now: datetime) -> dict[str, Any]:
    return {"status": PENDING, "attempts": 0, "next_attempt_at": now}
