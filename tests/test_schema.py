"""Schema migrations with Alembic: from an empty database, from a database made before migrations."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from notifier.dispatch import Dispatcher
from notifier.render import header_message_id
from notifier.transports import MemoryTransport
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.config import Settings
from workflow.store import (
    SCHEMA_HEAD,
    tables,  # noqa: F401
)
from workflow.store.schema import _config, head_revision, upgrade
from workflow.tokens import resolve_token

from .conftest import LANDRAT, SITZ

EXE = str(Path(sys.executable).parent / "councilflow")
TABLES = {"definitions", "papers", "audit", "deadlines", "reminders", "tokens", "heartbeats", "paper_bodies",
          "deadline_audience", "follow_ups", "decisions", "paper_files", "alembic_version"}


def test_head_constant_matches_the_migrations() -> None:
    """The revision the store checks on start is the newest migration shipped."""
    assert head_revision() == SCHEMA_HEAD


def test_upgrade_from_empty_and_current(tmp_path: Path, defs_dir: Path) -> None:
    """`db upgrade` creates every table on an empty database; `db current` reports head."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    args = ["--db", url, "--definitions", str(defs_dir)]
    empty = subprocess.run([EXE, "db", "current", *args], capture_output=True, text=True, check=True)
    assert empty.stdout.startswith(f"leer (neuester {SCHEMA_HEAD}, veraltet")
    up = subprocess.run([EXE, "db", "upgrade", *args], capture_output=True, text=True, check=True)
    assert up.stdout.strip().endswith(f"leer → {SCHEMA_HEAD}")
    store = SqlStore(url)
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
    again = subprocess.run([EXE, "db", "upgrade", *args], capture_output=True, text=True, check=True)
    assert again.stdout.strip().endswith(f"{SCHEMA_HEAD} → {SCHEMA_HEAD}")
    now = subprocess.run([EXE, "db", "current", *args], capture_output=True, text=True, check=True)
    assert now.stdout.strip() == f"{SCHEMA_HEAD} (neuester {SCHEMA_HEAD}, aktuell)"


def test_database_made_before_migrations_is_stamped_with_its_data(new_database: Callable[[], str]) -> None:
    """A schema created without Alembic (the first revision's tables, holding a paper) is recognised as the
    first revision and brought to head with its data."""
    store = SqlStore(new_database())
    upgrade(store.engine, "0001")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql(
            "INSERT INTO papers (reference, workflow, workflow_version, definition_hash, state, entered_at, "
            "branches, fields, created_at, updated_at, version, last_seq, last_hash) VALUES ('SV-ALT', "
            "'sachstandsbericht', 1, 'x', 'entwurf', '2020-08-04 07:00:00.000000', '{}', '{}', "
            "'2020-08-04 07:00:00.000000', '2020-08-04 07:00:00.000000', 1, 0, 'x')")
    assert store.schema_revision() is None
    upgrade(store.engine)
    assert store.schema_revision() == SCHEMA_HEAD
    assert store.references() == ["SV-ALT"]
    with store.engine.connect() as conn:
        assert set(SQLModel.metadata.tables) <= set(inspect(conn).get_table_names())


# --- the migrations against the models, and data written at the first revision ---------------------

