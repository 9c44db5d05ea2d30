"""The retention pass (`nocctl retention run`, DESIGN §6): removes what is only kept for a
while, per tenant, in batches.

Removed when older than their age in `[retention]` (strictly older: a row exactly at the
cutoff now − age stays until the next run):
- `snapshots`: metric snapshots, by `window_end`;
- `event_keys`: replay keys of ingested events, by `seen_at` (an event replayed after its
  key went counts again: keep the age above any replay you may do);
- `notifications`: delivered ones only (SENT, by `sent_at`); PENDING and FAILED messages
  are never removed — they are work to do or evidence of a lost page;
- `rejects`: the dead-letter table, PENDING and RETRIED alike, by `received_at`. A
  dead letter is there to fix a feed; one older than the age would raise stale alerts if
  retried, and `ingest --rejects FILE` keeps the raw records for whoever needs them longer.

Alerts and incidents are never touched unless an archive age is configured
(`alerts = "365d"`, `incidents = "365d"`). Then CLOSED incidents closed before the cutoff,
and RESOLVED alerts resolved before theirs, are written to an NDJSON archive file (gzip by
default), fsync'ed and linked into place, and only then deleted. Every archive of the
pass (all tenants, both kinds) is written before anything at all is deleted, so a full
disk or an unwritable directory (exit 75 or 65) leaves the database as it was and no file
behind. Incidents go first, so their alerts may follow in the same run. An alert stays while an incident that is not
archived links it (with no `incidents` age, any incident), and while an alert of its
correlation group that stays points at it as its parent — deleting it would change rows
that are kept. The audit log is append-only (database triggers refuse DELETE) and is never
touched.

Deletes run in batches of `batch_size` rows (default 10,000), one short transaction each,
so a large backlog never holds one long transaction or lock: ingest goes on meanwhile.
"""
from __future__ import annotations

import contextlib
import errno
import os
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, not_, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased

from nocctl import clock, private
from nocctl.config import Settings
from nocctl.errors import BadInput, TemporaryFailure
from nocctl.lifecycle import CLOSED, RESOLVED, SENT
from nocctl.models import (
    Alert,
    BusinessUnit,
    Incident,
    IncidentAlert,
    IngestEvent,
    IngestReject,
    Notification,
    Snapshot,
)
from nocctl.models.ingest import REJECT_STATUSES
from nocctl.output import access_error, out_of_space, reason, unwritable
from nocctl.services import passes
from nocctl.services.passes import TenantRef
from nocctl.services.retention_archive import ArchiveFile
from nocctl.tunables import RETENTION_PURGED, RetentionPolicy


def load_policy(settings: Settings) -> RetentionPolicy:
    """The `[retention]` settings, checked: a bad value exits 65 naming its key (the
    section as `settings.retention` parses it)."""
    return settings.retention


@dataclass
class Summary:
    now: str = ""
    dry_run: bool = False
    tenants: int = 0
    snapshots: int = 0
    event_keys: int = 0
    notifications: int = 0
    rejects: int = 0
    incidents_archived: int = 0
    alerts_archived: int = 0
    alerts_kept: int = 0  # resolved before the cutoff, kept for a link (incident, group parent)
    archive_files: list[str] = field(default_factory=list)
    cutoffs: dict[str, str | None] = field(default_factory=dict)
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {key: (list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value)
                for key, value in self.__dict__.items()}


# ---------------------------------------------------------------- what goes

def _kept_incident(tenant_id: int, alert_id, incident_cutoff: datetime | None):
    """SQL: an incident that stays links the alert (with no incident age: any incident)."""
    link = aliased(IncidentAlert)
    incident = aliased(Incident)
    query = (select(link.alert_id).join(incident, incident.id == link.incident_id)
             .where(link.tenant_id == tenant_id, link.alert_id == alert_id))
    if incident_cutoff is not None:
        query = query.where(or_(incident.status != CLOSED, incident.closed_at.is_(None),
                                incident.closed_at >= incident_cutoff))
    return exists(query)


