"""What the references of alert and ingest_event guarantee, whoever writes: the tenant,
client and site an alert names exist (on PostgreSQL: and are its tenant's), an event names
a tenant, a unit that alerts name is not deleted, and a tenant's deletion takes its alerts
and events along. SQLite checks them with foreign keys; PostgreSQL once per statement
(migration 0014), which ingest pays far less for."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conftest import BACKEND
from nocctl.models import BusinessUnit, Tenant

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALERT = ("INSERT INTO alert (tenant_id, client_id, site_id, alert_type, severity, status, message, dedup_key,"
         " first_seen_at, last_seen_at, created_at, duplicate_count)"
         " VALUES (:tenant, :client, :site, 'DEVICE_OFFLINE', 'HIGH', 'NEW', 'm', :key, :now, :now, :now, 0)")


@pytest.fixture
def org(engine):
    """Two tenants, each with a client and a site: {name: id}."""
    ids = {}
    with Session(engine) as session, session.begin():
        for slug in ("one", "two"):
            tenant = Tenant(slug=slug, name=slug, created_at=NOW)
            session.add(tenant)
            session.flush()
            client = BusinessUnit(tenant_id=tenant.id, kind="CLIENT", code=f"{slug}-c", name="c",
                                  created_at=NOW, updated_at=NOW)
            session.add(client)
            session.flush()
            site = BusinessUnit(tenant_id=tenant.id, kind="SITE", code=f"{slug}-s", name="s", parent_id=client.id,
                                client_id=client.id, created_at=NOW, updated_at=NOW)
            session.add(site)
            session.flush()
            ids |= {slug: tenant.id, f"{slug}-client": client.id, f"{slug}-site": site.id}
    return ids


def write(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), {"now": NOW, **params})


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_an_alert_of_existing_units_is_written(engine, org):
    write(engine, ALERT, tenant=org["one"], client=org["one-client"], site=org["one-site"], key="k")
    write(engine, ALERT, tenant=org["one"], client=org["one-client"], site=None, key="client-level")
    assert count(engine, "SELECT count(*) FROM alert") == 2


@pytest.mark.parametrize("column", ["client", "site", "tenant"])
def test_an_alert_naming_a_unit_or_tenant_that_does_not_exist_is_refused(engine, org, column):
    values = {"tenant": org["one"], "client": org["one-client"], "site": org["one-site"]} | {column: 987654}
    with pytest.raises(IntegrityError):
        write(engine, ALERT, key="k", **values)
    assert count(engine, "SELECT count(*) FROM alert") == 0


def test_one_bad_row_refuses_the_whole_multi_row_statement(engine, org):
    """The check runs once over every row a statement inserted: a bad row anywhere in it fails it."""
    rows = ", ".join(f"(:tenant, :client, :site{i}, 'T', 'LOW', 'NEW', 'm', 'k{i}', :now, :now, :now, 0)"
                     for i in range(3))
    sql = ("INSERT INTO alert (tenant_id, client_id, site_id, alert_type, severity, status, message, dedup_key,"
           f" first_seen_at, last_seen_at, created_at, duplicate_count) VALUES {rows}")
    with pytest.raises(IntegrityError):
        write(engine, sql, tenant=org["one"], client=org["one-client"], site0=org["one-site"], site1=987654,
              site2=org["one-site"])
    assert count(engine, "SELECT count(*) FROM alert") == 0


def test_moving_an_alert_to_a_unit_that_does_not_exist_is_refused(engine, org):
    write(engine, ALERT, tenant=org["one"], client=org["one-client"], site=org["one-site"], key="k")
    with pytest.raises(IntegrityError):
        write(engine, "UPDATE alert SET site_id = 987654")
    with pytest.raises(IntegrityError):
        write(engine, "UPDATE alert SET client_id = 987654")
    write(engine, "UPDATE alert SET site_id = NULL, message = 'moved to its client'")
    assert count(engine, "SELECT count(*) FROM alert WHERE site_id IS NULL") == 1


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's foreign keys do not compare tenants")
def test_postgresql_refuses_an_alert_on_another_tenants_unit(engine, org):
    with pytest.raises(IntegrityError, match="not a unit of its tenant"):
        write(engine, ALERT, tenant=org["one"], client=org["two-client"], site=None, key="k")
    write(engine, ALERT, tenant=org["one"], client=org["one-client"], site=org["one-site"], key="k")
    with pytest.raises(IntegrityError, match="not a unit of its tenant"):
        write(engine, "UPDATE alert SET site_id = :site", site=org["two-site"])


def test_an_event_of_no_tenant_is_refused(engine, org):
    with pytest.raises(IntegrityError):
        write(engine, "INSERT INTO ingest_event (tenant_id, event_key, seen_at) VALUES (987654, :key, :now)",
              key=b"0123456789abcdef")
    write(engine, "INSERT INTO ingest_event (tenant_id, event_key, seen_at) VALUES (:tenant, :key, :now)",
          tenant=org["one"], key=b"0123456789abcdef")
    assert count(engine, "SELECT count(*) FROM ingest_event") == 1


def test_a_unit_that_alerts_name_cannot_be_deleted(engine, org):
    write(engine, ALERT, tenant=org["one"], client=org["one-client"], site=org["one-site"], key="k")
    for unit in ("one-site", "one-client"):
        with pytest.raises(IntegrityError):
            write(engine, "DELETE FROM business_unit WHERE id = :id", id=org[unit])
    write(engine, "DELETE FROM business_unit WHERE id = :id", id=org["two-site"])  # named by no alert
    assert count(engine, "SELECT count(*) FROM business_unit") == 3


def test_deleting_a_tenant_deletes_its_alerts_and_events_only(engine, org):
    for slug in ("one", "two"):
        write(engine, ALERT, tenant=org[slug], client=org[f"{slug}-client"], site=org[f"{slug}-site"], key="k")
        write(engine, "INSERT INTO ingest_event (tenant_id, event_key, seen_at) VALUES (:tenant, :key, :now)",
              tenant=org[slug], key=b"0123456789abcdef")
    write(engine, "DELETE FROM tenant WHERE id = :id", id=org["one"])
    assert count(engine, "SELECT count(*) FROM alert") == 1
    assert count(engine, "SELECT count(*) FROM ingest_event") == 1
    assert count(engine, f"SELECT count(*) FROM alert WHERE tenant_id = {org['two']}") == 1
