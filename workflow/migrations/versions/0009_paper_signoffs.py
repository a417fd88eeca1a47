"""Papers remember the sign-offs (Mitzeichnungen) standing in the current visit of their state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("papers", sa.Column("signoffs", sa.JSON(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+): no table rebuild, which the audit's foreign key to papers would
    # refuse
    op.drop_column("papers", "signoffs")
