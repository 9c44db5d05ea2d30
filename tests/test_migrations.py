"""Alembic owns the schema: head matches the models, and every migration walks down and up."""
from __future__ import annotations

from datetime import UTC

from sqlalchemy import inspect

from nocctl.db import make_engine
from nocctl.models import Base
from nocctl.services import schema

MODEL_TABLES = set(Base.metadata.tables)


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_empty_database_to_head_matches_models(empty_db_url):
    engine = make_engine(empty_db_url, create=True)
    try:
        schema.upgrade(engine)
        assert schema.current(engine) == schema.head()
        assert tables(engine) == MODEL_TABLES
        assert schema.drift(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(empty_db_url):
    engine = make_engine(empty_db_url, create=True)
    try:
        schema.upgrade(engine)
        schema.downgrade(engine, "base")
        assert schema.current(engine) is None
        assert tables(engine) == set()
        schema.upgrade(engine)
        assert schema.current(engine) == schema.head()
        assert schema.drift(engine) == []
    finally:
        engine.dispose()


def test_each_revision_steps_down_and_up(empty_db_url):
    """Walk the chain one revision at a time, so a broken downgrade in the middle shows."""
    engine = make_engine(empty_db_url, create=True)
    try:
        schema.upgrade(engine)
        revisions = [r.revision for r in schema.history(engine)]  # newest first
        for revision in revisions:
            assert schema.current(engine) == revision
            schema.downgrade(engine, "-1")
        assert schema.current(engine) is None
        for revision in reversed(revisions):
            schema.upgrade(engine, "+1")
            assert schema.current(engine) == revision
    finally:
        engine.dispose()


def test_every_constraint_and_index_is_named(empty_db_url):
    """Unnamed constraints cannot be altered by later migrations (and SQLite batch mode drops
    unnamed CHECKs), so the naming convention must reach all of them."""
    engine = make_engine(empty_db_url, create=True)
    try:
        schema.upgrade(engine)
        inspector = inspect(engine)
        for table in tables(engine):
            for index in inspector.get_indexes(table):
                assert index["name"], (table, index)
            for fk in inspector.get_foreign_keys(table):
                assert fk["name"], (table, fk)
            for check in inspector.get_check_constraints(table):
                assert check["name"], (table, check)
    finally:
        engine.dispose()


def test_tenant_scoped_indexes_lead_with_tenant_id():
    """DESIGN §2: every index that serves a query leads with tenant_id (sharding by tenant)."""
    for table in Base.metadata.tables.values():
        if table.name == "tenant":
            continue
        assert "tenant_id" in table.columns, table.name
        for index in table.indexes:
            assert index.columns[0].name == "tenant_id", (table.name, index.name)


def test_partial_unique_index_allows_one_active_alert_per_key(empty_db_url):
    from datetime import datetime

    import pytest
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from nocctl.models import Alert, BusinessUnit, Tenant

    engine = make_engine(empty_db_url, create=True)
    schema.upgrade(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        with Session(engine) as session, session.begin():
            tenant = Tenant(slug="t", name="t", created_at=now)
            session.add(tenant)
            session.flush()
            client = BusinessUnit(tenant_id=tenant.id, kind="CLIENT", code="C", name="C",
                                  created_at=now, updated_at=now)
            session.add(client)
            session.flush()
            tenant_id, client_id = tenant.id, client.id

        def alert(status: str) -> Alert:
            return Alert(tenant_id=tenant_id, client_id=client_id, alert_type="DEVICE_OFFLINE", severity="HIGH",
                         status=status, message="m", dedup_key="k", first_seen_at=now, last_seen_at=now,
                         created_at=now)

        with Session(engine) as session, session.begin():
            session.add_all([alert("RESOLVED"), alert("RESOLVED"), alert("NEW")])
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(alert("ACKNOWLEDGED"))
    finally:
        engine.dispose()


def test_a_database_behind_the_code_says_to_upgrade(empty_db_url):
    """A schema older than the code is named as such (exit 3), not as an outage."""
    from click.testing import CliRunner

    from nocctl.cli import cli

    engine = make_engine(empty_db_url, create=True)
    runner = CliRunner()
    try:
        db = ["--db", empty_db_url]
        assert runner.invoke(cli, [*db, "init"]).exit_code == 0
        assert runner.invoke(cli, [*db, "org", "client", "add", "ACME", "--name", "Acme"]).exit_code == 0
        record = '{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "m", "client": "ACME"}'
        assert runner.invoke(cli, [*db, "ingest"], input=record).exit_code == 0
        schema.downgrade(engine, "0002")  # before audit rows carried client/site, before preferences
        acked = runner.invoke(cli, [*db, "alert", "ack", "1"])
        assert acked.exit_code == 3
        assert "schema is older than this nocctl; run `nocctl db upgrade`" in acked.stderr
        listed = runner.invoke(cli, [*db, "alert", "list"])
        assert listed.exit_code == 3 and "run `nocctl db upgrade`" in listed.stderr
        assert runner.invoke(cli, [*db, "db", "upgrade"]).exit_code == 0
        again = runner.invoke(cli, [*db, "alert", "ack", "1"])
        assert again.exit_code == 0, again.stderr
    finally:
        engine.dispose()
