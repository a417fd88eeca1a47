"""Outbox benchmark: the due scan over 1,000,000 reminder rows.

Run: `make bench` (or `.venv/bin/python bench/bench_outbox.py [--rows 1000000]`).
Targets (issue 3): an empty poll <= 2x the raw sqlite3 query, a claim of 1,000 due rows <= 3x raw.
Mails delivered per second: bench/bench_mail.py.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import SqlStore

BASE = datetime(2030, 1, 1, tzinfo=UTC)
CLAIM = (
    "UPDATE reminders SET status = 'claimed', claim_token = ?, claimed_by = ?, next_attempt_at = ? "
    "WHERE id IN (SELECT id FROM reminders WHERE status IN ('pending', 'claimed') AND next_attempt_at <= ? "
    "ORDER BY next_attempt_at LIMIT ?) RETURNING id, deadline_id, paper_id, reference, kind, label, send_at, "
    "recipients, payload, message_id, status, attempts, next_attempt_at, claim_token, claimed_by, sent_at, last_error"
)


def _ts(moment: datetime) -> str:
    return moment.isoformat(" ", "microseconds")[:26]


def fill(path: Path, rows: int) -> SqlStore:
    """A database with ``rows`` pending reminders, one due per second from BASE on."""
    store = SqlStore(f"sqlite:///{path}?synchronous=NORMAL")
    store.init()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    batch = []
    for i in range(rows):
        at = _ts(BASE + timedelta(seconds=i))
        batch.append(("remind", "2 Arbeitstage vor Fristablauf", at, '["sitzungsdienst@kreis-coesfeld.example"]',
                      "{}", f"<bench-{i}@councilflow>", "pending", 0, at, f"SV-{i % 5000}"))
        if len(batch) == 50_000:
            con.executemany("INSERT INTO reminders (kind, label, send_at, recipients, payload, message_id, status, "
                            "attempts, next_attempt_at, reference) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        con.executemany("INSERT INTO reminders (kind, label, send_at, recipients, payload, message_id, status, "
                        "attempts, next_attempt_at, reference) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return store


def due_scan(rows: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "outbox.db"
        started = time.perf_counter()
        store = fill(path, rows)
        print(f"filled {rows:,} reminder rows in {time.perf_counter() - started:.1f} s")
        outbox = store.outbox
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        plan = raw.execute("EXPLAIN QUERY PLAN SELECT id FROM reminders WHERE status IN ('pending', 'claimed') "
                           "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 1000", (_ts(BASE),)).fetchall()
        print("query plan:", "; ".join(str(p[-1]) for p in plan))
        lease = timedelta(days=10_000)  # claimed rows stay out of the way of later rounds
        empty_engine, empty_raw, claim_engine, claim_raw = [], [], [], []
        before = BASE - timedelta(seconds=1)
        for r in range(rounds):
            # An empty poll takes microseconds: time 500 of them and keep the mean.
            t = time.perf_counter()
            for _ in range(500):
                assert outbox.claim(before, worker="bench", lease=lease, limit=1000) == []
            empty_engine.append((time.perf_counter() - t) / 500)
            t = time.perf_counter()
            for _ in range(500):
                raw.execute("BEGIN IMMEDIATE")
                assert raw.execute(CLAIM, ("x", "raw", _ts(before + lease), _ts(before), 1000)).fetchall() == []
                raw.execute("COMMIT")
            empty_raw.append((time.perf_counter() - t) / 500)
            now = BASE + timedelta(seconds=(2 * r + 1) * 1000 - 1)
            t = time.perf_counter()
            assert len(outbox.claim(now, worker="bench", lease=lease, limit=1000)) == 1000
            claim_engine.append(time.perf_counter() - t)
            now = BASE + timedelta(seconds=(2 * r + 2) * 1000 - 1)
            t = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            assert len(raw.execute(CLAIM, ("x", "raw", _ts(now + lease), _ts(now), 1000)).fetchall()) == 1000
            raw.execute("COMMIT")
            claim_raw.append(time.perf_counter() - t)
        raw.close()
        store.dispose()

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"{'due scan, ' + format(rows, ',') + ' rows':<34}{'engine ms':>10}{'raw ms':>8}{'ratio':>7}{'target':>8}")
    print("(raw: the same claim statement in sqlite3, BEGIN IMMEDIATE ... COMMIT; the engine probes the index first)")
    for name, eng, raw_t, target in (("empty poll", empty_engine, empty_raw, 2.0),
                                     ("claim 1,000 due", claim_engine, claim_raw, 3.0)):
        ratio = ms(eng) / ms(raw_t)
        print(f"{name:<34}{ms(eng):>10.2f}{ms(raw_t):>8.2f}{ratio:>7.2f}{'<= ' + str(target):>8}"
              f"  {'met' if ratio <= target else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    due_scan(args.rows, args.rounds)


if __name__ == "__main__":
    main()
