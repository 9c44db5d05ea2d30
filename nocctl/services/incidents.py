"""Incidents: wrap alerts, carry an SLA target, move NEW → ACKNOWLEDGED → ASSIGNED →
IN_PROGRESS → RESOLVED → CLOSED (steps may be skipped forward; RESOLVED may reopen to
IN_PROGRESS; CLOSED is final). Opened by hand, or automatically by ingest for a new
correlation group once one of its alerts reaches the configured severity."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound
from nocctl.lifecycle import CLOSED, INCIDENT_MOVES, NEW, RESOLVED, incident_fields
from nocctl.models import Alert, BusinessUnit, Incident, IncidentAlert, Person
from nocctl.rawsql import RawSQL, columns_and_types
from nocctl.services import access, audit
from nocctl.services import prefs as preferences
from nocctl.services.access import Scope
from nocctl.services.alerts import person_id
from nocctl.services.rbac import Actor, Caller
from nocctl.services.workflow import Outcome, move_each
from nocctl.tunables import AutoIncidents, Sla
from nocctl.vocabulary import SEVERITIES, SEVERITY_RANK

INCIDENTS = Incident.__table__
LINK_HEAD, LINK_TYPES = columns_and_types(IncidentAlert.__table__, ("incident_id", "alert_id", "tenant_id", "added_at"))
LIST_COLUMNS = ("id", "title", "severity", "status", "client", "site", "created_at", "sla_target", "assigned_to",
                "alerts", "correlation_id", "ticket_ref", "work_order_ref", "runbook_link")
TABLE_COLUMNS = ("id", "severity", "status", "title", "client", "site", "created_at", "sla_target", "assigned_to",
                 "alerts")


# ---------------------------------------------------------------- creating

def create(session: Session, caller: Caller, title: str, alert_ids: Sequence[int] = (), severity: str | None = None,
           runbook: str | None = None, ticket: str | None = None, work_order: str | None = None,
           client: str | None = None, site: str | None = None, sla: Sla | None = None) -> dict:
    if not title.strip():
        raise BadInput("an incident needs a --title")
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        alerts = _visible_alerts(session, scope, alert_ids)
        client_id, site_id = _place(session, scope, alerts, client, site)
        scope.require("noc:ack_alerts", client_id, site_id, what="this incident's scope")
        if severity is None:
            if not alerts:
                raise BadInput("give --severity, or --alert to take it from the alerts")
            severity = min((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__)
        severity = severity.upper()
        if severity not in SEVERITIES:
            raise BadInput(f"unknown severity {severity!r}", "one of " + ", ".join(SEVERITIES))
        target = sla.seconds(severity) if sla is not None else None
        incident = Incident(
            tenant_id=actor.tenant_id, title=title.strip(), severity=severity, status=NEW, client_id=client_id,
            site_id=site_id, correlation_id=alerts[0].correlation_id if alerts else None, created_at=now,
            created_by=actor.person_id, sla_target=now + timedelta(seconds=target) if target else None,
            runbook_link=runbook, ticket_ref=ticket, work_order_ref=work_order)
        session.add(incident)
        session.flush()
        _link(session, actor.tenant_id, incident.id, [a.id for a in alerts], now)
        audit.record(session, actor, "INCIDENT_CREATE", "incident", incident.id,
                     {"title": incident.title, "severity": severity, "alerts": [a.id for a in alerts]},
                     client_id, site_id)
        return _describe(session, scope, incident.id)


def _visible_alerts(session: Session, scope: Scope, alert_ids: Sequence[int]) -> list:
    if not alert_ids:
        return []
    rows = session.execute(
        select(Alert.id, Alert.client_id, Alert.site_id, Alert.severity, Alert.correlation_id)
        .where(Alert.tenant_id == scope.actor.tenant_id, Alert.id.in_(alert_ids),
               scope.visible(Alert.client_id, Alert.site_id))).all()
    missing = sorted(set(alert_ids) - {r.id for r in rows})
    if missing:
        raise NotFound(f"no alert {', '.join(map(str, missing))}", "see `nocctl alert list`")
    return sorted(rows, key=lambda r: alert_ids.index(r.id))


def _place(session: Session, scope: Scope, alerts: list, client: str | None, site: str | None):
    """The incident's client/site: the options (a unit the caller may not know of is "not
    found", like a missing one; one they know but may not act on, 77), else what all its
    alerts share."""
    if client or site:
        unit = scope.unit(session, "SITE" if site else "CLIENT", site or client or "", "noc:ack_alerts")
        return unit.client_id, unit.site_id
    clients = {a.client_id for a in alerts}
    sites = {a.site_id for a in alerts}
    client_id = clients.pop() if len(clients) == 1 else None
    site_id = sites.pop() if len(sites) == 1 and client_id is not None else None
    return client_id, site_id


def _link(session: Session, tenant_id: int, incident_id: int, alert_ids: Sequence[int], now: datetime) -> list[int]:
    """Link alerts not linked yet; returns the ids linked now."""
    if not alert_ids:
        return []
    present = set(session.scalars(select(IncidentAlert.alert_id).where(
        IncidentAlert.incident_id == incident_id, IncidentAlert.alert_id.in_(alert_ids))))
    new = [a for a in dict.fromkeys(alert_ids) if a not in present]
    if new:
        session.execute(insert(IncidentAlert), [
            {"incident_id": incident_id, "alert_id": a, "tenant_id": tenant_id, "added_at": now} for a in new])
    return new


def auto_open(session: Session, actor: Actor, created: Sequence[tuple], settings: AutoIncidents,
              now: datetime) -> list[audit.Entry]:
    """For alerts just created by ingest — (id, correlation_id, severity, client_id, site_id,
    title) — link each to its group's open incident, and open one for a group that has none
    once one of its alerts is severe enough. A few set-based statements per batch; returns
    the audit entries to write with the batch."""
    groups: dict[str, list] = {}
    for row in created:
        if row[1]:
            groups.setdefault(row[1], []).append(row)
    if not groups:
        return []
    existing: dict[str | None, int] = {}  # the column is nullable; IN (keys) leaves no None
    keys = list(groups)
    for i in range(0, len(keys), 500):
        existing.update(session.execute(select(Incident.correlation_id, func.min(Incident.id)).where(
            Incident.tenant_id == actor.tenant_id, Incident.correlation_id.in_(keys[i:i + 500]),
            Incident.status != CLOSED).group_by(Incident.correlation_id)).all())
    threshold = SEVERITY_RANK[settings.min_severity.upper()]
    opening = {}
    for correlation_id, rows in groups.items():
        severe = [r for r in rows if SEVERITY_RANK[r[2]] <= threshold]
        if correlation_id not in existing and severe:
            opening[correlation_id] = min(severe, key=lambda r: (SEVERITY_RANK[r[2]], r[0]))
    entries: list[audit.Entry] = []
    links: list[tuple[int, int]] = []
    if opening:
        params = []
        for correlation_id, first in opening.items():
            target = settings.sla.seconds(first[2])
            params.append({"tenant_id": actor.tenant_id, "title": first[5][:300], "severity": first[2], "status": NEW,
                           "client_id": first[3], "site_id": first[4], "correlation_id": correlation_id,
                           "created_at": now, "created_by": actor.person_id,
                           "sla_target": now + timedelta(seconds=target) if target else None})
        made = session.execute(insert(INCIDENTS).returning(INCIDENTS.c.id, INCIDENTS.c.correlation_id,
                                                           sort_by_parameter_order=True), params).all()
        members: dict[str | None, list[int]] = {}  # as `existing`: no None key
        ids = list(opening)
        for i in range(0, len(ids), 500):  # the whole group: members from earlier batches too
            for alert_id, member_of in session.execute(select(Alert.id, Alert.correlation_id).where(
                    Alert.tenant_id == actor.tenant_id, Alert.correlation_id.in_(ids[i:i + 500]),
                    Alert.status != RESOLVED)):
                members.setdefault(member_of, []).append(alert_id)
        for incident_id, correlation_id in made:
            first = opening[correlation_id]
            group = sorted(members.get(correlation_id, []))
            links.extend((incident_id, a) for a in group)
            entries.append(audit.Entry("INCIDENT_CREATE", "incident", incident_id,
                                       {"automatic": True, "correlation_id": correlation_id, "alerts": group},
                                       first[3], first[4]))
    for correlation_id, rows in groups.items():
        incident_id = existing.get(correlation_id)
        if incident_id is not None:
            links.extend((incident_id, r[0]) for r in rows)
            entries.append(audit.Entry("INCIDENT_ADD_ALERT", "incident", incident_id,
                                       {"automatic": True, "alerts": [r[0] for r in rows]}, rows[0][3], rows[0][4]))
    if links:  # on the DBAPI cursor: a batch links thousands
        sql = RawSQL(session)
        added_at = sql.ts(now)
        sql.insert(LINK_HEAD, LINK_TYPES, [(i, a, actor.tenant_id, added_at) for i, a in links])
    return entries


# ---------------------------------------------------------------- moving

def act(session: Session, caller: Caller, action: str, ids: Sequence[int], assignee: str | None = None,
        note: str | None = None) -> list[Outcome]:
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        target_person = person_id(session, actor.tenant_id, assignee) if assignee else None
        query = select(Incident.id, Incident.status, Incident.client_id, Incident.site_id, Incident.created_at,
                       Incident.resolved_at).where(Incident.tenant_id == actor.tenant_id, _visible(scope))
        targets = ((str(i), session.execute(query.where(Incident.id == i)).first()) for i in ids)
        details = {k: v for k, v in (("assignee", assignee), ("note", note)) if v}
        return move_each(session, scope, INCIDENTS, INCIDENT_MOVES[action], targets,
                         lambda row: incident_fields(action, row.status, row.created_at, row.resolved_at, now,
                                                     actor.person_id, target_person, note), details)


def add_alerts(session: Session, caller: Caller, incident_id: int, alert_ids: Sequence[int]) -> dict:
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        row = session.execute(select(Incident.id, Incident.status, Incident.client_id, Incident.site_id)
                              .where(Incident.tenant_id == actor.tenant_id, Incident.id == incident_id,
                                     _visible(scope))).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}", "see `nocctl incident list`")
        if row.status == CLOSED:
            raise Conflict(f"incident {incident_id} is {CLOSED}: no alerts can be added")
        scope.require("noc:ack_alerts", row.client_id, row.site_id, what=f"incident {incident_id}")
        alerts = _visible_alerts(session, scope, alert_ids)
        linked = _link(session, actor.tenant_id, incident_id, [a.id for a in alerts], now)
        if linked:
            audit.record(session, actor, "INCIDENT_ADD_ALERT", "incident", incident_id, {"alerts": linked},
                         row.client_id, row.site_id)
        return {"incident": incident_id, "linked": linked, "already_linked": sorted(set(alert_ids) - set(linked))}


# ---------------------------------------------------------------- reading

def _visible(scope: Scope):
    """Incidents of visible clients/sites; one without a client needs tenant-wide view."""
    return scope.visible(Incident.client_id, Incident.site_id)


def _query(scope: Scope):
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    assignee = aliased(Person)
    # Only the linked alerts the actor may see: a total must not betray another client's alerts.
    count = (select(func.count()).select_from(IncidentAlert).join(Alert, Alert.id == IncidentAlert.alert_id)
             .where(IncidentAlert.incident_id == Incident.id, scope.visible(Alert.client_id, Alert.site_id))
             .correlate(Incident).scalar_subquery())
    query = (select(Incident, client.code.label("client"), site.code.label("site"),
                    assignee.username.label("assigned_to_name"), count.label("alerts"))
             .outerjoin(client, client.id == Incident.client_id)
             .outerjoin(site, site.id == Incident.site_id)
             .outerjoin(assignee, assignee.id == Incident.assigned_to)
             .where(Incident.tenant_id == scope.actor.tenant_id, _visible(scope)))
    return query, client


def _row(row) -> dict:
    incident: Incident = row[0]
    data = {column.key: getattr(incident, column.key) for column in Incident.__mapper__.column_attrs}
    for name in ("tenant_id", "client_id", "site_id", "created_by", "acknowledged_by", "resolved_by"):
        data.pop(name)
    data.update(client=row.client, site=row.site, assigned_to=row.assigned_to_name, alerts=row.alerts)
    return data


def list_incidents(session: Session, caller: Caller, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                   client: str | None = None, since: datetime | None = None, until: datetime | None = None,
                   limit: int = 100, use_prefs: bool = False):
    """Visible incidents, newest first; returns (rows, the preferences applied). With
    `use_prefs`, the caller's client and severity preferences fill in what is not given
    (their status preference names alert statuses and does not apply here)."""
    with session.begin():
        scope = access.for_caller(session, caller)
        applied = preferences.NO_PREFS
        if use_prefs:
            applied = preferences.load(session, scope.actor).for_listing(bool(client), bool(severities), True)
            client = client or applied.client
            severities = severities or applied.severities
        query, client_unit = _query(scope)
        if statuses:
            query = query.where(Incident.status.in_([s.upper() for s in statuses]))
        if severities:
            query = query.where(Incident.severity.in_([s.upper() for s in severities]))
        if client:
            query = query.where(client_unit.code == client)
        if since:
            query = query.where(Incident.created_at >= since)
        if until:
            query = query.where(Incident.created_at < until)
        query = query.order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit)
        return [_row(r) for r in session.execute(query)], applied


def _describe(session: Session, scope: Scope, incident_id: int) -> dict:
    query, _ = _query(scope)
    row = session.execute(query.where(Incident.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}", "see `nocctl incident list`")
    data = _row(row)
    site = aliased(BusinessUnit)
    data["linked_alerts"] = [dict(r._mapping) for r in session.execute(
        select(Alert.id, Alert.alert_type, Alert.severity, Alert.status, site.code.label("site"), Alert.first_seen_at)
        .join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
        .outerjoin(site, site.id == Alert.site_id)
        .where(IncidentAlert.incident_id == incident_id, scope.visible(Alert.client_id, Alert.site_id))
        .order_by(Alert.first_seen_at, Alert.id))]
    return data


def show(session: Session, caller: Caller, incident_id: int) -> dict:
    with session.begin():
        return _describe(session, access.for_caller(session, caller), incident_id)
