"""The notification outbox (DESIGN §3, Notifications): messages are queued inside the
transaction that decides them (`queue`, called by the escalation pass) and delivered later by
`nocctl notify run` through the configured channels (`services/channels.py`: a webhook POST
of the JSON payload, a command run with the JSON on stdin, or a mail over SMTP; each may shape
its body with a template, `services/notify_templates.py`). Channels are delivered to
concurrently (worker threads that only send; the main thread alone reads and writes the
database), the messages of one channel in order. `send_test` (`nocctl notify test`) sends one
test message through a channel at once, outside the outbox.

Delivery is at least once: a message is marked SENT in a short transaction after its channel
took it, so a crash in between sends it again on the next run. A failed attempt backs off
exponentially (`backoff`·2^(attempts−1), capped at `max_backoff`) until `max_attempts`, then
the message is FAILED; nothing is deleted, and `notify retry` puts FAILED messages back.
Channel secrets (webhook URLs, header values, the SMTP password) never reach `last_error`,
logs or output: errors name the channel, not its address."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from queue import SimpleQueue
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult, Engine, Row
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql import ColumnElement

from nocctl import clock
from nocctl.config import Settings
from nocctl.errors import BadInput, NocError, NotFound, UsageError
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
from nocctl.rawsql import RawSQL, columns_and_types
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
RECORD_BATCH = 100  # at most this many outcomes written per transaction


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


_QUEUE_HEAD, _QUEUE_TYPES = columns_and_types(Notification.__table__, (
    "tenant_id", "created_at", "kind", "channel", "alert_id", "client_id", "site_id", "recipient_id", "payload",
    "status", "attempts", "next_attempt_at"))


def queue(session: Session, tenant_id: int, messages: Iterable[Message], channels: Mapping[str, Channel],
          now: datetime) -> int:
    """Put one PENDING row per (message, channel whose severity filter accepts it) in the
    outbox, inside the caller's transaction, in one statement (PostgreSQL: INSERT … SELECT
    FROM unnest; SQLite: multi-row VALUES). Each payload is serialised once, whatever the
    number of channels. Returns the rows queued."""
    sql = RawSQL(session)
    stamp = sql.ts(now)
    rows = []
    for m in messages:
        taking = [channel.name for channel in channels.values() if channel.accepts(m.severity)]
        if not taking:
            continue
        payload = sql.json(m.payload)  # once, whatever the number of channels
        rows += [(tenant_id, stamp, m.kind, name, m.alert_id, m.client_id, m.site_id, m.recipient_id, payload,
                  PENDING, 0, stamp) for name in taking]
    # Driver-form values on the raw connection: an escalation pass queues thousands at once.
    sql.insert(_QUEUE_HEAD, _QUEUE_TYPES, rows)
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


def _record(session_factory: Callable[[], Session], done: Sequence[tuple[Row[Any], Attempt]], config: NotifyConfig,
            now: datetime) -> list[str | None]:
    """Write outcomes that are in (those the workers reported since the last write, at most
    `RECORD_BATCH`) in one short transaction: 'sent', 'retrying' or 'failed' each (None when
    the row changed meanwhile and nothing was written). Each row's UPDATE is guarded by the
    status and attempts read."""
    table = Notification.__table__
    outcomes: list[str | None] = []
    with session_factory() as session, session.begin():
        for row, attempt in done:
            attempts = row.attempts + 1
            if attempt.ok:
                values, outcome = notification_sent(now, attempts), "sent"
            elif attempt.permanent or attempts >= config.max_attempts:
                values, outcome = notification_failed(attempts, attempt.error), "failed"
            else:  # stays PENDING, due again after the backoff
                values = notification_retrying(attempts, attempt.error,
                                               now + timedelta(seconds=config.delay(attempts)))
                outcome = "retrying"
            result = session.execute(update(table).where(
                table.c.tenant_id == row.tenant_id, table.c.id == row.id, table.c.status == PENDING,
                table.c.attempts == row.attempts).values(**values))
            changed = cast("CursorResult[Any]", result).rowcount  # an UPDATE: a cursor's result
            outcomes.append(outcome if changed else None)
    return outcomes


def run(engine: Engine, settings: Settings, now: datetime, dry_run: bool = False,
        on_failed: Callable[[Failure], None] | None = None) -> dict[str, int]:
    """Deliver every due message of every tenant (PENDING, next_attempt_at <= now), holding
    the `notify` pass lock (another runner: TemporaryFailure, exit 75). Channels are served
    concurrently, at most `parallel_channels` at once; the messages of one channel go one
    after the other in (tenant, id) order, so a slow channel delays only its own messages.
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
            _deliver(factory, config, [t.id for t in job.tenants], job.now, summary, on_failed)
    return {**summary, "duration_ms": job.duration_ms}