def _alert_may_go(alert, tenant_id: int, cutoff: datetime, incident_cutoff: datetime | None):
    """RESOLVED before the cutoff and not linked to an incident that stays."""
    return and_(alert.tenant_id == tenant_id, alert.status == RESOLVED, alert.resolved_at < cutoff,
                not_(_kept_incident(tenant_id, alert.id, incident_cutoff)))


def alert_criteria(tenant_id: int, cutoff: datetime, incident_cutoff: datetime | None):
    """The alerts archived: those that may go, unless an alert that stays names them as its
    correlation parent (deleting them would change it: parent_alert_id ON DELETE SET NULL)."""
    child = aliased(Alert)
    # A child shares its parent's correlation id (the group's): comparing it too lets the
    # (tenant, correlation_id) index find the children (parent_alert_id has no index).
    children = select(child.id).where(child.tenant_id == tenant_id, child.correlation_id == Alert.correlation_id,
                                      child.parent_alert_id == Alert.id,
                                      not_(_alert_may_go(child, tenant_id, cutoff, incident_cutoff)))
    return and_(_alert_may_go(Alert, tenant_id, cutoff, incident_cutoff), not_(exists(children)))


def incident_criteria(tenant_id: int, cutoff: datetime):
    return and_(Incident.tenant_id == tenant_id, Incident.status == CLOSED, Incident.closed_at < cutoff)


def _purge_criteria(kind: str, tenant_id: int, cutoff: datetime):
    """(table, its key column, the condition) of the rows of a purged kind that go."""
    if kind == "snapshots":
        return Snapshot, Snapshot.id, and_(Snapshot.tenant_id == tenant_id, Snapshot.window_end < cutoff)
    if kind == "notifications":
        # sent_at ≥ created_at, so `created_at < cutoff` changes nothing but lets the
        # (tenant, status, created_at) index find the rows.
        return Notification, Notification.id, and_(
            Notification.tenant_id == tenant_id, Notification.status == SENT,
            Notification.created_at < cutoff, Notification.sent_at < cutoff)
    if kind == "rejects":
        return IngestReject, IngestReject.id, and_(
            IngestReject.tenant_id == tenant_id, IngestReject.status.in_(REJECT_STATUSES),
            IngestReject.received_at < cutoff)
    return IngestEvent, IngestEvent.event_key, and_(IngestEvent.tenant_id == tenant_id, IngestEvent.seen_at < cutoff)


# ---------------------------------------------------------------- deleting

def _count(engine: Engine, model, condition) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model).where(condition)) or 0)


def _purge(writer: Engine, model, key, condition, batch: int) -> int:
    """Delete the rows matching `condition`, `batch` rows per statement and transaction."""
    removed = 0
    while True:
        with writer.begin() as conn:
            chosen = select(key).where(condition).limit(batch).scalar_subquery()
            done = conn.execute(delete(model).where(key.in_(chosen))).rowcount
        removed += done
        if done < batch:
            return removed


def _purge_event_keys(writer: Engine, tenant_id: int, cutoff: datetime, batch: int) -> int:
    """Replay keys have no index on seen_at (ingest pays for each index), so walk the
    primary key: each step finds the batch-th old key after the last one and deletes the
    old keys up to it — one pass over the table whatever the backlog."""
    key = IngestEvent.event_key
    old = and_(IngestEvent.tenant_id == tenant_id, IngestEvent.seen_at < cutoff)
    removed, low = 0, None
    while True:
        with writer.begin() as conn:
            after = old if low is None else and_(old, key > low)
            high = conn.scalar(select(key).where(after).order_by(key).offset(batch - 1).limit(1))
            removed += conn.execute(delete(IngestEvent).where(after if high is None else and_(after, key <= high))
                                    ).rowcount
        if high is None:
            return removed
        low = high


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ---------------------------------------------------------------- archiving (the files: retention_archive.py)

def _archive_error(path: Path, exc: OSError) -> Exception:
    """A directory that can never take the archive (permission, read-only file system, a
    file in the way) is a bad setting, exit 65 like the others; no room (disk full, quota,
    file-size limit) or another I/O error is temporary, exit 75. Either way the pass has
    deleted nothing yet: every archive is written before the first delete."""
    what = f"cannot write the archive in {path}: {reason(exc)}"
    if unwritable(exc):
        return BadInput(what, "nothing was deleted; make retention.archive_dir a directory nocctl may write to "
                              "and run again")
    if out_of_space(exc):
        return TemporaryFailure(what, f"nothing was deleted; free space in {path} (or set retention.archive_dir "
                                      "to a larger file system) and run again")
    return TemporaryFailure(what, "nothing was deleted; run again once the device is fixed")


