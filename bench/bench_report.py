"""Prüfbericht benchmark: the report of 1,000 and 10,000 entries (reading, labels and the verify of the whole
chain; HTML; PDF through WeasyPrint), and what a scope of 100,000 entries does (it is refused after reading
MAX_ENTRIES + 1 entries, before the verify and any rendering).

Run: `.venv/bin/python bench/bench_report.py [--sizes 1000,10000] [--refuse 100000]` (also in `make bench`;
half an hour and more on a busy 2-core machine: WeasyPrint's layout of the 10,000-entry PDF, and filling 100,000
entries through the engine for the refusal, which `--refuse 0` skips).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.errors import InputError
from workflow.report import MAX_ENTRIES, build_report, render, render_html

ROOT = Path(__file__).resolve().parent.parent
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
AUDITOR = "pruefung@kreis-coesfeld.example"


def fill(engine: Engine, clock: FixedClock, entries: int) -> None:
    """Real entries through the engine: papers created, brought into their committee and deferred again and
    again (each deferral with a result and a new meeting), 50 entries per paper."""
    made, paper = 0, 0
    while made < entries:
        ref = f"SV-{paper}"
        engine.create("sachstandsbericht", ref, LANDRAT, {"title": f"Sachstandsbericht {paper}"})
        engine.sign(ref, KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
        engine.fire(ref, "einbringen", LANDRAT, values={"meeting": "2030-01-10T17:00"})
        made += 3  # create, sign-off, einbringen
        for i in range(min(47, entries - made)):
            clock.advance(timedelta(minutes=1))
            engine.fire(ref, "vertagen", SITZ, values={"result": f"vertagt ({i + 1})",
                                                         "meeting": f"2030-{1 + i % 12:02d}-{10 + i % 15}T17:00"})
            made += 1
        paper += 1


def engine_with(folder: Path, entries: int) -> Engine:
    clock = FixedClock(datetime(2025, 1, 6, 8, tzinfo=UTC))
    engine = Engine(SqlStore(f"sqlite:///{folder / f'r{entries}.db'}?synchronous=OFF"),
                    DefinitionLibrary(ROOT / "definitions"), clock)
    engine.init()
    fill(engine, clock, entries)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--refuse", type=int, default=100_000, help="a scope this large is refused (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| entries | read + labels + verify | HTML | PDF (WeasyPrint) | pages | PDF size | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for size in (int(s) for s in args.sizes.split(",")):
            engine = engine_with(folder, size)
            t0 = time.perf_counter()
            report = build_report(engine, producer=AUDITOR, zone="Europe/Berlin")
            t1 = time.perf_counter()
            render_html(report)
            t2 = time.perf_counter()
            pdf = render(report, "pdf")
            t3 = time.perf_counter()
            import io

            from pypdf import PdfReader  # the test extra; only to count the pages
            pages = len(PdfReader(io.BytesIO(pdf)).pages)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            assert len(report.rows) == size and report.verify.ok
            print(f"| {size:,} | {t1 - t0:.2f} s | {t2 - t1:.2f} s | {t3 - t2:.1f} s | {pages} | "
                  f"{len(pdf) / 1e6:.1f} MB | {rss:.0f} MB |")
            engine.store.dispose()
        if args.refuse:
            engine = engine_with(folder, args.refuse)
            t0 = time.perf_counter()
            try:
                build_report(engine, producer=AUDITOR, zone="Europe/Berlin")
                raise SystemExit("a scope over MAX_ENTRIES was not refused")
            except InputError as exc:
                said = exc.message
            print(f"\n{args.refuse:,} entries in scope (MAX_ENTRIES {MAX_ENTRIES:,}): refused after "
                  f"{time.perf_counter() - t0:.2f} s: {said}")


if __name__ == "__main__":
    main()
