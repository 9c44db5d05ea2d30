"""maintenance_window.matchers: Alertmanager-style matchers of a window

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 10:00:00

One nullable JSON column ([{"name", "op", "value"}], ANDed with the scope and the types),
added and dropped in place (plain ADD/DROP COLUMN, SQLite >= 3.35): a batch rebuild of
`maintenance_window` would have to re-create `alert`, which references it. Windows made
before have none (NULL): they hold what they held. A downgrade drops the matchers, so a
window that had them holds everything of its scope and types again: say so to whoever
downgrades (`maintenance list` shows them before).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('maintenance_window', sa.Column(
        'matchers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    op.drop_column('maintenance_window', 'matchers')
