"""The lists page on indexed columns: papers get ``public``, ``next_due`` and their stored OParl object, the
bodies a paper is at get a table of their own, and every filter of the lists and the audit page an index.

The new columns are filled here from what the papers hold (their fields, running deadlines, state and the
stored definition texts); afterwards each change keeps them in its own transaction.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_AUDIT_INDEXES = {"ix_audit_reference_seq": ["reference", "seq"], "ix_audit_workflow_seq": ["workflow", "seq"],
                  "ix_audit_actor_seq": ["actor", "seq"], "ix_audit_trigger_seq": ["trigger", "seq"],
                  "ix_audit_body_seq": ["body", "seq"], "ix_audit_from_state_seq": ["from_state", "seq"],
                  "ix_audit_to_state_seq": ["to_state", "seq"], "ix_audit_at": ["at"]}
_PAPER_INDEXES = {"ix_papers_workflow_reference": ["workflow", "reference"],
                  "ix_papers_state_reference": ["state", "reference"], "ix_papers_next_due": ["next_due"],
                  "ix_papers_public_id": ["public", "id"], "ix_papers_updated_id": ["updated_at", "id"]}


def upgrade() -> None:
    from workflow.access import is_public
    from workflow.errors import WorkflowError
    from workflow.loader import load_definition
    from workflow.paper import PaperState, bodies_at, branches_from_json
    from workflow.store.tables import UTCDateTime

    op.add_column("papers", sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.text("true")))
    op.add_column("papers", sa.Column("next_due", UTCDateTime(), nullable=True))
    op.add_column("papers", sa.Column("oparl", sa.Text(), nullable=True))
    op.create_table("paper_bodies",
                    sa.Column("body", sa.String(length=100), nullable=False),
                    sa.Column("reference", sa.String(length=120), nullable=False),
                    sa.Column("paper_id", sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(["paper_id"], ["papers.id"]),
                    sa.PrimaryKeyConstraint("body", "reference"))
    op.create_index("ix_paper_bodies_paper", "paper_bodies", ["paper_id"])
    for name, columns in _PAPER_INDEXES.items():
        op.create_index(name, "papers", columns)
    for name, columns in _AUDIT_INDEXES.items():
        op.create_index(name, "audit", columns)
    op.create_index("ix_deadlines_status_due", "deadlines", ["status", "due_at", "id"])
    op.create_index("ix_reminders_deadline", "reminders", ["deadline_id"])

    conn = op.get_bind()
    conn.execute(sa.text("UPDATE papers SET next_due = (SELECT MIN(due_at) FROM deadlines WHERE deadlines.paper_id "
                         "= papers.id AND deadlines.status = 'running')"))
    texts = {row[0]: row[1] for row in conn.execute(sa.text("SELECT source_hash, source_text FROM definitions"))}
    definitions: dict[str, Any] = {}
    rows = conn.execute(sa.text("SELECT id, reference, definition_hash, state, branches, fields FROM papers")).all()
    for pid, reference, digest, state_id, branches_raw, fields_raw in rows:
        fields = json.loads(fields_raw) if isinstance(fields_raw, str) else (fields_raw or {})
        branches = json.loads(branches_raw) if isinstance(branches_raw, str) else (branches_raw or {})
        state = PaperState(state_id, None, None, branches_from_json(branches), fields)  # type: ignore[arg-type]
        if not is_public(state):
            conn.execute(sa.text("UPDATE papers SET public = false WHERE id = :id"), {"id": pid})
        if digest not in definitions:
            try:
                definitions[digest] = load_definition(texts[digest], "<stored definition>")
            except (KeyError, WorkflowError):
                definitions[digest] = None  # no usable text: `audit verify` reports it; no body to list it under
        definition = definitions[digest]
        if definition is None or state_id not in definition.states:
            continue
        for body in sorted(bodies_at(definition, state)):
            conn.execute(sa.text("INSERT INTO paper_bodies (body, reference, paper_id) VALUES (:b, :r, :p)"),
                         {"b": body, "r": reference, "p": pid})


def downgrade() -> None:
    op.drop_index("ix_reminders_deadline", table_name="reminders")
    op.drop_index("ix_deadlines_status_due", table_name="deadlines")
    for name in _AUDIT_INDEXES:
        op.drop_index(name, table_name="audit")
    for name in _PAPER_INDEXES:
        op.drop_index(name, table_name="papers")
    op.drop_table("paper_bodies")
    for column in ("oparl", "next_due", "public"):  # ALTER TABLE … DROP COLUMN (SQLite 3.35+): no table rebuild,
        op.drop_column("papers", column)         # which the audit's foreign key to papers would refuse
