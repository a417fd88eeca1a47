"""Tokens have a scope: ``api`` (a bearer token for the API) or ``calendar`` (the secret of a person's
calendar feed). Tokens made before are API tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("scope", sa.String(length=20), nullable=False, server_default="api"))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scope")
