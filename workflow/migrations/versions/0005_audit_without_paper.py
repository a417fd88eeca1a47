"""Audit entries without a paper: administrative acts (kind ``admin``: tokens created and revoked, a
definition version's first use) belong to no paper, so ``audit.paper_id`` may be NULL. Mail entries (kind
``mail``) keep their paper. The append-only trigger of PostgreSQL stays as it is (changing a column's
nullability touches no row).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("audit", "paper_id", existing_type=sa.Integer(), nullable=True)
        return
    # SQLite cannot change a column: the table is copied (with its index and its key to papers).
    with op.batch_alter_table("audit") as batch:
        batch.alter_column("paper_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Only possible while the trail holds no entry without a paper (the trail is append-only).
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("audit", "paper_id", existing_type=sa.Integer(), nullable=False)
        return
    with op.batch_alter_table("audit") as batch:
        batch.alter_column("paper_id", existing_type=sa.Integer(), nullable=False)
