"""noc:impersonate; persons mapped to PostgreSQL login roles

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:40:00

Adds the capability `noc:impersonate` (tenant-wide only) and grants it to everyone who
administers a tenant today (holds noc:configure tenant-wide), so `--as` keeps working for
the admins `init` made; and `person.db_role`, the login role a person is mapped to.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD = ('noc:view', 'noc:view_all_clients', 'noc:view_client', 'noc:view_assigned_sites', 'noc:ack_alerts',
       'noc:escalate', 'noc:configure', 'noc:export', 'noc:manage_maintenance', 'noc:audit_view',
       'noc:assign_incidents', 'noc:ingest')
NEW = OLD + ('noc:impersonate',)


def _capability_check(values: tuple[str, ...]) -> str:
    return "capability IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table('access_grant', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_access_grant_capability'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_access_grant_capability'), _capability_check(NEW))
    # Plain ADD COLUMN and an index: SQLite's batch mode would rebuild `person`, which
    # many tables reference.
    op.add_column('person', sa.Column('db_role', sa.String(length=63), nullable=True))
    op.create_index('uq_person_tenant_db_role', 'person', ['tenant_id', 'db_role'], unique=True)
    op.execute(
        "INSERT INTO access_grant (tenant_id, person_id, capability, scope_kind, unit_id, created_at) "
        "SELECT g.tenant_id, g.person_id, 'noc:impersonate', 'TENANT', NULL, g.created_at "
        "FROM access_grant g WHERE g.capability = 'noc:configure' AND g.unit_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM access_grant h WHERE h.tenant_id = g.tenant_id "
        "AND h.person_id = g.person_id AND h.capability = 'noc:impersonate' AND h.unit_id IS NULL)")


def downgrade() -> None:
    op.execute("DELETE FROM access_grant WHERE capability = 'noc:impersonate'")
    op.drop_index('uq_person_tenant_db_role', table_name='person')
    op.drop_column('person', 'db_role')
    with op.batch_alter_table('access_grant', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_access_grant_capability'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_access_grant_capability'), _capability_check(OLD))
