"""The Beschlusskontrolle: one row per body that decided a paper and follow-up paper the decision created.

A row is written in the transaction that creates the child; the child's delay, finish and target date (and the
sort moment: delayed first, then by target date) are rewritten in the transaction of each change of the child.
Papers created before this revision have no rows (their follow-ups appear once created anew).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from workflow.store.tables import UTCDateTime

    op.create_table("decisions",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("body", sa.String(length=100), nullable=False),
                    sa.Column("paper_id", sa.Integer(), nullable=False),
                    sa.Column("reference", sa.String(length=120), nullable=False),
                    sa.Column("decided_at", UTCDateTime(), nullable=False),
                    sa.Column("result", sa.Text(), nullable=True),
                    sa.Column("follow_up", sa.String(length=100), nullable=False),
                    sa.Column("n", sa.Integer(), nullable=False),
                    sa.Column("child_id", sa.Integer(), nullable=False),
                    sa.Column("child", sa.String(length=120), nullable=False),
                    sa.Column("delayed", sa.Boolean(), nullable=False),
                    sa.Column("final", sa.Boolean(), nullable=False),
                    sa.Column("target_at", UTCDateTime(), nullable=True),
                    sa.Column("sort_at", UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
                    sa.ForeignKeyConstraint(["child_id"], ["papers.id"]),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("body", "child_id"))
    op.create_index("ix_decisions_body_final_sort", "decisions", ["body", "final", "sort_at", "id"])
    op.create_index("ix_decisions_child", "decisions", ["child_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_child", table_name="decisions")
    op.drop_index("ix_decisions_body_final_sort", table_name="decisions")
    op.drop_table("decisions")
