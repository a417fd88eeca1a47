"""Who each running deadline concerns, kept with it: "Meine Fristen" reads the rows of one address in due order
(an index range) instead of walking every running deadline and filtering.

Filled here for the running deadlines from the stored definition texts (workflow.deadlines.involved, per
definition, deadline name and body) and, for those a deadline only escalates to, its stored escalating mails;
afterwards each change writes and drops the rows in its own transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from workflow.deadlines import ESCALATING, involved
    from workflow.errors import WorkflowError
    from workflow.loader import load_definition
    from workflow.store.tables import UTCDateTime

    op.create_table("deadline_audience",
                    sa.Column("email", sa.String(length=320), nullable=False),
                    sa.Column("due_at", UTCDateTime(), nullable=False),
                    sa.Column("deadline_id", sa.Integer(), nullable=False),
                    sa.Column("since", UTCDateTime(), nullable=True),
                    sa.ForeignKeyConstraint(["deadline_id"], ["deadlines.id"]),
                    sa.PrimaryKeyConstraint("email", "due_at", "deadline_id"))
    op.create_index("ix_deadline_audience_deadline", "deadline_audience", ["deadline_id"])

    conn = op.get_bind()
    texts = {row[0]: row[1] for row in conn.execute(sa.text("SELECT source_hash, source_text FROM definitions"))}
    groups = conn.execute(sa.text("SELECT DISTINCT p.definition_hash, d.name, d.body FROM deadlines d JOIN papers p "
                                  "ON p.id = d.paper_id WHERE d.status = 'running'")).all()
    definitions: dict[str, Any] = {}
    kinds = ", ".join(f"'{kind}'" for kind in ESCALATING)
    first = f"(SELECT MIN(r.send_at) FROM reminders r WHERE r.deadline_id = d.id AND r.kind IN ({kinds}))"
    for digest, name, body in groups:
        if digest not in definitions:
            try:
                definitions[digest] = load_definition(texts[digest], "<stored definition>")
            except (KeyError, WorkflowError):
                definitions[digest] = None  # no usable text: `audit verify` reports it; nobody to list it for
        definition = definitions[digest]
        spec = next((s for s in definition.deadlines if s.name == name), None) if definition else None
        if spec is None:
            continue
        notify, escalate_to = involved(definition, spec, body)
        where = ("d.status = 'running' AND d.name = :name AND "
                 + ("d.body IS NULL" if body is None else "d.body = :body")
                 + " AND d.paper_id IN (SELECT id FROM papers WHERE definition_hash = :digest)")
        params = {"name": name, "body": body, "digest": digest}
        for email in notify:
            conn.execute(sa.text("INSERT INTO deadline_audience (email, due_at, deadline_id, since) SELECT "
                                 f"CAST(:email AS VARCHAR(320)), d.due_at, d.id, NULL FROM deadlines d WHERE {where}"),
                         {**params, "email": email})
        for email in escalate_to:
            if email in notify:
                continue
            conn.execute(sa.text("INSERT INTO deadline_audience (email, due_at, deadline_id, since) SELECT "
                                 f"CAST(:email AS VARCHAR(320)), d.due_at, d.id, {first} FROM deadlines d "
                                 f"WHERE {where} AND {first} IS NOT NULL"), {**params, "email": email})


def downgrade() -> None:
    op.drop_index("ix_deadline_audience_deadline", table_name="deadline_audience")
    op.drop_table("deadline_audience")
