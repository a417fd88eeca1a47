"""Lists at scale: p99 of the paper list (page 1 and a deep page), "Meine Fristen" of a clerk, the audit page
(page 1 and page 1,000) and an OParl papers page with 100,000 papers and 1,000,000 audit entries, each
through `councilflow web` (uvicorn, a subprocess) over HTTP on loopback, beside the same query in raw SQL on a
DBAPI connection in the same run; SQLite (a file) and PostgreSQL.

The database is filled in bulk: a few template papers are made through the engine, then cloned under new
references; each clone's entries are numbered and hashed after the trail's end with the store's own
``chain_entries`` (workflow/chain.py's hashing), so the trail is one valid chain (``--verify`` checks it).
The rows go in with executemany (SQLite) or COPY (PostgreSQL).

Each figure is the p99 and, in brackets, the median (on a shared machine the distance between them is the
waiting for a core). The OParl page is measured twice: while its objects are built (first visit) and, in a
fresh process, as stored; its raw SQL is a request's (the trail's head, the page from its first id), and the
count and first-id skip done once per trail head are shown on a line of their own.

Run: `.venv/bin/python bench/bench_lists.py [--papers 100000] [--entries 1000000] [--n 200]
[--backend sqlite|postgresql|both] [--verify] [--keep DIR [--fill-only]]` (PostgreSQL on 127.0.0.1:5432; a
scratch database is made and dropped unless kept), and `--measure-only URL` for a database filled before.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEADLINE_COLUMNS,
    PAPER_COLUMNS,
    Copier,
    filled,
    last_ids,
    p99,
    pg_create,
    pg_drop,
    wait_until_up,
)
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.access import Person
from workflow.paper import Change, bodies_at
from workflow.store.records import chain_entries, reminder_message_id

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "councilflow")
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SITZ = "sitzungsdienst@kreis-coesfeld.example"
FEDER = "digitalisierung@kreis-coesfeld.example"
AUDITOR = "pruefung@kreis-coesfeld.example"
BATCH = 2000


def templates(engine: Engine) -> list[str]:
    """Template papers made through the engine, about ten entries each: consultations whose meeting was moved
    (some due before the clock's now, so overdue), a private one, the eleven councils deciding, a finished one."""
    made = []
    for n, (meeting, moves, private) in enumerate([("2026-01-15T17:00", 8, False), ("2027-03-01T17:00", 8, False),
                                                   ("2027-05-10T17:00", 7, True), ("2027-06-01T17:00", 9, False)]):
        ref = f"T-SV-{n}"
        fields = {"title": f"Sachstandsbericht {n}"} | ({"public": "false"} if private else {})
        engine.create("sachstandsbericht", ref, LANDRAT, fields)
        engine.sign(ref, KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
        engine.fire(ref, "einbringen", LANDRAT, values={"meeting": meeting})
        for k in range(moves):
            engine.set_meeting(ref, f"{meeting[:8]}{int(meeting[8:10]) + k + 1:02d}{meeting[10:]}", SITZ)
        made.append(ref)
    ref = "T-KS"
    engine.create("kreisstrategie", ref, FEDER, {"title": "Digitalisierungsstrategie"})
    engine.fire(ref, "einbringen", FEDER)
    engine.fire(ref, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(ref, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(ref, "beschliessen", SITZ, values={"result": "beschlossen"})
    definition = engine.definition_of(engine.load(ref))
    for body in list(definition.bodies)[-5:]:
        contact = definition.bodies[body].contact
        if contact and body in engine.load(ref).state.branches:
            engine.fire(ref, "beschliessen", contact, branch=body, values={"result": "einstimmig"})
    made.append(ref)
    ref = "T-SV-fertig"
    engine.create("sachstandsbericht", ref, LANDRAT, {"title": "Erledigt"})
    engine.sign(ref, KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
    engine.fire(ref, "einbringen", LANDRAT, values={"meeting": "2025-11-20T17:00"})
    engine.fire(ref, "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    made.append(ref)
    return made


AUDIT_COLUMNS = ("seq", "paper_id", "reference", "workflow", "workflow_version", "kind", "trigger", "from_state",
                 "to_state", "branch", "body", "actor", "at", "payload", "prev_hash", "hash")
REMINDER_COLUMNS = ("id", "deadline_id", "paper_id", "reference", "kind", "label", "send_at", "recipients",
                    "payload", "message_id", "status", "attempts", "next_attempt_at")


def fill(engine: Engine, papers: int, entries: int) -> tuple[int, int]:
    """Clone the templates into ``papers`` papers with about ``entries`` audit entries in all; returns the
    numbers written."""
    store = engine.store
    assert isinstance(store, SqlStore)
    refs = templates(engine)
    shapes = []
    for ref in refs:
        paper = store.load(ref)
        definition = engine.definition_of(paper)
        history = store.history(ref)
        changes = [Change(r.kind, r.trigger, r.from_state, r.to_state, r.actor, r.at, r.branch, dict(r.payload))
                   for r in history]
        deadlines = store.outbox.deadlines(ref, running_only=False)
        mails = {d.id: store.outbox.reminders(deadline_id=d.id, statuses=("pending", "claimed", "sent", "failed",
                                                                          "cancelled")) for d in deadlines}
        listed = {}
        with store._transaction() as cur:
            for d in deadlines:
                cur.execute(store._sql("SELECT email, since FROM deadline_audience WHERE deadline_id = :id"),
                            {"id": d.id})
                listed[d.id] = cur.fetchall()
        shapes.append((paper, definition, changes, deadlines, mails, listed))
    per_paper = statistics.mean(len(s[2]) for s in shapes)
    movable = sum(1 for s in shapes if s[2][-1].kind == "meeting") / len(shapes)
    # meeting moves added to the papers whose last entry set a meeting, to reach the entries asked for
    extra = max(0, math.ceil((entries / papers - per_paper) / movable)) if movable else 0
    copy = Copier(store)
    seq, prev = store.head()
    pid, did, rid = last_ids(store, "papers", "deadlines", "reminders")
    db = store._db_time
    written = 0
    for start in range(0, papers, BATCH):
        paper_rows, audit_rows, deadline_rows, reminder_rows, body_rows, audience_rows = [], [], [], [], [], []
        for n in range(start, min(start + BATCH, papers)):
            paper, definition, changes, deadlines, mails, listed = shapes[n % len(shapes)]
            pid += 1
            ref = f"B-{n:06d}"
            moves = changes
            last = changes[-1]
            if extra and last.kind == "meeting":  # the last meeting set again: one more valid entry each
                moves = changes + [last] * extra
            rows = chain_entries(seq, prev, ref, definition, moves)
            seq, prev = rows[-1].seq, rows[-1].hash
            for e in rows:
                p = store._entry_params(e)
                audit_rows.append(tuple([p["seq"], pid] + [p[c] for c in AUDIT_COLUMNS[2:]]))
            params = store._state_params(paper.state)
            running = [d.due_at for d in deadlines if d.status == "running"]
            paper_rows.append((pid, ref, paper.workflow, paper.workflow_version, paper.definition_hash,
                               params["state"], params["entered_at"], params["meeting"], params["branches"],
                               params["fields"], params["result"], db(paper.created_at), db(paper.updated_at),
                               paper.version + len(moves) - len(changes), seq, prev, params["done"], params["public"],
                               db(min(running)) if running else None))
            body_rows.extend((b, ref, pid) for b in sorted(bodies_at(definition, paper.state)))
            for d in deadlines:
                did += 1
                deadline_rows.append((did, pid, ref, d.name, d.label, d.state, d.branch, d.body, db(d.due_at),
                                      d.anchor, db(d.anchor_at), db(d.started_at), d.status, db(d.ended_at)))
                audience_rows.extend((email, db(d.due_at), did, since) for email, since in listed[d.id])
                for m in mails[d.id]:
                    rid += 1
                    reminder_rows.append((rid, did, pid, ref, m.kind, m.label, db(m.send_at),
                                          '["' + '","'.join(m.recipients) + '"]', "{}",
                                          reminder_message_id(ref, did, d.name, d.branch, m.kind, m.label,
                                                              d.started_at, d.due_at), m.status, m.attempts,
                                          db(m.next_attempt_at)))
        with store._transaction() as cur:
            copy(cur, "papers", PAPER_COLUMNS, paper_rows)
            copy(cur, "audit", AUDIT_COLUMNS, audit_rows)
            copy(cur, "deadlines", DEADLINE_COLUMNS, deadline_rows)
            copy(cur, "reminders", REMINDER_COLUMNS, reminder_rows)
            copy(cur, "paper_bodies", ("body", "reference", "paper_id"), body_rows)
            copy(cur, "deadline_audience", ("email", "due_at", "deadline_id", "since"), audience_rows)
        written += len(audit_rows)
    filled(store, ("papers", "deadlines", "reminders"))
    return papers, written


class Figure(tuple[float, float]):
    """p99 and median of samples in ms (printed "p99 (median)": on a shared machine the distance between them
    is the waiting for a core)."""

    def __new__(cls, samples: list[float]) -> Figure:
        return super().__new__(cls, (p99(samples), statistics.median(samples) * 1000))

    def __format__(self, spec: str) -> str:
        digits = 2 if self[0] < 10 else 1
        return format(f"{self[0]:.{digits}f} ({self[1]:.{digits}f})", spec)


def timed(n: int, call: Callable[[int], Any], pause: float = 0.0) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t)
        if pause:
            time.sleep(pause)
    return out


@contextmanager
def server(url: str, port: int) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    env = {**os.environ, "COUNCILFLOW_DB": url, "COUNCILFLOW_DEFINITIONS": str(ROOT / "definitions"),
           "COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "127.0.0.1",
           "COUNCILFLOW_AUDITORS": AUDITOR}
    proc = subprocess.Popen([EXE, "web", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_until_up(lambda: client.get("/oparl/v1.1/system"), 60, 0.2)
            yield client, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raw_sql(store: SqlStore) -> Callable[[str, dict[str, Any]], list[Any]]:
    raw = store.engine.raw_connection()
    cur = raw.cursor()

    def run(sql: str, params: dict[str, Any]) -> list[Any]:
        cur.execute(sql, params)
        rows = cur.fetchall()
        raw.commit()
        return list(rows)

    return run


def measure(url: str, n: int, label: str) -> list[tuple[str, Any, Figure]]:
    store = SqlStore(url)
    engine = Engine(store, DefinitionLibrary(ROOT / "definitions"))
    head, _ = store.head()
    deep = "B-090000"
    page_1000 = head - 50 * 999 + 1
    clerk = Person(SITZ)
    now = datetime.now(UTC)
    sql = raw_sql(store)
    readable = engine.readable_definitions(clerk)
    oparl_count, oparl_seek, oparl_select, oparl_params = store.oparl_page_sql(100)
    pages = max(1, (sql(oparl_count, oparl_params)[0][0] + 99) // 100)

    def oparl_page(i: int) -> int:
        """From the middle of the OParl papers list on, a different page each time (the same 50 pages again and
        again: the first visit builds their objects, the later ones read them)."""
        return 1 + (pages // 2 + i % 50) % pages
    starts = {n: sql(oparl_seek, {**oparl_params, "offset": (n - 1) * 100})[0][0]
              for n in {oparl_page(i) for i in range(50)}}
    queries: dict[str, Callable[[int], Any]] = {
        "paper list, page 1": lambda i: sql(*store.page_papers_sql(51, readable=readable)),
        "paper list, deep page": lambda i: sql(*store.page_papers_sql(51, deep, readable=readable)),
        "Meine Fristen (clerk)": lambda i: sql(*store.running_deadlines_sql(50, audience=SITZ, now=now)),
        "audit page 1": lambda i: sql(*store.page_audit_sql(50)),
        "audit page 1,000": lambda i: sql(*store.page_audit_sql(50, page_1000)),
        # a request's queries: the trail's head (the key of what is kept per head), the page from its first id
        "OParl papers page": lambda i: (sql("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", {}),
                                        sql(oparl_select, {**oparl_params, "first": starts[oparl_page(i)],
                                                           "rows": 101})),
        # what the first request after a change of the trail adds: the count, and the page's first id by a skip
        "OParl count and seek": lambda i: (sql(oparl_count, oparl_params),
                                           sql(oparl_seek, {**oparl_params, "offset": (oparl_page(i) - 1) * 100})),
    }
    raw_figures = {name: Figure(timed(n, call)) for name, call in queries.items()}
    store.dispose()
    port = 18500 + os.getpid() % 400
    out = []
    with server(url, port) as (client, proc):
        def get(path: str, who: str) -> Callable[[int], Any]:
            def call(i: int) -> None:
                response = client.get(path, headers={"X-Remote-User": who})
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return call

        web = {
            "paper list, page 1": get("/vorlagen", SITZ),
            "paper list, deep page": get(f"/vorlagen?nach={deep}", SITZ),
            "Meine Fristen (clerk)": get("/", SITZ),
            "audit page 1": get("/pruefpfad", AUDITOR),
            "audit page 1,000": get(f"/pruefpfad?vor={page_1000}", AUDITOR),
        }
        for name, call in web.items():
            for i in range(5):  # warm
                call(i)
            out.append((name, Figure(timed(n, call)), raw_figures[name]))

        def oparl(i: int) -> None:
            response = client.get(f"/oparl/v1.1/bodies/1/papers?page={oparl_page(i)}")
            assert response.status_code == 200 and response.json()["data"], response.text[:300]

        # 1/50 s apart: the endpoint paces anonymous clients to 50 pages a second
        first = timed(min(n, 50), oparl, pause=0.021)
        rss = peak_rss_mb(proc.pid)
    out.append((f"OParl papers page, objects built (first visit, n={min(n, 50)})", Figure(first),
                raw_figures["OParl papers page"]))
    with server(url, port + 1) as (client, proc):  # a fresh process: no page cache, the objects read as stored
        second = timed(n, oparl, pause=0.021)
        rss = max(rss, peak_rss_mb(proc.pid))
    out.append(("OParl papers page, stored objects", Figure(second), raw_figures["OParl papers page"]))
    out.append(("OParl count + seek, once per trail head (SQL only)", "–", raw_figures["OParl count and seek"]))
    print(f"\n{label}: peak RSS of `councilflow web` {rss:.0f} MB")
    return out


def print_table(label: str, rows: list[tuple[str, Any, Figure]]) -> None:
    print(f"{'list (' + label + '), ms: p99 (median)':<52}{'HTTP':>16}{'raw SQL':>16}")
    for name, web, raw in rows:
        print(f"{name:<52}{web:>16}{raw:>16}")


def run_backend(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(args.keep).resolve() if args.keep else None
        if backend == "sqlite":
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{keep or tmp}/lists.db"
            drop: Callable[[], None] = lambda: None  # noqa: E731
        else:
            name = pg_create("bench_lists_")
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

            def drop() -> None:
                if keep is None:
                    pg_drop(name)
        try:
            engine = Engine(SqlStore(url), DefinitionLibrary(ROOT / "definitions"),
                            FixedClock(datetime(2025, 10, 1, 7, tzinfo=UTC)))
            engine.init()
            t = time.perf_counter()
            papers, entries = fill(engine, args.papers, args.entries)
            took = time.perf_counter() - t
            print(f"{backend}: filled {papers:,} papers and {entries:,} audit entries in {took:.0f} s "
                  f"(peak RSS of the generator {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
            if args.verify:
                engine.clock.advance(timedelta(days=3650))  # type: ignore[attr-defined]
                t = time.perf_counter()
                report = engine.verify()
                print(f"{backend}: audit verify {'ok' if report.ok else 'FAILED'} in {time.perf_counter() - t:.0f} s")
            engine.store.dispose()
            if keep is not None:
                print(f"{backend}: kept as {url} (measure again with --measure-only)")
            if args.fill_only:
                return
            rows = measure(url, args.n, backend)
            print_table(f"{backend}, n={args.n}", rows)
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="keep the filled database (SQLite: DIR/lists.db; "
                        "PostgreSQL: the scratch database is not dropped) to measure again with --measure-only")
    parser.add_argument("--fill-only", action="store_true", help="fill (with --keep) and do not measure")
    parser.add_argument("--measure-only", metavar="URL", help="measure a database filled before (analyzed again)")
    args = parser.parse_args()
    if args.measure_only:
        store = SqlStore(args.measure_only)
        raw = store.engine.raw_connection()
        if store.dialect == "postgresql":
            raw.driver_connection.autocommit = True
        raw.cursor().execute("ANALYZE")
        raw.close()
        store.dispose()
        print_table(f"{store.dialect}, n={args.n}", measure(args.measure_only, args.n, store.dialect))
        return
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run_backend(backend, args)


if __name__ == "__main__":
    main()
