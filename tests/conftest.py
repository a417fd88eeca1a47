"""Shared fixtures: the shipped definitions, and one store per backend (SQLite, PostgreSQL, in memory)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.store import MemoryStore, Store

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
#: The two process-owner files exactly as written (version 1); see tests/data/process-owner/SOURCE.md.
SPEC = ROOT / "tests" / "data" / "process-owner"
PG_ADMIN_URL = os.environ.get("COUNCILFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

FEDER = "digitalisierung@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
LANDRAT = "buero.landrat@kreis-coesfeld.example"
#: Signs the shipped Sachstandsbericht off (Mitzeichnung, version 4) before it goes to the committee.
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"

# The suite reads what users read: German, whatever the machine's LANG says (subprocesses inherit this).
os.environ["COUNCILFLOW_LANG"] = "de"


@pytest.fixture(autouse=True)
def _german() -> Iterator[None]:
    """Every test starts in German and leaves the process language as it found it."""
    from workflow.i18n import set_language

    set_language("de")
    yield
    set_language("de")


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test on a store runs on SQLite, PostgreSQL and the in-memory store; a test that needs a
    database URL (a CLI run, another process, SQL tampering) runs on the two SQL backends."""
    if "backend" in metafunc.fixturenames:
        names = ["sqlite", "postgres"] + ([] if "db_url" in metafunc.fixturenames else ["memory"])
        metafunc.parametrize("backend", [pytest.param(n, marks=pytest.mark.postgres) if n == "postgres" else n
                                         for n in names])


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each SQL backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'councilflow.db'}"
    if backend == "memory":
        pytest.fail("a test asking for db_url is not run on the in-memory store (see pytest_generate_tests)")
    url: str = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store on each backend: the contract suite runs over all three."""
    made: Store = MemoryStore() if backend == "memory" else SqlStore(request.getfixturevalue("db_url"))
    made.init()
    yield made
    made.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2020, 8, 4, 7, 0, tzinfo=UTC))


@pytest.fixture
def defs_dir(tmp_path: Path) -> Path:
    """A definitions folder holding the two spec files exactly as the process owner wrote them."""
    folder = tmp_path / "definitions"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    return folder


@pytest.fixture
def engine(store: Store, defs_dir: Path, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(defs_dir), clock)


def engine_on(store: Store, folder: Path, clock: FixedClock, **texts: str) -> Engine:
    """An engine whose definitions folder (made here) holds ``texts``: workflow id -> definition text."""
    folder.mkdir()
    for workflow, text in texts.items():
        (folder / f"{workflow}.yaml").write_text(text, encoding="utf-8")
    return Engine(store, DefinitionLibrary(folder), clock)


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


