"""Audit benchmarks: one paper's history with 10,000,000 rows in the table, an as-of query, and the
CSV export's speed and memory.

Run: `.venv/bin/python bench/bench_audit.py [--rows 10000000]` (also in `make bench`; about 3 minutes).
Target (issue 4): the history of one paper <= 5 ms with 10,000,000 audit rows.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore

ROOT = Path(__file__).resolve().parent.parent
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"


def build(path: Path, rows: int) -> Engine:
    """A real paper with a real trail, buried among ``rows`` filler entries of 100,000 other papers."""
    store = SqlStore(f"sqlite:///{path}?synchronous=OFF")
    clock = FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC))
    engine = Engine(store, DefinitionLibrary(ROOT / "definitions"), clock)
    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {"title": "Digitalisierungsstrategie"})
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    papers = 100_000
    con.executemany(
        "INSERT INTO papers (id, reference, workflow, workflow_version, definition_hash, state, entered_at, branches, "
        "fields, created_at, updated_at, version, last_seq, last_hash) VALUES (?, ?, 'sachstandsbericht', 1, 'x', "
        "'ausschuss', '2020-01-01 00:00:00.000000', '{}', '{}', '2020-01-01 00:00:00.000000', "
        "'2020-01-01 00:00:00.000000', 1, 0, '')",
        ((i + 2, f"F-{i}") for i in range(papers)))
    batch, seq = [], 1
    for i in range(rows):
        seq += 1
        paper = i % papers
        batch.append((seq, paper + 2, f"F-{paper}", "vertagen", "2020-01-01 00:00:00.000000",
                      '{"result":"vertagt"}'))
        if len(batch) == 100_000:
            con.executemany("INSERT INTO audit (seq, paper_id, reference, workflow, workflow_version, kind, trigger, "
                            "from_state, to_state, actor, at, payload, prev_hash, hash) VALUES (?, ?, ?, "
                            "'sachstandsbericht', 1, 'transition', ?, 'ausschuss', 'ausschuss', 'x@y.z', ?, ?, '', '')",
                            batch)
            batch.clear()
    if batch:
        con.executemany("INSERT INTO audit (seq, paper_id, reference, workflow, workflow_version, kind, trigger, "
                        "from_state, to_state, actor, at, payload, prev_hash, hash) VALUES (?, ?, ?, "
                        "'sachstandsbericht', 1, 'transition', ?, 'ausschuss', 'ausschuss', 'x@y.z', ?, ?, '', '')",
                        batch)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    # The real paper moves on after the filler, so its entries are spread over the whole table.
    clock.advance(timedelta(hours=1))
    engine.sign("SV-9-1809", KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    for week in range(1, 9):
        clock.advance(timedelta(days=7))
        engine.fire("SV-9-1809", "vertagen", SITZ,
                    values={"result": "vertagt", "meeting": (datetime(2020, 9, 3, 15, tzinfo=UTC)
                                                              + timedelta(days=7 * week)).isoformat()})
    return engine


def timed(fn: object, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def export_run(db: Path) -> tuple[float, int, float]:
    """Run `councilflow audit export --format csv` in a fresh child: seconds, rows, its own peak RSS (MB)."""
    exe = Path(sys.executable).parent / "councilflow"
    with tempfile.NamedTemporaryFile() as report:
        t = time.perf_counter()
        command = [str(exe), "audit", "export", "--format", "csv", "--db", f"sqlite:///{db}",
                   "--definitions", str(ROOT / "definitions")]
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                              stdout=subprocess.PIPE, check=True)
        elapsed = time.perf_counter() - t
        peak_kb = int(Path(report.name).read_text().split()[-1])
    return elapsed, done.stdout.count(b"\n") - 1, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.db", Path(tmp) / "big.db"
        t = time.perf_counter()
        engine = build(big, args.rows)
        print(f"built {args.rows:,} audit rows in {time.perf_counter() - t:.0f} s")
        history_ms = timed(lambda: engine.history("SV-9-1809"))
        asof_ms = timed(lambda: engine.status("SV-9-1809", as_of="2020-09-20T12:00"))
        print(f"history of one paper ({len(engine.history('SV-9-1809'))} entries) among {args.rows:,} rows: "
              f"{history_ms:.2f} ms (target <= 5 ms: {'met' if history_ms <= 5 else 'MISSED'})")
        print(f"status --as-of (history up to the instant + replay): {asof_ms:.2f} ms")
        engine.store.dispose()
        small_rows = args.rows // 10
        build(small, small_rows).store.dispose()
        for db in (small, big):
            elapsed, lines, peak = export_run(db)
            print(f"audit export --format csv, {lines:,} rows: {elapsed:.1f} s = {lines / elapsed:,.0f} rows/s, "
                  f"peak RSS of the process {peak:.0f} MB")


if __name__ == "__main__":
    main()