# How the pass runs (docs/decisions.md, "Concurrent delivery"): the main thread alone talks
# to the database — it reads each channel's due messages a page at a time, hands a page to a
# worker thread, and writes the outcomes the workers report as soon as they are in, in short
# transactions (those that arrived together, in one). Workers only call `deliver` (network,
# processes, SMTP: no database), so SQLite keeps one writer and the pass uses one connection
# for its work on either backend (plus PostgreSQL's lock connection), whatever the width.

@dataclass
class _Lane:
    """The due messages of one channel, every tenant's, in (tenant, id) order."""

    channel: str
    tenants: list[int]  # the tenants with due messages for it, in id order; the first is being read
    after: int = 0  # the last id read of the first tenant

    def next_page(self, factory: sessionmaker[Session], now: datetime) -> list[Row[Any]]:
        """The next `BATCH` due messages (empty: the lane is done)."""
        person = aliased(Person)
        while self.tenants:
            with factory() as session, session.begin():
                page = list(session.execute(
                    select(Notification.id, Notification.tenant_id, Notification.channel, Notification.payload,
                           Notification.attempts, Notification.recipient_id, person.email)
                    .outerjoin(person, person.id == Notification.recipient_id)
                    .where(*_due(self.tenants[0], now), Notification.channel == self.channel,
                           Notification.id > self.after)
                    .order_by(Notification.id).limit(BATCH)).all())
            if len(page) < BATCH:  # that tenant is done
                self.tenants.pop(0)
                self.after = 0
            else:
                self.after = page[-1].id
            if page:
                return page
        return []


@dataclass(frozen=True)
class _Sent:
    row: Row[Any]
    attempt: Attempt


@dataclass(frozen=True)
class _Done:
    channel: str


def _lanes(factory: sessionmaker[Session], tenant_ids: Sequence[int], now: datetime) -> list[_Lane]:
    """A lane per channel with due messages, the channel of the oldest first."""
    lanes: dict[str, _Lane] = {}
    with factory() as session, session.begin():
        for tenant_id in tenant_ids:
            for name in session.scalars(select(Notification.channel).where(*_due(tenant_id, now))
                                        .group_by(Notification.channel).order_by(func.min(Notification.id))):
                lanes.setdefault(name, _Lane(name, [])).tenants.append(tenant_id)
    return list(lanes.values())


def _send_page(channel: Channel | None, name: str, page: list[Row[Any]], now: datetime,
               events: SimpleQueue[_Sent | _Done], stop: threading.Event) -> None:
    """A worker: send the page's messages one after the other, reporting each outcome, then
    that the page is done. No database here."""
    try:
        for row in page:
            if stop.is_set():  # the main thread gave up (the database failed): leave the rest PENDING
                return
            if channel is None:
                attempt = Attempt(False, short_error(f"channel {name} is not configured"))
            else:
                attempt = deliver(channel, Delivery(row.id, row.payload, row.email, now))
            events.put(_Sent(row, attempt))
    finally:
        events.put(_Done(name))


