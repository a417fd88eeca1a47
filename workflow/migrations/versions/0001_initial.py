"""The first released schema: definitions, papers, audit, deadlines, reminders, tokens, heartbeats.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Written out operation by operation: a revision describes the schema as it was when it shipped and must
not follow later changes of the models (tests/test_schema.py checks that the revisions up to head give
what the models describe). Datetime columns are plain ``DateTime(timezone=True)``: the models'
UTCDateTime decorator only converts values when they are bound and read, the columns are the same.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Audit sequence numbers: BIGINT, but INTEGER on SQLite, where only INTEGER PRIMARY KEY is the rowid itself.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE.
_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION councilflow_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
    MESSAGE = 'councilflow audit entries are append-only (' || TG_OP || ' refused)';
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_append_only_rows') THEN
    CREATE TRIGGER audit_append_only_rows BEFORE UPDATE OR DELETE ON audit
      FOR EACH ROW EXECUTE FUNCTION councilflow_audit_append_only();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_append_only_truncate') THEN
    CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit
      FOR EACH STATEMENT EXECUTE FUNCTION councilflow_audit_append_only();
  END IF;
END $$;
"""


def _utc(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        _utc("stored_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow", "version"),
    )
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("workflow", sa.String(length=100), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        _utc("entered_at"),
        _utc("meeting", nullable=True),
        sa.Column("branches", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_seq", _SEQ, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_papers_workflow", "papers", ["workflow"], unique=False)
    op.create_index("ix_papers_state", "papers", ["state"], unique=False)
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _utc("created_at"),
        _utc("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "heartbeats",
        sa.Column("worker", sa.String(length=200), nullable=False),
        _utc("at"),
        sa.PrimaryKeyConstraint("worker"),
    )
    op.create_table(
        "audit",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("workflow", sa.String(length=100), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=100), nullable=False),
        sa.Column("from_state", sa.String(length=100), nullable=True),
        sa.Column("to_state", sa.String(length=100), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("body", sa.String(length=100), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        _utc("at"),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
    )
    op.create_index("ix_audit_paper_seq", "audit", ["paper_id", "seq"], unique=False)
    op.create_table(
        "deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=False),
        sa.Column("body", sa.String(length=100), nullable=True),
        _utc("due_at"),
        sa.Column("anchor", sa.String(length=20), nullable=False),
        _utc("anchor_at"),
        _utc("started_at"),
        sa.Column("status", sa.String(length=20), nullable=False),
        _utc("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
    )
    op.create_index("ix_deadlines_paper_status", "deadlines", ["paper_id", "status"], unique=False)
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deadline_id", sa.Integer(), nullable=True),
        sa.Column("paper_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        _utc("send_at"),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("next_attempt_at"),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        _utc("sent_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["deadline_id"], ["deadlines.id"]),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_reminders_claim", "reminders", ["status", "next_attempt_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)


def downgrade() -> None:
    for name in ("heartbeats", "tokens", "reminders", "deadlines", "audit", "papers", "definitions"):
        op.drop_table(name)  # with its indexes, constraints and triggers
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS councilflow_audit_append_only()")
