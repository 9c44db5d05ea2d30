"""escalation policies, notification outbox, alert next_escalation_at, audit chain head index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 23:08:49.156777
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalation_policy',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('levels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('max_level', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('max_level >= 1', name=op.f('ck_escalation_policy_max_level_positive')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_escalation_policy_client_id_business_unit'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_escalation_policy_tenant_id_tenant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['person.id'], name=op.f('fk_escalation_policy_updated_by_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_policy'))
    )
    with op.batch_alter_table('escalation_policy', schema=None) as batch_op:
        batch_op.create_index('uq_escalation_policy_tenant_client', ['tenant_id', 'client_id'], unique=True, sqlite_where=sa.text('client_id IS NOT NULL'), postgresql_where=sa.text('client_id IS NOT NULL'))
        batch_op.create_index('uq_escalation_policy_tenant_default', ['tenant_id'], unique=True, sqlite_where=sa.text('client_id IS NULL'), postgresql_where=sa.text('client_id IS NULL'))

    op.create_table('notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name=op.f('ck_notification_status')),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_notification_alert_id_alert'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_notification_client_id_business_unit'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipient_id'], ['person.id'], name=op.f('fk_notification_recipient_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_notification_site_id_business_unit'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_notification_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_tenant_due', ['tenant_id', 'next_attempt_at'], unique=False, sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'"))
        batch_op.create_index('ix_notification_tenant_status_created', ['tenant_id', 'status', 'created_at'], unique=False)

    op.create_index('ix_audit_log_tenant_id', 'audit_log', ['tenant_id', 'id'], unique=False)
    op.add_column('alert', sa.Column('next_escalation_at', sa.DateTime(timezone=True), nullable=True))
    # Alerts already waiting are looked at by the first escalation pass.
    op.execute("UPDATE alert SET next_escalation_at = COALESCE(escalated_at, first_seen_at)"
               " WHERE status IN ('NEW', 'ESCALATED')")
    op.create_index('ix_alert_tenant_escalation_due', 'alert', ['tenant_id', 'next_escalation_at'], unique=False,
                    sqlite_where=sa.text("status IN ('NEW', 'ESCALATED')"),
                    postgresql_where=sa.text("status IN ('NEW', 'ESCALATED')"))


def downgrade() -> None:
    op.drop_index('ix_alert_tenant_escalation_due', table_name='alert')
    op.drop_index('ix_audit_log_tenant_id', table_name='audit_log')
    # A plain DROP COLUMN (SQLite >= 3.35) keeps the alert table and its partial indexes as they are.
    op.execute("ALTER TABLE alert DROP COLUMN next_escalation_at")

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_tenant_status_created')
        batch_op.drop_index('ix_notification_tenant_due', sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'"))

    op.drop_table('notification')
    with op.batch_alter_table('escalation_policy', schema=None) as batch_op:
        batch_op.drop_index('uq_escalation_policy_tenant_default', sqlite_where=sa.text('client_id IS NULL'), postgresql_where=sa.text('client_id IS NULL'))
        batch_op.drop_index('uq_escalation_policy_tenant_client', sqlite_where=sa.text('client_id IS NOT NULL'), postgresql_where=sa.text('client_id IS NOT NULL'))

    op.drop_table('escalation_policy')
