"""OParl import speed: real Karlsruhe OParl data into a fresh SQLite file, with definitions/karlsruhe.yaml.

Run: `.venv/bin/python bench/bench_import.py [--data DIR] [--rounds 3]` (also in `make bench`). DIR is a
folder of OParl files (papers.json, meetings.json, organizations.json); the default is the trimmed sample
in tests/data/karlsruhe-oparl (59 papers, 122 meetings; see its SOURCE.md).
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
DATA = ROOT / "tests" / "data" / "karlsruhe-oparl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                        help="folder of OParl JSON files to import (default: tests/data/karlsruhe-oparl)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a folder")
    library = DefinitionLibrary(ROOT / "definitions")
    mapping = load_mapping(ROOT / "definitions" / "mappings" / "karlsruhe.yaml", lambda w: library.current(w)[0])
    definition, text = library.current("karlsruhe")
    t = time.perf_counter()
    data = read_oparl([args.data])
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
