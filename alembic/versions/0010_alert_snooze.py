"""alert.snoozed_until: an alert snoozed out of the active view and the escalation pass

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12 09:00:00

One nullable column, added and dropped in place (plain ADD/DROP COLUMN, SQLite >= 3.35):
a batch rebuild of `alert` would have to re-create the tables that reference it. No index:
the active list and the escalation pass filter on it after their own indexes (a snoozed
alert is the exception, not the rule). Notes need no table: they are NOTE audit rows.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alert', sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE alert DROP COLUMN snoozed_until")
