"""Alembic migrations of the councilflow schema, shipped in the package (`councilflow db upgrade`)."""