def _prepare_directory(path: Path) -> None:
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
        private.make_dirs(path)  # missing directories 0700 whatever the umask
        if not os.access(path, os.W_OK | os.X_OK):
            raise access_error(str(path))  # read-only file system, else permission denied
    except OSError as exc:
        raise _archive_error(path, exc) from None


def _records(conn: Connection, kind: str, ids: Sequence[int], codes: dict[int, str]) -> list[dict[str, Any]]:
    """The full rows of a chunk, with the codes of their client and site (units can be
    renamed or removed later) and, for incidents, the alerts they wrapped."""
    table = Incident.__table__ if kind == "incidents" else Alert.__table__
    rows = [dict(row._mapping) for row in conn.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id))]
    links: dict[int, list[int]] = {}
    if kind == "incidents":
        for incident_id, alert_id in conn.execute(
                select(IncidentAlert.incident_id, IncidentAlert.alert_id)
                .where(IncidentAlert.incident_id.in_(ids)).order_by(IncidentAlert.alert_id)):
            links.setdefault(incident_id, []).append(alert_id)
    for row in rows:
        row["client_code"] = codes.get(row["client_id"])
        row["site_code"] = codes.get(row["site_id"])
        if kind == "incidents":
            row["alert_ids"] = links.get(row["id"], [])
    return rows


@dataclass
class _Archived:
    """An archive file made durable, and the ids of the rows in it, still to be deleted."""
    kind: str
    tenant_id: int
    condition: Any
    ids: array
    path: Path


def _archive_conditions(policy: RetentionPolicy, tenant_id: int, now: datetime) -> list[tuple[str, Any]]:
    """(kind, condition) of the archived kinds with an age, incidents first. The alerts'
    condition asks whether a linking incident *stays*, so it is the same before and after
    the incidents go: a dry run counts what a run does, and the alerts' ids may be chosen
    before any incident is deleted."""
    cutoffs = policy.cutoffs(now)
    incident_cutoff, alert_cutoff = cutoffs["incidents"], cutoffs["alerts"]
    conditions = []
    if incident_cutoff is not None:
        conditions.append(("incidents", incident_criteria(tenant_id, incident_cutoff)))
    if alert_cutoff is not None:
        conditions.append(("alerts", alert_criteria(tenant_id, alert_cutoff, incident_cutoff)))
    return conditions


def _write_archive(engine: Engine, policy: RetentionPolicy, kind: str, tenant: TenantRef, condition, now: datetime
                   ) -> _Archived | None:
    """Choose the rows that go, write them all to an archive file and make it durable.
    Deletes nothing: an error (exit 65 or 75) leaves no file of this archive behind."""
    model = Incident if kind == "incidents" else Alert
    with engine.connect() as conn:
        ids = array("q", conn.scalars(select(model.id).where(condition).order_by(model.id)))
        if not ids:
            return None
        codes = dict(conn.execute(select(BusinessUnit.id, BusinessUnit.code)
                                  .where(BusinessUnit.tenant_id == tenant.id)).all())
    try:
        archive = ArchiveFile(policy.archive_dir, kind, tenant.slug, now, policy.gzip)
    except OSError as exc:
        raise _archive_error(policy.archive_dir, exc) from None
    try:
        for chunk in _chunks(ids, policy.batch_size):
            with engine.connect() as conn:
                for record in _records(conn, kind, list(chunk), codes):
                    archive.write(record)
        path = archive.commit()
    except OSError as exc:
        archive.abandon()
        raise _archive_error(policy.archive_dir, exc) from None
    except BaseException:
        archive.abandon()
        raise
    return _Archived(kind, tenant.id, condition, ids, path)


