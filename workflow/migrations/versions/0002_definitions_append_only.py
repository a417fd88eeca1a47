"""The stored definition texts are append-only on PostgreSQL, like the audit trail: a paper's rules
cannot be edited under it (``audit verify`` also re-hashes the texts on every backend).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION councilflow_definitions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
    MESSAGE = 'councilflow definition texts are append-only (' || TG_OP || ' refused)';
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'definitions_append_only_rows') THEN
    CREATE TRIGGER definitions_append_only_rows BEFORE UPDATE OR DELETE ON definitions
      FOR EACH ROW EXECUTE FUNCTION councilflow_definitions_append_only();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'definitions_append_only_truncate') THEN
    CREATE TRIGGER definitions_append_only_truncate BEFORE TRUNCATE ON definitions
      FOR EACH STATEMENT EXECUTE FUNCTION councilflow_definitions_append_only();
  END IF;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS definitions_append_only_rows ON definitions")
        op.execute("DROP TRIGGER IF EXISTS definitions_append_only_truncate ON definitions")
        op.execute("DROP FUNCTION IF EXISTS councilflow_definitions_append_only()")
