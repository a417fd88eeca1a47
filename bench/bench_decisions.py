"""The Beschlusskontrolle at scale: one body with 10,000 decisions and 50,000 follow-up papers (and as many
again of other bodies), its first page and a deep page through ``Engine.decisions_page`` (the one query the
CLI, the page and the API call: labels, responsible, the traffic light), beside the store's statement on a
DBAPI connection; SQLite (a file) and PostgreSQL. Target: ≤ 200 ms.

The database is filled in bulk: one strategy is adopted through the engine with five measures (so the
definitions are stored and its five Umsetzungsaufträge are real), then its parent, children, their running
deadlines and the ``decisions`` rows are cloned under new references with executemany (SQLite) or COPY
(PostgreSQL). A tenth of the children are delayed, a third finished; target dates spread over two years.

Run: `.venv/bin/python bench/bench_decisions.py [--decisions 10000] [--per 5] [--n 50]
[--backend sqlite|postgresql|both] [--attach]` (PostgreSQL on 127.0.0.1:5432; a scratch database is made and
dropped). ``--attach``: also the report a follow-up attaches, as HTML and as PDF.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEADLINE_COLUMNS, PAPER_COLUMNS, Copier, filled, last_ids, pg_create, pg_drop
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.access import Person
from workflow.decisions import cursor_text, parse_cursor, sort_moment
from workflow.store.timecodec import from_db

ROOT = Path(__file__).resolve().parent.parent
FEDER = "digitalisierung@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
VERANTWORTLICH = "digitalisierung@kreis-coesfeld.example"
NOW = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)
BATCH = 5000
DECISION_COLUMNS = ("id", "body", "paper_id", "reference", "decided_at", "result", "follow_up", "n", "child_id",
                    "child", "delayed", "final", "target_at", "sort_at")


def template(engine: Engine, per: int) -> None:
    """One strategy adopted with ``per`` measures through the engine (the definitions stored)."""
    ref = "T-KS"
    engine.create("kreisstrategie", ref, FEDER, {"title": "Digitalisierungsstrategie",
                                                 "massnahmen": ", ".join(f"Maßnahme {n}" for n in range(1, per + 1))})
    engine.fire(ref, "einbringen", FEDER)
    for _ in range(2):
        engine.fire(ref, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(ref, "beschliessen", SITZ, values={"result": "beschlossen"})
    definition = engine.definition_of(engine.load(ref))
    for body in definition.states["kommunale_raete"].parallel.bodies:  # type: ignore[union-attr]
        engine.fire(ref, "beschliessen", SITZ, branch=body, values={"result": "beschlossen"})


def fill(engine: Engine, decisions: int, per: int) -> int:
    """``decisions`` cloned strategies of the Kreistag with ``per`` follow-ups each, and as many of the
    Kreisausschuss (another body: the index must keep them apart); the decisions rows written."""
    store = engine.store
    assert isinstance(store, SqlStore)
    template(engine, per)
    parent = store.load("T-KS")
    children = [store.load(f"T-KS-M{n}") for n in range(1, per + 1)]
    copy = Copier(store)
    db = store._db_time
    pid, did, xid = last_ids(store, "papers", "deadlines", "decisions")
    written = 0
    for body in ("kreistag", "kreisausschuss"):
        for start in range(0, decisions, BATCH // per):
            papers, deadlines, rows = [], [], []
            for k in range(start, min(start + BATCH // per, decisions)):
                pid += 1
                parent_id, ref = pid, f"B-{body}-{k:06d}"
                decided = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(hours=k)
                params = store._state_params(parent.state)
                papers.append((parent_id, ref, parent.workflow, parent.workflow_version, parent.definition_hash,
                               params["state"], db(decided), None, params["branches"], params["fields"],
                               params["result"], db(decided), db(decided), 1, 0, "0" * 64, None, True, None))
                for n, child in enumerate(children, 1):
                    pid += 1
                    serial = k * per + n
                    final = serial % 3 == 0
                    delayed = not final and serial % 10 == 1
                    state = "erledigt" if final else ("verzoegert" if delayed else "in_arbeit")
                    target = None if final else NOW + timedelta(days=serial % 730 - 60)
                    fields = json.dumps({"title": f"Maßnahme {n}", "public": True, "references": [ref],
                                         "zieltermin": target.date().isoformat() if target else None})
                    papers.append((pid, f"{ref}-M{n}", child.workflow, child.workflow_version, child.definition_hash,
                                   state, db(decided), None, "{}", fields, None, db(decided), db(decided), 2, 0,
                                   "0" * 64, None, True, db(target)))
                    if target is not None:
                        did += 1
                        deadlines.append((did, pid, f"{ref}-M{n}", "zieltermin", "Umsetzung zum Zieltermin", state,
                                          "", None, db(target), "zieltermin", db(target), db(decided), "running",
                                          None))
                    xid += 1
                    rows.append((xid, body, parent_id, ref, db(decided), "beschlossen", "massnahme", n, pid,
                                 f"{ref}-M{n}", delayed, final, db(target), db(sort_moment(target, delayed))))
            with store._transaction() as cur:
                copy(cur, "papers", PAPER_COLUMNS, papers)
                copy(cur, "deadlines", DEADLINE_COLUMNS, deadlines)
                copy(cur, "decisions", DECISION_COLUMNS, rows)
            written += len(rows)
    filled(store, ("papers", "deadlines", "decisions"))
    return written


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(n: int, call: Callable[[], Any]) -> list[float]:
    call()  # warm: definitions parsed, statements prepared
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-decisions-")
        try:
            yield f"sqlite:///{folder}/councilflow.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = pg_create("bench_decisions_")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        pg_drop(name)


def run_backend(backend: str, args: argparse.Namespace) -> None:
    with database(backend) as url, tempfile.TemporaryDirectory() as defs:
        for name in ("kreisstrategie", "sachstandsbericht", "umsetzung"):
            shutil.copy(ROOT / "definitions" / f"{name}.yaml", defs)
        store = SqlStore(url)
        store.init()
        clock = FixedClock(datetime(2025, 9, 1, 7, tzinfo=UTC))
        engine = Engine(store, DefinitionLibrary(Path(defs)), clock)
        started = time.perf_counter()
        written = fill(engine, args.decisions, args.per)
        print(f"{backend}: {written:,} decision rows ({args.decisions:,} decisions × {args.per} follow-ups × 2 "
              f"bodies) in {time.perf_counter() - started:.0f} s")
        clock.set(NOW)
        clerk = Person("jemand@kreis-coesfeld.example")
        readable = engine.readable_definitions(clerk)
        # the cursor of a page in the middle of the open follow-ups (a deep page)
        middle = args.decisions * args.per // 2
        with store._transaction() as cur:
            cur.execute(store._sql("SELECT sort_at, id FROM decisions WHERE body = 'kreistag' AND final = :f "
                                   "ORDER BY sort_at, id LIMIT 1 OFFSET :o"), {"f": False, "o": middle // 2})
            row = cur.fetchone()
        deep = cursor_text((from_db(row[0]), int(row[1])))
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
        for label, status, after in (("first page, offen", "offen", None), ("deep page, offen", "offen", deep),
                                     ("first page, verzoegert", "verzoegert", None),
                                     ("first page, erledigt", "erledigt", None)):
            key = parse_cursor(after) if after else None
            sql, params = store.page_decisions_sql("kreistag", 51, key, status=status, readable=readable)

            def raw(sql: str = sql, params: dict[str, Any] = params) -> Any:
                with store._transaction() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()

            def page(status: str = status, after: str | None = after) -> Any:
                views, _next = engine.decisions_page(clerk, "Kreistag", status=status, limit=50, after=after)
                assert len(views) == 50, len(views)
                return views

            cases.append((label, page, raw))
        print(f"{'Beschlusskontrolle (' + backend + ', n=' + str(args.n) + ')':<44}{'engine p99 ms':>14}"
              f"{'median':>9}{'raw SQL p99 ms':>16}")
        for label, page, raw in cases:
            engine_ms = timed(args.n, page)
            raw_ms = timed(args.n, raw)
            print(f"{label:<44}{p99(engine_ms):>14.1f}{statistics.median(engine_ms):>9.1f}{p99(raw_ms):>16.1f}")
        if args.attach:
            attach_report(engine)
        store.dispose()


def attach_report(engine: Engine) -> None:
    """What a follow-up's ``attach`` costs when the scheduler creates a child: the body's report (at most
    ATTACH_MAX_ROWS rows) read and rendered, once as HTML and once as PDF (before the child's transaction)."""
    from workflow.decision_report import ATTACH_MAX_ROWS, attachment
    from workflow.definition import Attachment

    for fmt in ("html", "pdf"):
        started = time.perf_counter()
        made = attachment(engine, Attachment("kreistag", format=fmt), "Europe/Berlin", NOW)
        took = time.perf_counter() - started
        size = len(made.content) / 1e3
        print(f"attach: the report as {fmt} (≤ {ATTACH_MAX_ROWS:,} rows): {took * 1000:,.0f} ms, {size:,.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--per", type=int, default=5)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--attach", action="store_true", help="also time the report a follow-up attaches (PDF)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run_backend(backend, args)


if __name__ == "__main__":
    main()
