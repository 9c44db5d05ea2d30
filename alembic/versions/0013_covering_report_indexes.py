"""alert: the resolved/acknowledged indexes carry what MTTR and MTTA read (covering)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:30:00

Rebuilds two existing indexes under the same names, nothing else (no table is copied).
`ix_alert_tenant_resolved_at` and `ix_alert_tenant_acknowledged_at` keep their key
(tenant_id, resolved_at / acknowledged_at) and carry the value and the groups the duration
reports read — time_to_resolve / time_to_ack, severity, client_id, site_id — so MTTR and MTTA
are index-only scans (benchmarks/RESULTS.md, "Reports"). PostgreSQL carries them as INCLUDE
columns; SQLite, which has no INCLUDE, has them at the end of the key, under the name
`<name>_sqlite` (the models declare one index per database, and Alembic's comparison keys
indexes by name). On a large `alert`
table the upgrade (and the downgrade) builds two indexes: it holds the table's write lock
meanwhile (PostgreSQL: SHARE lock, seconds per million rows). A downgrade rebuilds the
two-column indexes of 0001.
"""
from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# name: (key, carried columns)
CARRIED = {
    'ix_alert_tenant_resolved_at':
        (['tenant_id', 'resolved_at'], ['time_to_resolve', 'severity', 'client_id', 'site_id']),
    'ix_alert_tenant_acknowledged_at':
        (['tenant_id', 'acknowledged_at'], ['time_to_ack', 'severity', 'client_id', 'site_id']),
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    for name, (key, carried) in CARRIED.items():
        op.drop_index(name, table_name='alert')
        if _postgres():
            op.create_index(name, 'alert', key, unique=False, postgresql_include=carried)
        else:
            op.create_index(f'{name}_sqlite', 'alert', key + carried, unique=False)


def downgrade() -> None:
    for name, (key, _) in CARRIED.items():
        op.drop_index(name if _postgres() else f'{name}_sqlite', table_name='alert')
        op.create_index(name, 'alert', key, unique=False)
