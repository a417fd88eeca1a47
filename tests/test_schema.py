"""Schema migrations with Alembic: from an empty database, from a database made before migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect
from sqlmodel import SQLModel

from workflow import SqlStore
from workflow.store import tables  # noqa: F401
from workflow.store.schema import head_revision, upgrade
from workflow.store.sql import SCHEMA_HEAD

EXE = str(Path(sys.executable).parent / "councilflow")
TABLES = {"definitions", "papers", "audit", "deadlines", "reminders", "tokens", "heartbeats", "alembic_version"}


def test_head_constant_matches_the_migrations() -> None:
    """The revision the store checks on start is the newest migration shipped."""
    assert head_revision() == SCHEMA_HEAD


def test_upgrade_from_empty_and_current(tmp_path: Path, defs_dir: Path) -> None:
    """`db upgrade` creates every table on an empty database; `db current` reports head."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    args = ["--db", url, "--definitions", str(defs_dir)]
    empty = subprocess.run([EXE, "db", "current", *args], capture_output=True, text=True, check=True)
    assert empty.stdout.startswith("empty (head 0001, behind")
    up = subprocess.run([EXE, "db", "upgrade", *args], capture_output=True, text=True, check=True)
    assert up.stdout.strip().endswith("empty → 0001")
    store = SqlStore(url)
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
    again = subprocess.run([EXE, "db", "upgrade", *args], capture_output=True, text=True, check=True)
    assert again.stdout.strip().endswith("0001 → 0001")
    now = subprocess.run([EXE, "db", "current", *args], capture_output=True, text=True, check=True)
    assert now.stdout.strip() == "0001 (head 0001, at head)"


def test_database_made_before_migrations_is_stamped_with_its_data(db_url: str, engine: object) -> None:
    """A schema created without Alembic (and holding papers) is recognised as the first revision."""
    store = SqlStore(db_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert store.schema_revision() is None
    from .conftest import LANDRAT

    engine.create("sachstandsbericht", "SV-ALT", LANDRAT, {"title": "vor den Migrationen"})  # type: ignore[attr-defined]
    upgrade(store.engine)
    assert store.schema_revision() == SCHEMA_HEAD
    assert store.references() == ["SV-ALT"]
    with store.engine.connect() as conn:
        assert set(SQLModel.metadata.tables) <= set(inspect(conn).get_table_names())
