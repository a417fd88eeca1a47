"""Storage: the port (``Store``, ``Outbox``, ``Tokens``) and its adapters: SQL (SQLite by default,
PostgreSQL by URL) and in memory (``memory://``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .port import Outbox, Store, Tokens
from .records import AuditRecord, DeadlineRecord, ReminderRecord, StoredPaper

if TYPE_CHECKING:
    from .memory import MemoryStore
    from .sql import SqlStore

#: The newest migration shipped (workflow/migrations/versions); a test pins it to Alembic's head.
SCHEMA_HEAD = "0011"

__all__ = ["SCHEMA_HEAD", "AuditRecord", "DeadlineRecord", "MemoryStore", "Outbox", "ReminderRecord", "SqlStore",
           "Store", "StoredPaper", "Tokens", "default_url", "open_store"]


def default_url() -> str:
    """``COUNCILFLOW_DB`` or ``councilflow.db`` in the working directory."""
    import os

    return os.environ.get("COUNCILFLOW_DB") or "sqlite:///councilflow.db"


def open_store(url: str | None = None) -> Store:
    """The store a URL names: ``memory://`` (in this process only), ``sqlite:///…`` or ``postgresql://…``."""
    raw = url or default_url()
    if raw.startswith("memory://"):
        from .memory import MemoryStore

        return MemoryStore(raw.removeprefix("memory://"))
    from .sql import SqlStore

    return SqlStore(raw)


def __getattr__(name: str) -> object:
    if name == "SqlStore":
        from .sql import SqlStore

        return SqlStore
    if name == "MemoryStore":
        from .memory import MemoryStore

        return MemoryStore
    raise AttributeError(name)
