"""Two processes fire on the same paper at the same moment: exactly one wins, on both backends."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from workflow import ConflictError, DefinitionLibrary, Engine, FixedClock, SqlStore, verify
from workflow.store import sql as sql_module

from .conftest import FEDER, LANDRAT, SITZ


def _contender(url: str, defs: str, trigger: str, values: dict[str, str], barrier: Any, out: Any) -> None:
    """Load the paper, wait until the other process has loaded it too, then try to commit."""
    original = sql_module.SqlStore.save

    def save_after_barrier(self: SqlStore, *args: Any, **kwargs: Any) -> int:
        barrier.wait(timeout=30)
        return original(self, *args, **kwargs)

    sql_module.SqlStore.save = save_after_barrier  # type: ignore[method-assign]
    engine = Engine(SqlStore(url), DefinitionLibrary(defs), FixedClock(datetime(2020, 8, 5, tzinfo=UTC)))
    try:
        engine.fire("SV-1", trigger, LANDRAT if trigger != "kenntnis_nehmen" else SITZ, values=values)
        out.put(("won", trigger))
    except ConflictError as exc:
        out.put(("conflict", str(exc)))
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put(("error", repr(exc)))


def test_barrier_exactly_one_wins(engine: Engine, db_url: str, defs_dir: Path) -> None:
    """Both contenders read version N; one commits, the other gets 'von jemand anderem geändert, retry'."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Wettlauf"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    before = engine.store.count_audit()
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(db_url, str(defs_dir), "zurueckziehen", {}, barrier, out)),
        ctx.Process(target=_contender, args=(db_url, str(defs_dir), "kenntnis_nehmen",
                                             {"result": "zur Kenntnis genommen"}, barrier, out)),
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    outcomes = sorted(r[0] for r in results)
    assert outcomes == ["conflict", "won"], results
    conflict = next(r[1] for r in results if r[0] == "conflict")
    assert conflict == "SV-1 wurde inzwischen von jemand anderem geändert; bitte wiederholen"
    winner = next(r[1] for r in results if r[0] == "won")
    assert engine.store.count_audit() == before + 1
    assert engine.history("SV-1")[-1].trigger == winner
    assert engine.status("SV-1").state == {"zurueckziehen": "zurueckgezogen",
                                           "kenntnis_nehmen": "zur_kenntnis_genommen"}[winner]
    assert verify(engine.store).ok


def test_a_broken_row_is_a_storage_error_not_a_race_to_retry(engine: Engine, db_url: str) -> None:
    """A unique key the change cannot help breaking (here a stale row of the list of bodies, left by a hand edit)
    is reported as the database said it, not as "changed by someone else; retry" (which hid such causes)."""
    from sqlalchemy import text

    from workflow.errors import StorageError

    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Strategie"})
    other = engine.create("kreisstrategie", "KS-2", FEDER, {"title": "Andere"})
    with engine.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("INSERT INTO paper_bodies (body, reference, paper_id) VALUES ('bmk', 'KS-1', :id)"),
                     {"id": other.id})
    with pytest.raises(StorageError) as caught:
        engine.fire("KS-1", "einbringen", FEDER)
    message = caught.value.message
    assert message.startswith("Datenbank '") and ("UNIQUE constraint failed: paper_bodies" in message
                                                  or "paper_bodies_pkey" in message), message
    assert engine.status("KS-1").state == "entwurf"  # nothing half-written
