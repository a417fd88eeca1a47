"""The first released schema: definitions, papers, audit, deadlines, reminders, tokens, heartbeats.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op
from sqlmodel import SQLModel

from workflow.store import tables  # noqa: F401

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The tables as the models describe them at this revision; later revisions alter them step by step.
    bind = op.get_bind()
    SQLModel.metadata.create_all(bind, tables=[SQLModel.metadata.tables[name] for name in (
        "definitions", "papers", "audit", "deadlines", "reminders", "tokens", "heartbeats")])
    if bind.dialect.name == "postgresql":
        from workflow.store.sql import _PG_APPEND_ONLY

        op.execute(_PG_APPEND_ONLY)


def downgrade() -> None:
    for name in ("heartbeats", "tokens", "reminders", "deadlines", "audit", "papers", "definitions"):
        op.drop_table(name)
