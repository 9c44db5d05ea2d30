"""pass_run: the last successful run of each cron pass, per tenant

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00

A new table only (nothing rebuilt). One row per tenant and pass (the pass lock's name),
replaced each time a pass that is not a dry run finishes: `nocctl doctor` compares it with
the pass's cadence. A downgrade drops it: the passes' history starts again ("never run").
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'pass_run',
        sa.Column('tenant_id', ID, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_pass_run_tenant_id_tenant'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', 'name', name=op.f('pk_pass_run')),
    )


def downgrade() -> None:
    op.drop_table('pass_run')
