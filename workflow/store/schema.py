"""Schema versions with Alembic: upgrade to head (the current revision is SqlStore.schema_revision)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

__all__ = ["head_revision", "upgrade"]

_SCRIPTS = str(Path(__file__).resolve().parent.parent / "migrations")


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to head (or to ``revision``); a database made before migrations existed is stamped
    as the first one."""
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243050)")  # one migrator at a time
        cfg.attributes["connection"] = conn
        existing = set(inspect(conn).get_table_names())
        if "papers" in existing and "alembic_version" not in existing:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, revision)
