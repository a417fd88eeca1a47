"""Shared fixtures: definitions from definitions/, and one store per backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
PG_ADMIN_URL = os.environ.get("COUNCILFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

FEDER = "digitalisierung@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
LANDRAT = "buero.landrat@kreis-coesfeld.example"


def _pg_available() -> bool:
    import psycopg

    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session, dropped at the end."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is required in CI (started by .ci/run)")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    import psycopg

    name = f"councilflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_pg(url: str) -> None:
    store = SqlStore(url)
    store.init()
    with store.engine.begin() as conn:
        from sqlalchemy import text

        # The audit table refuses TRUNCATE; a superuser's replica role skips that trigger.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("TRUNCATE audit, reminders, deadlines, papers, definitions, tokens, heartbeats "
                          "RESTART IDENTITY CASCADE"))
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend: the contract suite runs over both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'councilflow.db'}"
    url: str = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2020, 8, 4, 7, 0, tzinfo=UTC))


@pytest.fixture
def defs_dir(tmp_path: Path) -> Path:
    """A definitions folder holding the two spec files exactly as the process owner wrote them."""
    folder = tmp_path / "definitions"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((DEFINITIONS / name).read_bytes())
    return folder


@pytest.fixture
def engine(db_url: str, defs_dir: Path, clock: FixedClock) -> Iterator[Engine]:
    store = SqlStore(db_url)
    store.init()
    yield Engine(store, DefinitionLibrary(defs_dir), clock)
    store.dispose()


COUNCILS = [
    "rat_ascheberg", "rat_billerbeck", "rat_coesfeld", "rat_duelmen", "rat_havixbeck", "rat_luedinghausen",
    "rat_nordkirchen", "rat_nottuln", "rat_olfen", "rat_rosendahl", "rat_senden",
]


def contact(body: str) -> str:
    return f"hauptamt@{body.removeprefix('rat_')}.example"


def to_councils(engine: Engine, reference: str = "KS-1") -> None:
    """Create a strategy paper and move it into the parallel state of the 11 councils."""
    engine.create("kreisstrategie", reference, FEDER, {"title": "Digitalisierungsstrategie"})
    engine.fire(reference, "einbringen", FEDER)
    engine.fire(reference, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(reference, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(reference, "beschliessen", SITZ, values={"result": "beschlossen"})


