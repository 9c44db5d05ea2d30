"""PostgreSQL: alert's and ingest_event's references checked once per statement, not per row

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:00:00

Ingest writes a row to `ingest_event` for every event and one to `alert` for every new key;
a foreign key checks each row with a query of its own (PostgreSQL runs one trigger per row),
which measured 0.4 s of server time per 100,000 events and 0.15 s per 20,000 new alerts
(benchmarks/RESULTS.md, "Ingest"). On PostgreSQL this revision replaces the four foreign keys
`alert.tenant_id`, `alert.client_id`, `alert.site_id` and `ingest_event.tenant_id` by checks
that keep what they guaranteed:

- after each INSERT statement, one query over the rows it inserted (a transition table)
  refuses an alert whose client or site is not a unit of the alert's own tenant (stricter
  than the foreign keys, which allowed another tenant's unit), or an event of no tenant;
- a row trigger refuses an UPDATE that moves an alert to such a unit (it fires only when
  client_id or site_id change);
- deleting a business unit that an alert names is refused (the foreign keys' NO ACTION), and
  deleting a tenant deletes its alerts and events first (their ON DELETE CASCADE).

The functions are SECURITY DEFINER with the schema pinned, as the foreign keys' own checks
ignore row-level security and the caller's search_path. SQLite keeps its foreign keys: there
a check is a lookup in the same B-tree page cache and measured nothing. A downgrade drops the
checks and adds the foreign keys back (validating every row).
"""
from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# (table, column, referred table, ON DELETE) of the foreign keys replaced; the names are the
# naming convention's, as nocctl.models.base.PG_STATEMENT_CHECKED lists them.
REPLACED = [
    ('alert', 'tenant_id', 'tenant', 'CASCADE'),
    ('alert', 'client_id', 'business_unit', None),
    ('alert', 'site_id', 'business_unit', None),
    ('ingest_event', 'tenant_id', 'tenant', 'CASCADE'),
]
DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT"

CHECKS = [
    f"""CREATE FUNCTION alert_units_of_its_tenant() RETURNS trigger {DEFINER} AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM written w
                   WHERE NOT EXISTS (SELECT 1 FROM business_unit u WHERE u.id = w.client_id AND u.tenant_id = w.tenant_id)
                      OR (w.site_id IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM business_unit u WHERE u.id = w.site_id AND u.tenant_id = w.tenant_id))) THEN
            RAISE foreign_key_violation USING MESSAGE = 'alert names a client or site that is not a unit of its tenant';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER alert_units_of_its_tenant AFTER INSERT ON alert REFERENCING NEW TABLE AS written
        FOR EACH STATEMENT EXECUTE FUNCTION alert_units_of_its_tenant()""",
    f"""CREATE FUNCTION alert_moved_units_of_its_tenant() RETURNS trigger {DEFINER} AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM business_unit u WHERE u.id = NEW.client_id AND u.tenant_id = NEW.tenant_id)
           OR (NEW.site_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM business_unit u WHERE u.id = NEW.site_id AND u.tenant_id = NEW.tenant_id)) THEN
            RAISE foreign_key_violation USING MESSAGE = 'alert names a client or site that is not a unit of its tenant';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER alert_moved_units_of_its_tenant BEFORE UPDATE OF tenant_id, client_id, site_id ON alert
        FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.client_id IS DISTINCT FROM NEW.client_id
                           OR OLD.site_id IS DISTINCT FROM NEW.site_id)
        EXECUTE FUNCTION alert_moved_units_of_its_tenant()""",
    f"""CREATE FUNCTION ingest_event_of_a_tenant() RETURNS trigger {DEFINER} AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM written w WHERE NOT EXISTS (SELECT 1 FROM tenant t WHERE t.id = w.tenant_id)) THEN
            RAISE foreign_key_violation USING MESSAGE = 'ingest_event names no tenant';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ingest_event_of_a_tenant AFTER INSERT ON ingest_event REFERENCING NEW TABLE AS written
        FOR EACH STATEMENT EXECUTE FUNCTION ingest_event_of_a_tenant()""",
    f"""CREATE FUNCTION business_unit_named_by_no_alert() RETURNS trigger {DEFINER} AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM alert a WHERE a.tenant_id = OLD.tenant_id AND (a.client_id = OLD.id OR a.site_id = OLD.id)) THEN
            RAISE foreign_key_violation USING MESSAGE = 'business unit ' || OLD.code || ' is named by alerts';
        END IF;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER business_unit_named_by_no_alert BEFORE DELETE ON business_unit
        FOR EACH ROW EXECUTE FUNCTION business_unit_named_by_no_alert()""",
    f"""CREATE FUNCTION tenant_alerts_and_events_go_first() RETURNS trigger {DEFINER} AS $$
    BEGIN
        DELETE FROM alert WHERE tenant_id = OLD.id;
        DELETE FROM ingest_event WHERE tenant_id = OLD.id;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER tenant_alerts_and_events_go_first BEFORE DELETE ON tenant
        FOR EACH ROW EXECUTE FUNCTION tenant_alerts_and_events_go_first()""",
]
# (trigger, table, function), dropped in this order by the downgrade.
TRIGGERS = [
    ('tenant_alerts_and_events_go_first', 'tenant', 'tenant_alerts_and_events_go_first'),
    ('business_unit_named_by_no_alert', 'business_unit', 'business_unit_named_by_no_alert'),
    ('ingest_event_of_a_tenant', 'ingest_event', 'ingest_event_of_a_tenant'),
    ('alert_moved_units_of_its_tenant', 'alert', 'alert_moved_units_of_its_tenant'),
    ('alert_units_of_its_tenant', 'alert', 'alert_units_of_its_tenant'),
]


def _name(table: str, column: str, referred: str) -> str:
    return f'fk_{table}_{column}_{referred}'


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, referred, _ in REPLACED:
        op.drop_constraint(_name(table, column, referred), table, type_='foreignkey')
    for statement in CHECKS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for trigger, table, function in TRIGGERS:
        op.execute(f'DROP TRIGGER {trigger} ON {table}')
        op.execute(f'DROP FUNCTION {function}()')
    for table, column, referred, ondelete in REPLACED:
        op.create_foreign_key(_name(table, column, referred), table, referred, [column], ['id'], ondelete=ondelete)