DATA_AT_0001 = Path(__file__).resolve().parent / "migration_data" / "0001.json"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases on each backend (PostgreSQL ones are dropped afterwards)."""
    made: list[str] = []
    base = request.getfixturevalue("pg_database") if request.param == "postgres" else None  # skips without PG

    def make() -> str:
        name = f"fresh{len(made)}"
        made.append(name)
        if base is None:
            return f"sqlite:///{tmp_path / name}.db"
        import psycopg

        name = made[-1] = f"{make_url(base).database}_{name}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_url(base).set(database=name).render_as_string(hide_password=False)

    yield make
    if base is not None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _revisions() -> list[str]:
    """Every shipped revision, oldest first."""
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


def _structure(engine: sa.Engine) -> dict[str, Any]:
    """Everything the inspector sees of our tables, plus on SQLite the stored DDL and on PostgreSQL the
    triggers, functions and sequences."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            out[name] = {
                "columns": [{**c, "type": str(c["type"].compile(dialect=conn.dialect))}
                            for c in inspector.get_columns(name)],
                "pk": inspector.get_pk_constraint(name),
                "fks": sorted(inspector.get_foreign_keys(name), key=repr),
                "indexes": sorted(inspector.get_indexes(name), key=repr),
                "uniques": sorted(inspector.get_unique_constraints(name), key=repr),
                "checks": sorted(inspector.get_check_constraints(name), key=repr),
            }
        if conn.dialect.name == "sqlite":
            out["sqlite_master"] = sorted(conn.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name != 'alembic_version' "
                "AND name NOT LIKE 'sqlite_autoindex_alembic_version%' AND type != 'table'").all())
            # (a table's CREATE text differs once a revision added a column with ALTER TABLE; its columns,
            # keys and constraints are compared above)
        else:
            out["triggers"] = sorted(conn.exec_driver_sql(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal").all())
            out["functions"] = sorted(conn.exec_driver_sql(
                "SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
                "ON n.oid = p.pronamespace WHERE n.nspname = 'public'").all())
            out["sequences"] = sorted(conn.exec_driver_sql(
                "SELECT sequence_name, data_type, start_value, increment FROM information_schema.sequences").all())
    return out


def test_migrations_create_exactly_what_the_models_describe(new_database: Callable[[], str]) -> None:
    """Upgrading an empty database to head gives the schema that create_all gives from the models (plus the
    revisions' append-only triggers) — Alembic's autogenerate finds nothing to do, and the inspector sees the
    same tables, columns, keys, indexes and constraints (and on PostgreSQL the same triggers)."""
    migrated, modelled = SqlStore(new_database()), SqlStore(new_database())
    try:
        upgrade(migrated.engine)
        assert migrated.schema_revision() == SCHEMA_HEAD
        with modelled.engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
            if conn.dialect.name == "postgresql":
                for module in _migrations():
                    if hasattr(module, "_PG_APPEND_ONLY"):
                        conn.exec_driver_sql(module._PG_APPEND_ONLY)
        with migrated.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            assert compare_metadata(context, SQLModel.metadata) == []
        assert _structure(migrated.engine) == _structure(modelled.engine)
    finally:
        migrated.dispose()
        modelled.dispose()


def _typed(engine: sa.Engine) -> dict[str, dict[str, str]]:
    """Per table, the columns holding instants or JSON (as the database itself describes them)."""
    out: dict[str, dict[str, str]] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            out[table] = {c["name"]: "time" if isinstance(c["type"], sa.DateTime) else "json"
                          for c in inspector.get_columns(table) if isinstance(c["type"], sa.DateTime | sa.JSON)}
    return out


def _restore(engine: sa.Engine, data: dict[str, Any]) -> None:
    """Write the rows with plain SQL, in the form councilflow stored them at 0001."""
    typed = _typed(engine)
    sqlite = engine.dialect.name == "sqlite"

    def stored(table: str, column: str, value: Any) -> Any:
        kind = typed[table].get(column)
        if value is None or kind is None:
            return value
        if kind == "json":
            return json.dumps(value, ensure_ascii=False)
        moment = datetime.fromisoformat(value).astimezone(UTC)
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else moment

    with engine.begin() as conn:
        for table, rows in data.items():
            if table.startswith("_"):
                continue
            columns = list(rows[0])
            statement = sa.text(f"INSERT INTO {table} ({', '.join(columns)}) "
                                f"VALUES ({', '.join(':' + c for c in columns)})")
            conn.execute(statement, [{c: stored(table, c, row[c]) for c in columns} for row in rows])
            if not sqlite and "id" in columns:  # as a restore does: the next id follows the restored ones
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                                     f"FROM {table}"))


