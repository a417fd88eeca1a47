"""Storage: SQLModel tables and the SQL store (SQLite by default, PostgreSQL by URL)."""

from .sql import AuditRecord, SqlStore, StoredPaper, default_url

__all__ = ["AuditRecord", "SqlStore", "StoredPaper", "default_url"]
