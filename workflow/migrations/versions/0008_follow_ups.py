"""Follow-up papers: the children a paper owes in another workflow (``follow_up``), created or planned.

A row is written in the transaction of the change that starts the follow-up; a planned row (a recurring
child not yet due) becomes ``created`` (or ``ended``, ``failed``) in the one transaction that creates its
child, so that several schedulers create each child exactly once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from workflow.store.tables import UTCDateTime

    op.create_table("follow_ups",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("paper_id", sa.Integer(), nullable=False),
                    sa.Column("reference", sa.String(length=120), nullable=False),
                    sa.Column("name", sa.String(length=100), nullable=False),
                    sa.Column("n", sa.Integer(), nullable=False),
                    sa.Column("child", sa.String(length=120), nullable=False),
                    sa.Column("workflow", sa.String(length=100), nullable=False),
                    sa.Column("due_at", UTCDateTime(), nullable=False),
                    sa.Column("status", sa.String(length=20), nullable=False),
                    sa.Column("done_at", UTCDateTime(), nullable=True),
                    sa.Column("error", sa.Text(), nullable=True),
                    sa.Column("anchor_at", UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("paper_id", "name", "n"))
    op.create_index("ix_follow_ups_status_due", "follow_ups", ["status", "due_at", "id"])
    op.create_index("ix_follow_ups_child", "follow_ups", ["child"])


def downgrade() -> None:
    op.drop_index("ix_follow_ups_child", table_name="follow_ups")
    op.drop_index("ix_follow_ups_status_due", table_name="follow_ups")
    op.drop_table("follow_ups")
