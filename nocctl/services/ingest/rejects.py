"""The dead-letter table: list what could not be ingested, and re-process it once the cause
(typically an unknown client or site) has been fixed."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.models import IngestReject
from nocctl.services.ingest.pipeline import Ingest, Options, Reject
from nocctl.services.ingest.reader import read_documents
from nocctl.services.rbac import Caller, authenticate, require
from nocctl.vocabulary import FEED_KINDS

COLUMNS = ("id", "received_at", "source", "line", "input_format", "reason", "status", "attempts")


def list_rejects(session: Session, caller: Caller, include_retried: bool = False, limit: int = 100) -> list[dict]:
    with session.begin():
        actor = authenticate(session, caller)
        require(session, actor, "noc:ingest")
        query = select(IngestReject).where(IngestReject.tenant_id == actor.tenant_id)
        if not include_retried:
            query = query.where(IngestReject.status == "PENDING")
        rows = session.scalars(query.order_by(IngestReject.id.desc()).limit(limit))
        return [{"id": r.id, "received_at": r.received_at, "source": r.source, "line": r.line,
                 "input_format": r.input_format, "reason": r.reason, "status": r.status, "attempts": r.attempts,
                 "raw": r.raw} for r in rows]


def retry(session_factory: Callable[[], Session], caller: Caller, ids: Sequence[int] = (),
          correlation_window: int = 600, auto_incidents=None,
          on_reject: Callable[[Reject], None] = lambda r: None) -> dict[str, int]:
    """Re-ingest pending rejects in one transaction: those that go through become RETRIED,
    the others stay PENDING with their new reason and one more attempt. A reject's
    `input_format` is an alert format, or a feed kind (re-processed as that kind)."""
    with session_factory() as session, session.begin():
        actor = authenticate(session, caller)
        require(session, actor, "noc:ingest")
        query = select(IngestReject).where(IngestReject.tenant_id == actor.tenant_id, IngestReject.status == "PENDING")
        if ids:
            query = query.where(IngestReject.id.in_(ids))
        pending = list(session.scalars(query.order_by(IngestReject.id)))
        failed: dict[int, str] = {}
        groups: dict[tuple, list[IngestReject]] = {}
        for row in pending:
            defaults = row.defaults or {}
            groups.setdefault((row.input_format, defaults.get("client"), defaults.get("site")), []).append(row)
        for (fmt, client, site), rows in groups.items():
            def record_failure(reject: Reject) -> None:
                failed[int(reject.source.split("#", 1)[1])] = reject.reason
                on_reject(reject)

            documents = (doc for row in rows
                         for doc in read_documents(row.raw.encode().splitlines(keepends=True), f"reject#{row.id}"))
            if fmt in FEED_KINDS:
                from nocctl.services.ingest.feeds import FeedIngest

                options = Options(client=client, site=site, keep_rejects=False, kind=fmt)
                FeedIngest(session_factory, caller, options, record_failure).run(documents, session=session)
                continue
            options = Options(fmt, client, site, correlation_window=correlation_window, keep_rejects=False,
                              incidents=auto_incidents)
            Ingest(session_factory, caller, options, record_failure).run(documents, session=session)
        now = clock.now()
        for row in pending:
            if row.id in failed:
                session.execute(update(IngestReject).where(IngestReject.id == row.id).values(
                    reason=failed[row.id], attempts=IngestReject.attempts + 1))
            else:
                session.execute(update(IngestReject).where(IngestReject.id == row.id).values(
                    status="RETRIED", retried_at=now, attempts=IngestReject.attempts + 1))
    return {"retried": len(pending), "accepted": len(pending) - len(failed), "rejected": len(failed)}
