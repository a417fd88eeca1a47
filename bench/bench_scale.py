"""Scale-out figures: transitions/s with 1, 2, 4 writer processes (PostgreSQL and SQLite), mails/s
delivered with 1 and 4 workers (PostgreSQL), RSS of `serve` with 1,000 and 100,000 open papers, and the
start-up time of `councilflow --help` beside bare imports.

Run: `.venv/bin/python bench/bench_scale.py` (also in `make bench`; PostgreSQL on 127.0.0.1:5432).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import pg_create, pg_drop
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "councilflow")
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"


def _engine(url: str) -> Engine:
    return Engine(SqlStore(url), DefinitionLibrary(ROOT / "definitions"), FixedClock(datetime(2020, 8, 4, tzinfo=UTC)))


def _writer(url: str, ref: str, n: int, start: mp.Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    engine = _engine(url)
    values = {"result": "vertagt", "meeting": "2030-09-24T17:00"}
    start.wait()
    t = time.perf_counter()
    for _ in range(n):
        engine.fire(ref, "vertagen", SITZ, values=values)
    out.put(time.perf_counter() - t)


def writers(url: str, processes: int, n: int) -> float:
    engine = _engine(url)
    engine.store.init()
    refs = [f"W-{uuid.uuid4().hex[:8]}" for _ in range(processes)]
    for ref in refs:
        engine.create("sachstandsbericht", ref, LANDRAT, {"title": "Bench"})
        engine.sign(ref, KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
        engine.fire(ref, "einbringen", LANDRAT, values={"meeting": "2030-08-27T17:00"})
    engine.store.dispose()
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, ref, n, barrier, out)) for ref in refs]
    for p in procs:
        p.start()
    times = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return processes * n / max(times)


def mails(url: str, workers: int, count: int) -> float:
    engine = _engine(url)
    engine.store.init()
    payload = json.dumps({"today": "2020-08-04T06:00:00+00:00", "until": "2020-08-18T06:00:00+00:00", "items": []})
    with engine.store._transaction() as cur:
        cur.executemany(engine.store._sql(
            "INSERT INTO reminders (kind, label, send_at, recipients, payload, message_id, status, attempts, "
            "next_attempt_at) VALUES ('digest', 'x', :at, '[\"a@example.org\"]', :p, :m, 'pending', 0, :at)"),
            [{"at": engine.store._db_time(datetime(2020, 8, 4, tzinfo=UTC)), "p": payload,
              "m": f"<b-{uuid.uuid4().hex}@cf>"} for _ in range(count)])
    env = {**os.environ, "COUNCILFLOW_DB": url, "COUNCILFLOW_DEFINITIONS": str(ROOT / "definitions"),
           "COUNCILFLOW_MAIL": "memory:", "COUNCILFLOW_BATCH": "100"}
    t = time.perf_counter()
    procs = [subprocess.Popen([EXE, "tick"], env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - t
    with engine.store._transaction() as cur:
        cur.execute("SELECT count(*) FROM reminders WHERE status = 'sent'")
        assert int(cur.fetchone()[0]) == count
    engine.store.dispose()
    return count / elapsed


def serve_rss(open_papers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/rss.db"
        store = SqlStore(url)
        store.init()
        with store._transaction() as cur:
            cur.executemany(
                "INSERT INTO papers (reference, workflow, workflow_version, definition_hash, state, entered_at, "
                "branches, fields, created_at, updated_at, version, last_seq, last_hash) VALUES (?, "
                "'sachstandsbericht', 1, 'x', 'ausschuss', '2030-01-01 00:00:00.000000', '{}', "
                "'{\"title\": \"x\"}', '2030-01-01 00:00:00.000000', '2030-01-01 00:00:00.000000', 1, 0, '')",
                [(f"R-{i}",) for i in range(open_papers)])
        store.dispose()
        env = {**os.environ, "COUNCILFLOW_DB": url, "COUNCILFLOW_DEFINITIONS": str(ROOT / "definitions"),
               "COUNCILFLOW_MAIL": "memory:", "COUNCILFLOW_TICK_SECONDS": "1"}
        proc = subprocess.Popen([EXE, "serve"], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # "serve: ticking every …"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # let it tick a few times
            time.sleep(0.5)
        rss = 0
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        return rss / 1024


def startup() -> dict[str, float]:
    def timed(args: list[str]) -> float:
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            subprocess.run(args, stdout=subprocess.DEVNULL, check=True)
            runs.append(time.perf_counter() - t)
        return statistics.median(runs) * 1000

    py = sys.executable
    return {"councilflow --help": timed([EXE, "--help"]),
            "python -c 'import sqlite3'": timed([py, "-c", "import sqlite3"]),
            "bare import of sqlmodel, transitions, apscheduler, jinja2": timed(
                [py, "-c", "import sqlmodel, transitions, apscheduler, jinja2"])}


def main() -> None:
    n = 1000
    print("writers (vertagen, one paper per process, one commit per change):")
    for backend in ("sqlite", "postgresql"):
        for processes in (1, 2, 4):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    rate = writers(f"sqlite:///{tmp}/w.db?synchronous=NORMAL", processes, n)
            else:
                name = pg_create("cf_bench_")
                try:
                    rate = writers(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", processes, n)
                finally:
                    pg_drop(name)
            print(f"  {backend:<11} {processes} process(es): {rate:,.0f} transitions/s")
    print("mails delivered (memory transport, PostgreSQL, 4,000 due):")
    for workers in (1, 4):
        name = pg_create("cf_bench_")
        try:
            rate = mails(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", workers, 4000)
        finally:
            pg_drop(name)
        print(f"  {workers} worker(s): {rate:,.0f} mails/s")
    small, large = serve_rss(1_000), serve_rss(100_000)
    print(f"serve RSS: {small:.0f} MB with 1,000 open papers, {large:.0f} MB with 100,000 "
          f"(ratio {large / small:.2f}, target <= 1.2)")
    times = startup()
    for name, ms in times.items():
        print(f"start-up: {name}: {ms:.0f} ms")
    ratio = (times["councilflow --help"] - times["python -c 'import sqlite3'"]) / \
        (times["bare import of sqlmodel, transitions, apscheduler, jinja2"] - times["python -c 'import sqlite3'"])
    print(f"  councilflow --help costs {ratio:.2f} of the bare stack import beyond the interpreter (target <= 0.25)")


if __name__ == "__main__":
    main()