def _write_archives(engine: Engine, policy: RetentionPolicy, tenants: Sequence[TenantRef], now: datetime
                    ) -> list[_Archived]:
    """Every archive of the pass, every tenant, written and fsync'ed before anything at all
    is deleted: a full disk or an unwritable directory fails the pass with the database
    untouched. The files already made are removed then (nothing was deleted against them;
    left behind, a re-run would write the same rows again under `-2`)."""
    written: list[_Archived] = []
    try:
        for tenant in tenants:
            for kind, condition in _archive_conditions(policy, tenant.id, now):
                archived = _write_archive(engine, policy, kind, tenant, condition, now)
                if archived is not None:
                    written.append(archived)
    except BaseException:
        for archived in written:
            with contextlib.suppress(OSError):
                archived.path.unlink(missing_ok=True)
        raise
    return written


def _delete_archived(writer: Engine, archived: _Archived, batch: int) -> int:
    """Delete the rows of a durable archive in batches; each delete re-checks the condition,
    so a row that stopped qualifying meanwhile stays (and is merely also in the archive)."""
    model = Incident if archived.kind == "incidents" else Alert
    removed = 0
    for chunk in _chunks(archived.ids, batch):
        with writer.begin() as conn:
            removed += conn.execute(delete(model).where(model.id.in_(list(chunk)), archived.condition)).rowcount
    return removed


# ---------------------------------------------------------------- the pass

def _tenant_pass(engine: Engine, writer: Engine, policy: RetentionPolicy, tenant: TenantRef, now: datetime,
                 dry_run: bool, archives: Sequence[_Archived], summary: Summary) -> None:
    cutoffs = policy.cutoffs(now)
    for kind in RETENTION_PURGED:
        cutoff = cutoffs[kind]
        if cutoff is None:
            continue
        model, key, condition = _purge_criteria(kind, tenant.id, cutoff)
        if dry_run:
            done = _count(engine, model, condition)
        elif kind == "event_keys":
            done = _purge_event_keys(writer, tenant.id, cutoff, policy.batch_size)
        else:
            done = _purge(writer, model, key, condition, policy.batch_size)
        setattr(summary, kind, getattr(summary, kind) + done)
    alert_cutoff = cutoffs["alerts"]
    for kind, condition in _archive_conditions(policy, tenant.id, now):
        resolved = 0
        if kind == "alerts":  # counted before they go: the rest were kept for a link
            resolved = _count(engine, Alert, and_(Alert.tenant_id == tenant.id, Alert.status == RESOLVED,
                                                  Alert.resolved_at < alert_cutoff))
        if dry_run:
            going = _count(engine, Incident if kind == "incidents" else Alert, condition)
        else:
            going = sum(_delete_archived(writer, archived, policy.batch_size) for archived in archives
                        if archived.kind == kind)
        if kind == "incidents":
            summary.incidents_archived += going
        else:
            summary.alerts_archived += going
            summary.alerts_kept += resolved - going


def run(engine: Engine, settings: Settings, now: datetime, dry_run: bool = False) -> Summary:
    """The retention pass over every tenant, under the `retention` pass lock (a second
    runner: exit 75; a dry run takes it too). A dry run counts what would go and changes
    nothing (no files either). Cutoffs and archive names are of `now`.

    With archive ages, every archive file is written and made durable first; only then does
    anything go (purges and archived rows alike), so a failed write deletes nothing."""
    policy = settings.retention  # bad settings fail before anything happens
    summary = Summary(now=clock.isoformat(now) or "", dry_run=dry_run,
                      cutoffs={kind: clock.isoformat(c) for kind, c in policy.cutoffs(now).items()})
    with passes.running(engine, "retention", now, dry_run) as job:
        archives: list[_Archived] = []
        if policy.archives and not dry_run:
            _prepare_directory(policy.archive_dir)
            archives = _write_archives(engine, policy, job.tenants, job.now)
            summary.archive_files = [str(archived.path) for archived in archives]
        for tenant in job.tenants:
            summary.tenants += 1
            _tenant_pass(engine, job.writer, policy, tenant, job.now, dry_run,
                         [archived for archived in archives if archived.tenant_id == tenant.id], summary)
    summary.duration_ms = job.duration_ms
    return summary
