"""The notification outbox (DESIGN §3, Notifications): messages are queued inside the
transaction that decides them (`queue`, called by the escalation pass) and delivered later by
`nocctl notify run` through the configured channels (`services/channels.py`: a webhook POST
of the JSON payload, a command run with the JSON on stdin, or a mail over SMTP).

Delivery is at least once: a message is marked SENT in a short transaction after its channel
took it, so a crash in between sends it again on the next run. A failed attempt backs off
exponentially (`backoff`·2^(attempts−1), capped at `max_backoff`) until `max_attempts`, then
the message is FAILED; nothing is deleted, and `notify retry` puts FAILED messages back.
Channel secrets (webhook URLs, header values, the SMTP password) never reach `last_error`,
logs or output: errors name the channel, not its address."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult, Engine, Row
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql import ColumnElement

from nocctl import clock
from nocctl.config import Settings
from nocctl.errors import BadInput, NocError, NotFound
from nocctl.lifecycle import (
    NOTIFICATION_RETRY,
    NOTIFICATION_STATUSES,
    PENDING,
    notification_failed,
    notification_retried,
    notification_retrying,
    notification_sent,
)
from nocctl.models import BusinessUnit, Notification, Person
from nocctl.rawsql import RawSQL
from nocctl.services import access, passes
from nocctl.services.channels import Attempt, Channel, Delivery, deliver, short_error
from nocctl.services.rbac import Caller
from nocctl.services.workflow import Outcome, apply, failed
from nocctl.tunables import NotifyConfig as NotifyConfig  # tests and callers take it from here

LIST_COLUMNS = ("id", "created_at", "kind", "channel", "status", "attempts", "next_attempt_at", "sent_at",
                "alert_id", "client", "site", "recipient", "last_error")
TABLE_COLUMNS = ("id", "created_at", "kind", "channel", "status", "attempts", "next_attempt_at", "recipient",
                 "last_error")

BATCH = 200  # due messages read per query


# ---------------------------------------------------------------- configuration
# The `[notify]` section is `tunables.NotifyConfig` (importable from here too), parsed once
# by `settings.notify`.

def load_config(settings: Settings) -> NotifyConfig:
    """The validated `[notify]` section (absent: defaults and no channels). Bad values:
    BadInput (exit 65) naming the exact key, never repeating a secret."""
    return settings.notify


def load_channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels by name, validated (see `load_config`)."""
    return settings.notify.channels


# ---------------------------------------------------------------- queueing

@dataclass
class Message:
    """What to send. `payload` is what every channel receives (JSON; `subject` and `text`
    shape the mail of an smtp channel); the ids place the message for visibility, and
    `recipient_id` names the person an smtp channel mails."""

    kind: str
    payload: dict[str, Any]
    alert_id: int | None = None
    client_id: int | None = None
    site_id: int | None = None
    recipient_id: int | None = None
    severity: str | None = None


def queue(session: Session, tenant_id: int, messages: Iterable[Message], channels: Mapping[str, Channel],
          now: datetime) -> int:
    """Put one PENDING row per (message, channel whose severity filter accepts it) in the
    outbox, inside the caller's transaction, with one executemany. Returns the rows queued."""
    sql = RawSQL(session)
    stamp = sql.ts(now)
    rows = []
    for m in messages:
        payload = sql.json(m.payload)  # once, whatever the number of channels
        rows += [(tenant_id, stamp, m.kind, channel.name, m.alert_id, m.client_id, m.site_id, m.recipient_id, payload,
                  stamp) for channel in channels.values() if channel.accepts(m.severity)]
    # Driver-form values on the raw connection: an escalation pass queues thousands at once.
    sql.many("INSERT INTO notification (tenant_id, created_at, kind, channel, alert_id, client_id, site_id,"
             " recipient_id, payload, status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
             f" '{PENDING}', 0, ?)", rows)
    return len(rows)


# ---------------------------------------------------------------- the pass

@dataclass(frozen=True)
class Failure:
    """A message that became FAILED in this run (for the caller to report)."""

    id: int
    tenant_id: int
    channel: str
    attempts: int
    error: str


def _due(tenant_id: int, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Notification.tenant_id == tenant_id, Notification.status == PENDING, Notification.next_attempt_at <= now)


def _record(session_factory: Callable[[], Session], row: Row[Any], attempt: Attempt, config: NotifyConfig,
            now: datetime) -> str | None:
    """Write one outcome in a short transaction: 'sent', 'retrying' or 'failed' (None when
    the row changed meanwhile and nothing was written)."""
    attempts = row.attempts + 1
    if attempt.ok:
        values, outcome = notification_sent(now, attempts), "sent"
    elif attempt.permanent or attempts >= config.max_attempts:
        values, outcome = notification_failed(attempts, attempt.error), "failed"
    else:  # stays PENDING, due again after the backoff
        values = notification_retrying(attempts, attempt.error, now + timedelta(seconds=config.delay(attempts)))
        outcome = "retrying"
    table = Notification.__table__
    with session_factory() as session, session.begin():
        result = session.execute(update(table).where(
            table.c.tenant_id == row.tenant_id, table.c.id == row.id, table.c.status == PENDING,
            table.c.attempts == row.attempts).values(**values))
        changed = cast("CursorResult[Any]", result).rowcount  # an UPDATE: a cursor's result
    return outcome if changed else None


