"""integrations: the keys of HTTP senders and their service identities

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00

A new table only (nothing rebuilt). Each integration's identity is an ordinary `person`
row (`integration:NAME`) with one noc:ingest grant; downgrading drops the keys and makes
those people inactive (they cannot be deleted: audit rows name them).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'integration',
        sa.Column('id', ID, nullable=False),
        sa.Column('tenant_id', ID, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('format', sa.String(length=20), nullable=False),
        sa.Column('person_id', ID, nullable=False),
        sa.Column('unit_id', ID, nullable=True),
        sa.Column('key_prefix', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('previous_key_hash', sa.String(length=64), nullable=True),
        sa.Column('previous_key_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("format IN ('pagerduty', 'alertmanager', 'native')", name=op.f('ck_integration_format')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_integration_tenant_id_tenant'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_integration_person_id_person'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['business_unit.id'],
                                name=op.f('fk_integration_unit_id_business_unit'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_integration')),
        sa.UniqueConstraint('key_prefix', name=op.f('uq_integration_key_prefix')),
        sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_integration_tenant_id_name')),
        sa.UniqueConstraint('tenant_id', 'person_id', name=op.f('uq_integration_tenant_id_person_id')),
    )
    op.create_index('ix_integration_tenant_unit', 'integration', ['tenant_id', 'unit_id'], unique=False)


def downgrade() -> None:
    op.execute("UPDATE person SET active = false WHERE id IN (SELECT person_id FROM integration)")
    op.drop_index('ix_integration_tenant_unit', table_name='integration')
    op.drop_table('integration')