def _deliver(factory: sessionmaker[Session], config: NotifyConfig, tenant_ids: Sequence[int], now: datetime,
             summary: dict[str, int], on_failed: Callable[[Failure], None] | None) -> None:
    """Serve every lane, at most `parallel_channels` at once, round robin by page (a channel
    with a long backlog takes its turn again after the others waiting), each outcome written
    as soon as a worker reports it."""
    waiting = deque(_lanes(factory, tenant_ids, now))
    if not waiting:
        return
    width = min(config.parallel_channels, len(waiting))
    events: SimpleQueue[_Sent | _Done] = SimpleQueue()
    stop = threading.Event()
    busy: dict[str, _Lane] = {}
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="nocctl-notify") as pool:
        try:
            while True:
                while waiting and len(busy) < width:
                    lane = waiting.popleft()
                    page = lane.next_page(factory, now)
                    if not page:
                        continue
                    summary["due"] += len(page)
                    busy[lane.channel] = lane
                    pool.submit(_send_page, config.channels.get(lane.channel), lane.channel, page, now, events, stop)
                if not busy:
                    return
                # Wait for news, then take whatever else is in already: the outcomes reported
                # meanwhile are written together, at once, in one short transaction.
                done: list[tuple[Row[Any], Attempt]] = []
                event: _Sent | _Done | None = events.get()
                while event is not None:
                    if isinstance(event, _Done):
                        waiting.append(busy.pop(event.channel))
                    else:
                        done.append((event.row, event.attempt))
                    event = events.get_nowait() if len(done) < RECORD_BATCH and not events.empty() else None
                if not done:
                    continue
                for (row, attempt), outcome in zip(done, _record(factory, done, config, now), strict=True):
                    if outcome is None:
                        continue
                    summary[outcome] += 1
                    if outcome == "failed" and on_failed is not None:
                        on_failed(Failure(row.id, row.tenant_id, row.channel, row.attempts + 1, attempt.error or ""))
        finally:
            stop.set()  # on an error, workers stop after the message they are sending


# ---------------------------------------------------------------- notify test

TEST_KIND = "test"


@dataclass(frozen=True)
class ChannelTestResult:
    """What `notify test` reports."""

    channel: str
    type: str
    template: str
    delivered: bool
    error: str | None
    notification_id: str
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_test_payload(channel: str, tenant: str, login: str, host: str, now: datetime) -> dict[str, Any]:
    """A message shaped like an escalation's (so a template can be tried on it), clearly a
    test: `kind` "test", `test` true, an alert of type NOCCTL_TEST that says so."""
    at = clock.isoformat(now)
    subject = f"[TEST] nocctl test message for channel {channel}"
    message = f"Test message from nocctl (sent by {login} on {host}): no alert is concerned, nothing to do."
    return {
        "kind": TEST_KIND,
        "test": True,
        "tenant": tenant,
        "subject": subject,
        "text": f"{subject}\n\n{message}\n\nsent {at}\n",
        "at": at,
        "level": None,
        "target": None,
        "resolved_via": None,
        "recipient": None,
        "alert": {"id": None, "type": "NOCCTL_TEST", "severity": "INFO", "message": message, "client": None,
                  "site": None, "dedup_key": None, "first_seen_at": at},
        "sent_by": {"login": login, "host": host},
    }


def send_test(settings: Settings, name: str, now: datetime, to: str | None = None) -> ChannelTestResult:
    """Send one test message through channel `name` now, synchronously, bypassing the outbox
    (nothing is written to the database; its severity filter does not apply). Errors: an
    unknown channel NotFound (exit 3); a bad `[notify]` section, or a template that does not
    render the test message, BadInput (exit 65) naming the key; an smtp channel without `to`
    UsageError (exit 2). A failed delivery is a ChannelTestResult with `delivered` false."""
    import secrets
    import socket
    import time

    from nocctl.services.channels import SmtpChannel
    from nocctl.services.notify_templates import RenderError
    from nocctl.services.rbac import os_login

    channels = settings.notify.channels
    channel = channels.get(name)
    if channel is None:
        known = ", ".join(sorted(channels)) or "none"
        raise NotFound(f"no notification channel {name!r}",
                       f"configured in [notify.channels] of the config file: {known}")
    if isinstance(channel, SmtpChannel):
        if not to:
            raise UsageError(f"channel {name} is an smtp channel: give --to ADDRESS to mail the test to")
        if "@" not in to or any(c in to for c in "\r\n"):
            raise UsageError(f"--to {to!r} is not an email address")
    payload = make_test_payload(name, settings.tenant, os_login(), socket.gethostname(), now)
    delivery = Delivery(f"test-{secrets.token_hex(4)}", payload, to, now)
    try:
        channel.render(delivery)  # a template that cannot render is the config's fault: 65, not a delivery failure
    except RenderError as exc:
        raise BadInput(f"notify.channels.{name}.template: {exc}", "fix the template, then try again") from None
    started = time.monotonic()
    attempt = deliver(channel, delivery)
    return ChannelTestResult(name, channel.kind, channel.template_label, attempt.ok, attempt.error,
                      str(delivery.notification_id), int((time.monotonic() - started) * 1000))


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
