"""Attachments of papers ("Anlagen"): the documents a follow-up attaches to each child it creates (the Bericht
über offene Beschlüsse of a body). A row is written in the transaction of the entry that records the file's
SHA-256 in the trail, and never changed.

Also ``papers.modified_at``: when a paper's OParl object last changed (its own last change, or a follow-up paper
created for it), by which OParl clients sync (``modified_since``); it replaces the index on ``updated_at``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from workflow.store.tables import UTCDateTime

    op.create_table("paper_files",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("paper_id", sa.Integer(), nullable=False),
                    sa.Column("name", sa.String(length=200), nullable=False),
                    sa.Column("media_type", sa.String(length=100), nullable=False),
                    sa.Column("size", sa.Integer(), nullable=False),
                    sa.Column("sha256", sa.String(length=64), nullable=False),
                    sa.Column("content", sa.LargeBinary(), nullable=False),
                    sa.Column("created_at", UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("paper_id", "name"))
    op.add_column("papers", sa.Column("modified_at", UTCDateTime(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE papers SET modified_at = updated_at"))
    conn.execute(sa.text("UPDATE papers SET modified_at = (SELECT MAX(f.done_at) FROM follow_ups f WHERE f.paper_id = "
                         "papers.id AND f.status = 'created') WHERE EXISTS (SELECT 1 FROM follow_ups f WHERE "
                         "f.paper_id = papers.id AND f.status = 'created' AND f.done_at > papers.updated_at)"))
    op.drop_index("ix_papers_updated_id", table_name="papers")
    op.create_index("ix_papers_modified_id", "papers", ["modified_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_papers_modified_id", table_name="papers")
    op.create_index("ix_papers_updated_id", "papers", ["updated_at", "id"])
    op.drop_column("papers", "modified_at")  # ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): no copy of the table
    op.drop_table("paper_files")
