"""The dead-letter table: list what could not be ingested, and re-process it once the cause
(typically an unknown client or site) has been fixed.

Scope: a person with tenant-wide `noc:ingest` sees and retries every reject of the tenant;
one with `noc:ingest` over a client or site (a feed account) sees and retries the rejects
it sent. A retry re-processes each record with its sender's rights, whoever asks for it:
a record refused because its sender may not ingest for a site stays refused when an admin
retries it. Acting as the sender is a delegation of this code path alone (`rbac.delegating`;
the retrier needs no noc:impersonate): the audit rows of what it changes name the sender
as actor, the retrier's login as os_user and the retrier as `impersonated_by`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import NocError
from nocctl.models import IngestReject, Person
from nocctl.services import access, rbac
from nocctl.services.ingest.options import Options, Reject
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.ingest.reader import read_documents
from nocctl.services.rbac import Actor, Caller, authenticate
from nocctl.tunables import DEFAULT_CORRELATION_WINDOW, DEFAULT_INGEST, AutoIncidents
from nocctl.vocabulary import FEED_KINDS

COLUMNS = ("id", "received_at", "source", "line", "input_format", "sender", "reason", "status", "attempts")


def _visible(session: Session, actor: Actor) -> ColumnElement[bool]:
    """The rejects this person may list and retry (exit 77 without any noc:ingest)."""
    may_ingest = access.load(session, actor).require_somewhere(access.INGEST)
    mine = IngestReject.tenant_id == actor.tenant_id
    return mine if may_ingest.tenant_wide else mine & (IngestReject.sender_person_id == actor.person_id)


def _sender(row: IngestReject, username: str | None) -> str:
    if row.sender_system:
        return "system"
    if username:
        return username
    return row.sender_login or ""


def list_rejects(session: Session, caller: Caller, include_retried: bool = False, limit: int = 100) -> list[dict]:
    with session.begin():
        actor = authenticate(session, caller)
        query = (select(IngestReject, Person.username).outerjoin(Person, Person.id == IngestReject.sender_person_id)
                 .where(_visible(session, actor)))
        if not include_retried:
            query = query.where(IngestReject.status == "PENDING")
        rows = session.execute(query.order_by(IngestReject.id.desc()).limit(limit)).all()
        return [{"id": r.id, "received_at": r.received_at, "source": r.source, "line": r.line,
                 "input_format": r.input_format, "sender": _sender(r, username), "sender_login": r.sender_login,
                 "reason": r.reason, "status": r.status, "attempts": r.attempts, "raw": r.raw}
                for r, username in rows]


def retry(session_factory: Callable[[], Session], caller: Caller, ids: Sequence[int] = (),
          correlation_window: int = DEFAULT_CORRELATION_WINDOW, auto_incidents: AutoIncidents | None = None,
          on_reject: Callable[[Reject], None] = lambda r: None,
          max_future_skew: int = DEFAULT_INGEST.max_future_skew) -> dict[str, int]:
    """Re-ingest pending rejects in one transaction: those that go through become RETRIED,
    the others stay PENDING with their new reason and one more attempt. A reject's
    `input_format` is an alert format, or a feed kind (re-processed as that kind)."""
    with session_factory() as session, session.begin(), ExitStack() as stack:
        actor = authenticate(session, caller)
        query = (select(IngestReject, Person.username)
                 .outerjoin(Person, Person.id == IngestReject.sender_person_id)
                 .where(_visible(session, actor), IngestReject.status == "PENDING"))
        if ids:
            query = query.where(IngestReject.id.in_(ids))
        pending = session.execute(query.order_by(IngestReject.id)).all()
        failed: dict[int, str] = {}
        groups: dict[tuple, list[IngestReject]] = {}
        for row, username in pending:
            defaults = row.defaults or {}
            if row.sender_system:
                sender: str | None = None
            elif row.sender_person_id is not None:
                sender = username
            elif row.sender_login is None:
                sender = actor.username  # kept before senders were recorded: the retrier's rights
            else:
                failed[row.id] = "its sender is no longer a NOC operator; re-send it as someone who may ingest it"
                continue
            groups.setdefault((row.input_format, defaults.get("client"), defaults.get("site"), row.sender_system,
                               sender), []).append(row)
        # Each group is re-submitted as its sender: a delegation of this code path only (no
        # noc:impersonate needed), once the retrier's own right to retry was checked above.
        delegation = stack.enter_context(rbac.delegating(actor, "retrying dead letters as their sender"))
        for (fmt, client, site, system, sender), rows in groups.items():
            def record_failure(reject: Reject) -> None:
                failed[int(reject.source.split("#", 1)[1])] = reject.reason
                on_reject(reject)

            documents = (doc for row in rows
                         for doc in read_documents(row.raw.encode().splitlines(keepends=True), f"reject#{row.id}"))
            as_sender = caller.delegated(sender, delegation)
            if fmt in FEED_KINDS:
                from nocctl.services.ingest.feed_ingest import FeedIngest

                options = Options(client=client, site=site, keep_rejects=False, kind=fmt, system=system,
                                  max_future_skew=max_future_skew)
                runner: Ingest = FeedIngest(session_factory, as_sender, options, record_failure)
            else:
                options = Options(fmt, client, site, correlation_window=correlation_window, keep_rejects=False,
                                  incidents=auto_incidents, system=system, max_future_skew=max_future_skew)
                runner = Ingest(session_factory, as_sender, options, record_failure)
            try:
                with session.begin_nested():
                    runner.run(documents, session=session)
            except NocError as exc:  # the sender may no longer ingest at all (inactive, grant revoked)
                for row in rows:
                    failed[row.id] = f"as its sender: {exc}"
        now = clock.now()
        for row, _ in pending:
            if row.id in failed:
                session.execute(update(IngestReject).where(IngestReject.id == row.id).values(
                    reason=failed[row.id], attempts=IngestReject.attempts + 1))
            else:
                session.execute(update(IngestReject).where(IngestReject.id == row.id).values(
                    status="RETRIED", retried_at=now, attempts=IngestReject.attempts + 1))
    return {"retried": len(pending), "accepted": len(pending) - len(failed), "rejected": len(failed)}

