"""Web benchmark: requests/s and p99 latency of the paper page and of the fire endpoint against
`councilflow web` on loopback, beside the same operations through the Python API (overhead ratio).

Run: `.venv/bin/python bench/bench_web.py [--n 1000]` (also in `make bench`). Bounded: n requests each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import p99, wait_until_up
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore

ROOT = Path(__file__).resolve().parent.parent
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
EXE = str(Path(sys.executable).parent / "councilflow")


def stats(samples: list[float]) -> tuple[float, float]:
    """(requests per second, p99 in ms) of sequential samples."""
    return len(samples) / sum(samples), p99(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/web.db?synchronous=NORMAL"
        engine = Engine(SqlStore(db), DefinitionLibrary(ROOT / "definitions"),
                        FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC)))
        for ref in ("SV-WEB", "SV-API"):
            engine.create("sachstandsbericht", ref, LANDRAT, {"title": "Bench"})
            engine.sign(ref, KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
            engine.fire(ref, "einbringen", LANDRAT, values={"meeting": "2030-08-27T17:00"})
        values = {"result": "vertagt", "meeting": "2030-09-24T17:00"}
        api_page, api_fire = [], []
        for _ in range(args.n):
            t = time.perf_counter()
            engine.status("SV-API")
            engine.history("SV-API")
            api_page.append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.fire("SV-API", "vertagen", SITZ, values=values)
            api_fire.append(time.perf_counter() - t)
        engine.store.dispose()
        port = 18000 + os.getpid() % 1000
        env = {**os.environ, "COUNCILFLOW_DB": db, "COUNCILFLOW_DEFINITIONS": str(ROOT / "definitions"),
               "COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "127.0.0.1"}
        server = subprocess.Popen([EXE, "web", "--port", str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, headers={"X-Remote-User": SITZ}, timeout=10) as client:
                wait_until_up(lambda: client.get("/oparl/v1.1/system"), 30, 0.1)
                web_page, web_fire = [], []
                for _ in range(args.n):
                    t = time.perf_counter()
                    assert client.get("/vorlagen/SV-WEB").status_code == 200
                    web_page.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    assert client.post("/api/papers/SV-WEB/fire",
                                       json={"trigger": "vertagen", "values": values}).status_code == 200
                    web_fire.append(time.perf_counter() - t)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{'operation':<44}{'req/s':>8}{'p99 ms':>9}{'Python API/s':>14}{'overhead':>10}")
    for name, web, api in (("paper page (GET /vorlagen/REF)", web_page, api_page),
                           ("fire (POST /api/papers/REF/fire)", web_fire, api_fire)):
        rate, web_p99 = stats(web)
        api_rate, _ = stats(api)
        print(f"{name:<44}{rate:>8.0f}{web_p99:>9.2f}{api_rate:>14.0f}{api_rate / rate:>9.1f}x")


if __name__ == "__main__":
    main()
