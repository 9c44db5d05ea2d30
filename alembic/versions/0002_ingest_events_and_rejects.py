"""ingest event keys and rejects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 20:31:07.640129
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_event',
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_key', sa.LargeBinary(length=16), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_ingest_event_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'event_key', name=op.f('pk_ingest_event')),
    sqlite_with_rowid=False,
    )

    op.create_table('ingest_reject',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('line', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('raw_hash', sa.String(length=40), nullable=False),
    sa.Column('input_format', sa.String(length=16), server_default='auto', nullable=False),
    sa.Column('defaults', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='PENDING', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('retried_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('PENDING', 'RETRIED')", name=op.f('ck_ingest_reject_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_ingest_reject_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_reject'))
    )
    with op.batch_alter_table('ingest_reject', schema=None) as batch_op:
        batch_op.create_index('ix_ingest_reject_tenant_status_received_at', ['tenant_id', 'status', 'received_at'], unique=False)
        batch_op.create_index('uq_ingest_reject_pending_raw', ['tenant_id', 'raw_hash'], unique=True, sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'"))


def downgrade() -> None:
    op.drop_table("ingest_reject")
    op.drop_table("ingest_event")
