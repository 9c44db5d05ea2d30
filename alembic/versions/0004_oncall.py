"""oncall schedules, members and overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 22:28:26.697004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oncall_schedule',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('turn_seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('turn_seconds > 0', name=op.f('ck_oncall_schedule_turn_positive')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_oncall_schedule_client_id_business_unit'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], name=op.f('fk_oncall_schedule_created_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_oncall_schedule_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oncall_schedule')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_oncall_schedule_tenant_id_name'))
    )
    with op.batch_alter_table('oncall_schedule', schema=None) as batch_op:
        batch_op.create_index('ix_oncall_schedule_tenant_client', ['tenant_id', 'client_id'], unique=False)

    op.create_table('oncall_member',
    sa.Column('schedule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_oncall_member_person_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id'], ['oncall_schedule.id'], name=op.f('fk_oncall_member_schedule_id_oncall_schedule'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_oncall_member_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('schedule_id', 'position', name=op.f('pk_oncall_member'))
    )
    op.create_table('oncall_override',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('schedule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_oncall_override_ends_after_start')),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], name=op.f('fk_oncall_override_created_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_oncall_override_person_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id'], ['oncall_schedule.id'], name=op.f('fk_oncall_override_schedule_id_oncall_schedule'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_oncall_override_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oncall_override'))
    )
    with op.batch_alter_table('oncall_override', schema=None) as batch_op:
        batch_op.create_index('ix_oncall_override_tenant_schedule_ends_at', ['tenant_id', 'schedule_id', 'ends_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oncall_override', schema=None) as batch_op:
        batch_op.drop_index('ix_oncall_override_tenant_schedule_ends_at')

    op.drop_table('oncall_override')
    op.drop_table('oncall_member')
    with op.batch_alter_table('oncall_schedule', schema=None) as batch_op:
        batch_op.drop_index('ix_oncall_schedule_tenant_client')

    op.drop_table('oncall_schedule')
