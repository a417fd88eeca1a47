"""The anonymous OParl endpoint must not starve signed-in staff: p99 of a signed-in
`GET /api/papers/{ref}` alone, and beside 8 OParl clients paging through the public lists, against
`councilflow web` on loopback (SQLite; 2,000 papers with their trails; while the trail does not change,
the export is built once and served from memory).

Run: `.venv/bin/python bench/bench_oparl.py [--papers 2000] [--n 400]`. Target: beside ≤ 3× alone.
Bounded: n staff requests; the OParl clients (8 threads in a process of their own, as if on other
machines) stop when the staff client is done.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import p99, wait_until_up
from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.store import open_store

ROOT = Path(__file__).resolve().parent.parent
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
EXE = str(Path(sys.executable).parent / "councilflow")


def staff(base: str, n: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=base, headers={"X-Remote-User": SITZ}, timeout=30) as client:
        for i in range(n):
            t = time.perf_counter()
            assert client.get(f"/api/papers/SV-{i % 50}").status_code == 200
            samples.append(time.perf_counter() - t)
    return samples


def oparl_client(base: str, stop: Any, served: Any) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        page = 1
        while not stop.is_set() and served.value < 1_000_000:
            response = client.get("/oparl/v1.1/bodies/1/papers", params={"page": page})
            assert response.status_code == 200
            with served.get_lock():
                served.value += 1
            page = page + 1 if b'"next"' in response.content else 1


def oparl_clients(base: str, stop: Any, served: Any) -> None:
    """8 anonymous clients in a process of their own (as they would be on other machines)."""
    threads = [threading.Thread(target=oparl_client, args=(base, stop, served)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/oparl.db?synchronous=NORMAL"
        engine = Engine(open_store(db), DefinitionLibrary(ROOT / "definitions"),
                        FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC)))
        for i in range(args.papers):
            engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
            engine.sign(f"SV-{i}", KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
            engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2030-08-27T17:00"})
        engine.store.dispose()
        port = 19000 + os.getpid() % 1000
        env = {**os.environ, "COUNCILFLOW_DB": db, "COUNCILFLOW_DEFINITIONS": str(ROOT / "definitions"),
               "COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "127.0.0.1"}
        server = subprocess.Popen([EXE, "web", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(lambda: httpx.get(f"{base}/oparl/v1.1/system", timeout=5), 30, 0.1)
            alone = staff(base, args.n)
            stop, served = multiprocessing.Event(), multiprocessing.Value("i", 0)
            others = multiprocessing.Process(target=oparl_clients, args=(base, stop, served))
            others.start()
            limit = time.monotonic() + 30
            while served.value == 0 and others.is_alive() and time.monotonic() < limit:
                httpx.get(f"{base}/oparl/v1.1/system", timeout=5)  # until the clients are under way
            before = served.value
            beside = staff(base, args.n)
            counts = [served.value - before]
            stop.set()
            others.join(timeout=120)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ratio = p99(beside) / p99(alone)
    print(f"signed-in GET /api/papers/REF p99 alone:            {p99(alone):7.2f} ms")
    print(f"signed-in GET /api/papers/REF p99 beside 8 OParl:    {p99(beside):7.2f} ms "
          f"({counts[0]} OParl pages served meanwhile)")
    print(f"ratio {ratio:.2f} (target <= 3): {'met' if ratio <= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
