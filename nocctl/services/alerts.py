"""Reading alerts: listing with filters, and one alert in full (DESIGN §3, §4)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from nocctl.errors import NotFound
from nocctl.models import Alert, BusinessUnit, Person
from nocctl.services.rbac import Actor, Caller, authenticate, visible

LIST_COLUMNS = ("id", "alert_type", "severity", "status", "client", "site", "message", "entity_type", "entity_id",
                "dedup_key", "duplicate_count", "first_seen_at", "last_seen_at", "correlation_id")
TABLE_COLUMNS = ("id", "severity", "status", "alert_type", "client", "site", "entity_id", "duplicate_count",
                 "first_seen_at", "message")
PERSON_FIELDS = ("acknowledged_by", "assigned_to", "escalated_to", "resolved_by")


def _query(actor: Actor):
    client = aliased(BusinessUnit)
    site = aliased(BusinessUnit)
    people = {name: aliased(Person) for name in PERSON_FIELDS}
    query = (
        select(Alert, client.code.label("client"), site.code.label("site"),
               *(p.username.label(name) for name, p in people.items()))
        .join(client, client.id == Alert.client_id)
        .outerjoin(site, site.id == Alert.site_id)
        .where(Alert.tenant_id == actor.tenant_id, visible(actor, Alert.client_id, Alert.site_id))
    )
    for name, person in people.items():
        query = query.outerjoin(person, person.id == getattr(Alert, name))
    return query, client, site


def _row(row) -> dict[str, Any]:
    alert: Alert = row[0]
    data = {column.key: getattr(alert, column.key) for column in Alert.__mapper__.column_attrs}
    data["metadata"] = data.pop("metadata_")
    for name in ("tenant_id", "client_id", "site_id"):
        data.pop(name)
    data.update(client=row.client, site=row.site, **{name: getattr(row, name) for name in PERSON_FIELDS})
    return data


def list_alerts(session: Session, caller: Caller, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                types: Sequence[str] = (), client: str | None = None, site: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 100) -> list[dict]:
    """Visible alerts, newest first by first_seen_at; `since/until` bound first_seen_at."""
    with session.begin():
        actor = authenticate(session, caller)
        query, client_unit, site_unit = _query(actor)
        if statuses:
            query = query.where(Alert.status.in_([s.upper() for s in statuses]))
        if severities:
            query = query.where(Alert.severity.in_([s.upper() for s in severities]))
        if types:
            query = query.where(Alert.alert_type.in_([t.upper() for t in types]))
        if client:
            query = query.where(client_unit.code == client)
        if site:
            query = query.where(site_unit.code == site)
        if since:
            query = query.where(Alert.first_seen_at >= since)
        if until:
            query = query.where(Alert.first_seen_at < until)
        query = query.order_by(Alert.first_seen_at.desc(), Alert.id.desc()).limit(limit)
        return [_row(r) for r in session.execute(query)]


def show_alert(session: Session, caller: Caller, alert_id: int) -> dict:
    """One visible alert with every field and its correlation group."""
    with session.begin():
        actor = authenticate(session, caller)
        query, _, _ = _query(actor)
        row = session.execute(query.where(Alert.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert {alert_id}", "see `nocctl alert list`")
        data = _row(row)
        group = []
        if data["correlation_id"]:
            members, _, _ = _query(actor)
            members = members.where(Alert.correlation_id == data["correlation_id"]).order_by(Alert.first_seen_at, Alert.id)
            group = [{k: m[k] for k in ("id", "alert_type", "severity", "status", "site", "first_seen_at")}
                     for m in (_row(r) for r in session.execute(members))]
        data["correlation_group"] = group
        return data