def run(engine: Engine, settings: Settings, now: datetime, dry_run: bool = False,
        on_failed: Callable[[Failure], None] | None = None) -> dict[str, int]:
    """Deliver every due message of every tenant (PENDING, next_attempt_at <= now), in id
    order, holding the `notify` pass lock (another runner: TemporaryFailure, exit 75).
    Each delivery happens outside any database transaction; its outcome is written right
    after in a short one, stamped `now`. `dry_run` counts what is due and touches nothing
    (no lock either: it changes nothing, so it cannot collide with a real run). Returns the
    summary {"due", "sent", "retrying", "failed", "duration_ms"}."""
    from nocctl.db import make_sessionmaker

    config = settings.notify
    factory = make_sessionmaker(engine)
    summary = {"due": 0, "sent": 0, "retrying": 0, "failed": 0}
    with passes.running(engine, "notify", now, dry_run, lock=not dry_run) as job:
        if job.dry_run:
            with factory() as session, session.begin():
                for tenant in job.tenants:
                    summary["due"] += session.scalar(select(func.count()).select_from(Notification)
                                                     .where(*_due(tenant.id, job.now))) or 0
        else:
            for tenant in job.tenants:
                _deliver_tenant(factory, config, tenant.id, job.now, summary, on_failed)
    return {**summary, "duration_ms": job.duration_ms}


def _deliver_tenant(factory: sessionmaker[Session], config: NotifyConfig, tenant_id: int, now: datetime,
                    summary: dict[str, int], on_failed: Callable[[Failure], None] | None) -> None:
    """Deliver the tenant's due messages, `BATCH` read at a time, each outcome written at once."""
    person = aliased(Person)
    after = 0
    while True:
        with factory() as session, session.begin():
            batch = session.execute(
                select(Notification.id, Notification.tenant_id, Notification.channel, Notification.payload,
                       Notification.attempts, Notification.recipient_id, person.email)
                .outerjoin(person, person.id == Notification.recipient_id)
                .where(*_due(tenant_id, now), Notification.id > after)
                .order_by(Notification.id).limit(BATCH)).all()
        for row in batch:
            after = row.id
            summary["due"] += 1
            channel = config.channels.get(row.channel)
            if channel is None:
                attempt = Attempt(False, short_error(f"channel {row.channel} is not configured"))
            else:
                attempt = deliver(channel, Delivery(row.id, row.payload, row.email, now))
            outcome = _record(factory, row, attempt, config, now)
            if outcome is None:
                continue
            summary[outcome] += 1
            if outcome == "failed" and on_failed is not None:
                on_failed(Failure(row.id, row.tenant_id, row.channel, row.attempts + 1, attempt.error or ""))
        if len(batch) < BATCH:
            return


# ---------------------------------------------------------------- looking and retrying

def list_notifications(session: Session, caller: Caller, status: str | None = None, limit: int = 100
                       ) -> list[dict[str, Any]]:
    """The outbox rows the caller can see, newest first. A message of a client or site is
    seen with it; a tenant-level one (no client) only through a tenant-wide view grant.
    `next_attempt_at` is given only for PENDING messages."""
    if status is not None and status.upper() not in NOTIFICATION_STATUSES:
        raise BadInput(f"unknown status {status!r}", "one of " + ", ".join(s.lower() for s in NOTIFICATION_STATUSES))
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        client, site, person = aliased(BusinessUnit), aliased(BusinessUnit), aliased(Person)
        query = (
            select(Notification, client.code.label("client"), site.code.label("site"),
                   person.username.label("recipient"))
            .outerjoin(client, client.id == Notification.client_id)
            .outerjoin(site, site.id == Notification.site_id)
            .outerjoin(person, person.id == Notification.recipient_id)
            .where(Notification.tenant_id == actor.tenant_id,
                   scope.visible(Notification.client_id, Notification.site_id))
        )
        if status is not None:
            query = query.where(Notification.status == status.upper())
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
        return [
            {"id": n.id, "created_at": n.created_at, "kind": n.kind, "channel": n.channel, "status": n.status,
             "attempts": n.attempts, "next_attempt_at": n.next_attempt_at if n.status == PENDING else None,
             "sent_at": n.sent_at, "alert_id": n.alert_id, "client": client_code, "site": site_code,
             "recipient": recipient, "last_error": n.last_error}
            for n, client_code, site_code, recipient in session.execute(query)
        ]


def retry(session: Session, caller: Caller, ids: Sequence[int]) -> list[Outcome]:
    """Put FAILED messages back in the queue: PENDING, attempts 0, due now (the clock's).
    Needs noc:escalate over the message's client (tenant-wide for a tenant-level one).
    Each id is reported: not seen or nonexistent 3, not permitted 77, not FAILED 4; the
    others are done. Not audited: it changes no alert and no configuration (see
    docs/decisions.md)."""
    now = clock.now()
    outcomes: list[Outcome] = []
    table = Notification.__table__
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        for notification_id in dict.fromkeys(ids):
            label = str(notification_id)
            row = session.execute(select(Notification.id, Notification.client_id, Notification.site_id,
                                         Notification.status).where(
                Notification.tenant_id == actor.tenant_id, Notification.id == notification_id,
                scope.visible(Notification.client_id, Notification.site_id))).first()
            try:
                if row is None:
                    raise NotFound(f"no notification {label}", "see `nocctl notify list`")
                scope.require(NOTIFICATION_RETRY.capability, row.client_id, row.site_id,
                              what=f"notification {row.id}")
                status = apply(session, table, row.id, NOTIFICATION_RETRY, notification_retried(now))
            except NocError as exc:
                outcomes.append(failed(label, exc, row.id if row else None))
                continue
            outcomes.append(Outcome(label, row.id, True, status))
    return outcomes
