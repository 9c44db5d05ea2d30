"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 20:24:45.218941
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tenant',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenant_slug'))
    )
    op.create_table('person',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=50), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_person_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('tenant_id', 'username', name=op.f('uq_person_tenant_id_username'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('os_user', sa.String(length=100), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], name=op.f('fk_audit_log_actor_id_person')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_audit_log_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_tenant_at', ['tenant_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_tenant_target', ['tenant_id', 'target_type', 'target_id'], unique=False)

    op.create_table('business_unit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=100), nullable=True),
    sa.Column('site_in_charge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('CLIENT', 'SITE')", name=op.f('ck_business_unit_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_business_unit_client_id_business_unit')),
    sa.ForeignKeyConstraint(['owner_id'], ['person.id'], name=op.f('fk_business_unit_owner_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['business_unit.id'], name=op.f('fk_business_unit_parent_id_business_unit')),
    sa.ForeignKeyConstraint(['site_in_charge_id'], ['person.id'], name=op.f('fk_business_unit_site_in_charge_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_business_unit_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_unit')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_business_unit_tenant_id_code'))
    )
    with op.batch_alter_table('business_unit', schema=None) as batch_op:
        batch_op.create_index('ix_business_unit_tenant_client', ['tenant_id', 'client_id', 'kind'], unique=False)
        batch_op.create_index('ix_business_unit_tenant_geo', ['tenant_id', 'state', 'city'], unique=False)

    op.create_table('access_grant',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('capability', sa.String(length=40), nullable=False),
    sa.Column('scope_kind', sa.String(length=10), nullable=False),
    sa.Column('unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(scope_kind = 'TENANT') = (unit_id IS NULL)", name=op.f('ck_access_grant_scope_unit')),
    sa.CheckConstraint("capability IN ('noc:view', 'noc:view_all_clients', 'noc:view_client', 'noc:view_assigned_sites', 'noc:ack_alerts', 'noc:escalate', 'noc:configure', 'noc:export', 'noc:manage_maintenance', 'noc:audit_view', 'noc:assign_incidents', 'noc:ingest')", name=op.f('ck_access_grant_capability')),
    sa.CheckConstraint("scope_kind IN ('TENANT', 'CLIENT', 'SITE')", name=op.f('ck_access_grant_scope_kind')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_access_grant_person_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_access_grant_tenant_id_tenant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['business_unit.id'], name=op.f('fk_access_grant_unit_id_business_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_grant'))
    )
    with op.batch_alter_table('access_grant', schema=None) as batch_op:
        batch_op.create_index('ix_access_grant_tenant_capability', ['tenant_id', 'capability', 'unit_id'], unique=False)
        batch_op.create_index('uq_access_grant_scoped', ['tenant_id', 'person_id', 'capability', 'unit_id'], unique=True, sqlite_where=sa.text('unit_id IS NOT NULL'), postgresql_where=sa.text('unit_id IS NOT NULL'))
        batch_op.create_index('uq_access_grant_tenant_wide', ['tenant_id', 'person_id', 'capability'], unique=True, sqlite_where=sa.text('unit_id IS NULL'), postgresql_where=sa.text('unit_id IS NULL'))

    op.create_table('incident',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('correlation_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sla_target', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assigned_to', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_to_resolve', sa.Integer(), nullable=True),
    sa.Column('runbook_link', sa.String(length=500), nullable=True),
    sa.Column('ticket_ref', sa.String(length=100), nullable=True),
    sa.Column('work_order_ref', sa.String(length=100), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.CheckConstraint("severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO')", name=op.f('ck_incident_severity')),
    sa.CheckConstraint("status IN ('NEW', 'ACKNOWLEDGED', 'ASSIGNED', 'IN_PROGRESS', 'RESOLVED', 'CLOSED')", name=op.f('ck_incident_status')),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['person.id'], name=op.f('fk_incident_acknowledged_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assigned_to'], ['person.id'], name=op.f('fk_incident_assigned_to_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_incident_client_id_business_unit')),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], name=op.f('fk_incident_created_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['resolved_by'], ['person.id'], name=op.f('fk_incident_resolved_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_incident_site_id_business_unit')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_incident_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_tenant_correlation', ['tenant_id', 'correlation_id'], unique=False)
        batch_op.create_index('ix_incident_tenant_created_at', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_incident_tenant_status', ['tenant_id', 'status'], unique=False)

    op.create_table('maintenance_window',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope_kind', sa.String(length=10), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('suppress_all', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('alert_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recurrence', sa.String(length=10), server_default='NONE', nullable=False),
    sa.Column('recur_weekdays', sa.String(length=30), nullable=True),
    sa.Column('recur_until', sa.Date(), nullable=True),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("recurrence IN ('NONE', 'DAILY', 'WEEKLY')", name=op.f('ck_maintenance_window_recurrence')),
    sa.CheckConstraint("scope_kind IN ('TENANT', 'CLIENT', 'SITE')", name=op.f('ck_maintenance_window_scope_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_maintenance_window_client_id_business_unit')),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], name=op.f('fk_maintenance_window_created_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_maintenance_window_site_id_business_unit')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_maintenance_window_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_window'))
    )
    with op.batch_alter_table('maintenance_window', schema=None) as batch_op:
        batch_op.create_index('ix_maintenance_window_tenant_ends_at', ['tenant_id', 'ends_at'], unique=False)

    op.create_table('alert',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('alert_type', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=True),
    sa.Column('entity_id', sa.String(length=200), nullable=True),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duplicate_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=True),
    sa.Column('parent_alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('maintenance_window_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assigned_to', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_to', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('escalation_level', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('time_to_ack', sa.Integer(), nullable=True),
    sa.Column('time_to_resolve', sa.Integer(), nullable=True),
    sa.CheckConstraint("severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO')", name=op.f('ck_alert_severity')),
    sa.CheckConstraint("status IN ('NEW', 'ACKNOWLEDGED', 'ASSIGNED', 'ESCALATED', 'SUPPRESSED', 'RESOLVED')", name=op.f('ck_alert_status')),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['person.id'], name=op.f('fk_alert_acknowledged_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assigned_to'], ['person.id'], name=op.f('fk_alert_assigned_to_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['business_unit.id'], name=op.f('fk_alert_client_id_business_unit')),
    sa.ForeignKeyConstraint(['escalated_to'], ['person.id'], name=op.f('fk_alert_escalated_to_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['maintenance_window_id'], ['maintenance_window.id'], name=op.f('fk_alert_maintenance_window_id_maintenance_window'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_alert_id'], ['alert.id'], name=op.f('fk_alert_parent_alert_id_alert'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['resolved_by'], ['person.id'], name=op.f('fk_alert_resolved_by_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['business_unit.id'], name=op.f('fk_alert_site_id_business_unit')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_alert_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert'))
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_tenant_acknowledged_at', ['tenant_id', 'acknowledged_at'], unique=False)
        batch_op.create_index('ix_alert_tenant_client_first_seen', ['tenant_id', 'client_id', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_alert_tenant_correlation', ['tenant_id', 'correlation_id'], unique=False)
        batch_op.create_index('ix_alert_tenant_resolved_at', ['tenant_id', 'resolved_at'], unique=False)
        batch_op.create_index('ix_alert_tenant_site_first_seen', ['tenant_id', 'site_id', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_alert_tenant_status_first_seen', ['tenant_id', 'status', 'first_seen_at'], unique=False)
        batch_op.create_index('uq_alert_active_dedup', ['tenant_id', 'dedup_key'], unique=True, sqlite_where=sa.text("status <> 'RESOLVED'"), postgresql_where=sa.text("status <> 'RESOLVED'"))

    op.create_table('incident_alert',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_incident_alert_alert_id_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_alert_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_incident_alert_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', 'alert_id', name=op.f('pk_incident_alert'))
    )
    with op.batch_alter_table('incident_alert', schema=None) as batch_op:
        batch_op.create_index('ix_incident_alert_tenant_alert', ['tenant_id', 'alert_id'], unique=False)



def downgrade() -> None:
    # Indexes go with their tables.
    for table in ("incident_alert", "alert", "maintenance_window", "incident", "access_grant",
                  "business_unit", "audit_log", "person", "tenant"):
        op.drop_table(table)
