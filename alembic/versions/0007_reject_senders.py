"""dead letters remember who sent them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_reject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.add_column(sa.Column('sender_login', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('sender_system', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_ingest_reject_sender_person_id_person'), 'person',
                                    ['sender_person_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_ingest_reject_tenant_sender_status', ['tenant_id', 'sender_person_id', 'status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ingest_reject', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_reject_tenant_sender_status')
        batch_op.drop_constraint(batch_op.f('fk_ingest_reject_sender_person_id_person'), type_='foreignkey')
        batch_op.drop_column('sender_system')
        batch_op.drop_column('sender_login')
        batch_op.drop_column('sender_person_id')