def _assert_rows(engine: sa.Engine, data: dict[str, Any]) -> None:
    """Every row written at 0001 is still there with the same values (and nothing else is)."""
    typed = _typed(engine)

    def read(table: str, column: str, value: Any) -> Any:
        kind = typed[table].get(column)
        if value is None or kind is None:
            return value
        if kind == "json":
            return json.loads(value) if isinstance(value, str) else value
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()

    with engine.connect() as conn:
        for table, rows in data.items():
            if table.startswith("_"):
                continue
            columns = list(rows[0])
            found = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")).all()
            assert [{c: read(table, c, v) for c, v in zip(columns, row, strict=True)} for row in found] == rows, table


def _assert_append_only(engine: sa.Engine) -> None:
    """On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE."""
    for statement in ("UPDATE audit SET actor = 'someone@example.org'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(sa.exc.DBAPIError, match="councilflow audit entries are append-only"), \
                engine.begin() as conn:
            conn.exec_driver_sql(statement)


def test_data_written_at_0001_survives_every_later_revision(new_database: Callable[[], str], defs_dir: Path,
                                                              clock: FixedClock) -> None:
    """A database holding papers, audit entries, deadlines, reminders, tokens and a heartbeat written at 0001
    is upgraded one revision at a time up to head: after each step the rows are intact; at head the trail
    verifies (also by `audit verify`) and the application carries on with the papers."""
    data = json.loads(DATA_AT_0001.read_text(encoding="utf-8"))
    url = new_database()
    store = SqlStore(url)
    upgrade(store.engine, "0001")
    _restore(store.engine, data)
    _assert_rows(store.engine, data)
    postgres = store.dialect == "postgresql"
    if postgres:
        _assert_append_only(store.engine)
    revisions = _revisions()
    assert revisions[0] == "0001" and revisions[-1] == SCHEMA_HEAD
    for revision in revisions[1:]:
        upgrade(store.engine, revision)
        assert store.schema_revision() == revision
        _assert_rows(store.engine, data)
    assert store.schema_revision() == SCHEMA_HEAD
    if postgres:
        _assert_append_only(store.engine)
    store.dispose()

    from workflow.cli import run

    assert run(["audit", "verify", "--db", url, "--definitions", str(defs_dir)]) == 0
    engine = Engine(SqlStore(url), DefinitionLibrary(defs_dir), clock)
    try:
        assert engine.verify().ok
        assert {p["reference"]: p["state"] for p in data["papers"]} == {
            r: engine.status(r).state for r in engine.store.references()}
        assert resolve_token(engine.store, data["_token"]) == SITZ
        clock.set(datetime(2020, 8, 25, 8, tzinfo=UTC))
        engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
        assert engine.status("SV-1").state == "zur_kenntnis_genommen"
        engine.create("sachstandsbericht", "SV-NEU", LANDRAT, {"title": "nach dem Upgrade"})
        assert engine.store.load("SV-NEU").id == 1 + max(p["id"] for p in data["papers"])
        transport = MemoryTransport()
        report = Dispatcher(engine, transport, Settings(), worker="upgraded:1").tick(
            datetime(2020, 9, 30, 8, tzinfo=UTC))
        assert report.sent > 0 and report.failed == report.fenced == 0, report.errors
        sent_before = {header_message_id(r["message_id"], Settings().mail_from) for r in data["reminders"]
                       if r["status"] == "sent"}
        assert sent_before.isdisjoint(m["Message-ID"] for m in transport.sent)  # nothing sent twice
        assert engine.verify().ok
    finally:
        engine.store.dispose()
    assert run(["audit", "verify", "--db", url, "--definitions", str(defs_dir)]) == 0


def _migrations() -> list[Any]:
    """The modules of every shipped revision, oldest first (their trigger SQL is the reference of the
    append-only tables)."""
    import importlib.util

    modules = []
    for revision in _revisions():
        script = ScriptDirectory.from_config(_config()).get_revision(revision)
        assert script is not None and script.path is not None
        spec = importlib.util.spec_from_file_location(f"councilflow_migration_{revision}", script.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules
