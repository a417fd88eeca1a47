"""OParl import speed: the real Karlsruhe sample (785 papers, 531 meetings) into a fresh SQLite file.

Run: `.venv/bin/python bench/bench_import.py [--rounds 3]` (also in `make bench`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import DefinitionLibrary, SqlStore
from workflow.oparl_import import OParlImporter, load_mapping
from workflow.oparl_read import read_oparl

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "research-data" / "karlsruhe-oparl" / "oparl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    library = DefinitionLibrary(ROOT / "definitions")
    mapping = load_mapping(ROOT / "definitions" / "mappings" / "karlsruhe.yaml", lambda w: library.current(w)[0])
    definition, text = library.current("karlsruhe")
    t = time.perf_counter()
    data = read_oparl([DATA])
    read_s = time.perf_counter() - t
    best = 0.0
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            store = SqlStore(f"sqlite:///{tmp}/import.db")
            store.init()
            importer = OParlImporter(store, definition, text, mapping, lambda: datetime(2026, 8, 22, tzinfo=UTC))
            t = time.perf_counter()
            report = importer.run(data)
            elapsed = time.perf_counter() - t
            store.dispose()
        best = max(best, len(data.papers) / elapsed)
    print(f"read {len(data.papers)} papers, {len(data.meetings)} meetings, {len(data.organizations)} organizations "
          f"in {read_s:.2f} s")
    print(f"import: {report.summary()}; best of {args.rounds}: {best:,.0f} papers/s "
          f"(each replayed in memory, then written in one transaction with its entries and deadlines)")


if __name__ == "__main__":
    main()
