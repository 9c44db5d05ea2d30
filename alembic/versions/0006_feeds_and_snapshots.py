"""operational feeds and metric snapshots

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 00:09:23.580819
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feed_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('priority', sa.String(length=8), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated', sa.Boolean(), nullable=True),
    sa.Column('person', sa.String(length=200), nullable=True),
    sa.Column('people_group', sa.String(length=100), nullable=True),
    sa.Column('shift_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shift_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('offline_after', sa.Integer(), nullable=True),
    sa.Column('sync_health', sa.Float(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_type', sa.String(length=64), nullable=True),
    sa.Column('severity', sa.String(length=10), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.CheckConstraint("kind IN ('ticket', 'work_order', 'attendance', 'device', 'geofence', 'security')", name=op.f('ck_feed_record_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_feed_record_client_id_business_unit')),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_feed_record_site_id_business_unit')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_feed_record_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_record')),
    sa.UniqueConstraint('tenant_id', 'kind', 'external_id', name=op.f('uq_feed_record_tenant_id_kind_external_id'))
    )
    with op.batch_alter_table('feed_record', schema=None) as batch_op:
        batch_op.create_index('ix_feed_record_tenant_kind_occurred_at', ['tenant_id', 'kind', 'occurred_at'], unique=False)
        batch_op.create_index('ix_feed_record_tenant_kind_site', ['tenant_id', 'kind', 'site_id'], unique=False)

    op.create_table('snapshot',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=100), nullable=True),
    sa.Column('officer_in_charge', sa.String(length=100), nullable=True),
    sa.Column('in_maintenance', sa.Boolean(), nullable=False),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("scope IN ('CLIENT', 'SITE')", name=op.f('ck_snapshot_scope')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_snapshot_client_id_business_unit'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_snapshot_site_id_business_unit'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_snapshot_tenant_id_tenant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['business_unit.id'], name=op.f('fk_snapshot_unit_id_business_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshot')),
    sa.UniqueConstraint('tenant_id', 'unit_id', 'window_end', name=op.f('uq_snapshot_tenant_id_unit_id_window_end'))
    )
    with op.batch_alter_table('snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_snapshot_tenant_window_end', ['tenant_id', 'window_end'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_snapshot_tenant_window_end')

    op.drop_table('snapshot')
    with op.batch_alter_table('feed_record', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_record_tenant_kind_site')
        batch_op.drop_index('ix_feed_record_tenant_kind_occurred_at')

    op.drop_table('feed_record')
