"""Lists that scale: the paper list, "Meine Fristen" and the OParl papers are paged queries on indexed columns.

Each paged answer is compared with the answer of the old path that read every paper (kept here as the
reference), on every backend; paging under inserts; the stored OParl objects against freshly built ones;
and the query plans of the list queries on a filled table (an index, never a full scan).
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.access import Person, may_read
from workflow.config import Settings
from workflow.store import SCHEMA_HEAD, Store
from workflow.web import create_app

from .conftest import FEDER, LANDRAT, SITZ, SPEC, contact, to_councils

BASE = "https://ris.example/oparl"
AUDITOR = Person("pruefung@kreis-coesfeld.example", auditor=True)
PEOPLE = [AUDITOR, Person(LANDRAT), Person(SITZ), Person(contact("rat_olfen")), Person("jemand@example.org")]


def corpus(engine: Engine, clock: FixedClock) -> None:
    """Papers in every situation the filters tell apart: both workflows, drafts, consultations with meetings,
    the councils' parallel state with decided branches, withdrawn and finished papers, private papers, and
    deadlines overdue or not."""
    for n in range(1, 13):
        ref = f"SV-{n:02d}"
        fields = {"title": f"Bericht {n}"}
        if n % 4 == 0:
            fields["public"] = "false"
        engine.create("sachstandsbericht", ref, LANDRAT, fields)
        if n % 3 != 0:
            engine.fire(ref, "einbringen", LANDRAT, values={"meeting": f"2020-09-{n + 3:02d}T17:00"})
        if n % 5 == 0:
            engine.fire(ref, "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
        if n == 9:
            engine.fire(ref, "zurueckziehen", LANDRAT)
    for ref in ("KS-1", "KS-2", "KS-3"):
        to_councils(engine, ref)
    engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "einstimmig"})
    engine.create("kreisstrategie", "KS-P", FEDER, {"title": "Vertraulich", "public": "false"})
    engine.fire("KS-P", "einbringen", FEDER)
    clock.advance(timedelta(days=20))  # some deadlines are overdue now, others not


def old_papers_for(engine: Engine, who: Person, workflow: str | None, state: str | None, body: str | None,
                   overdue: bool) -> list[str]:
    """The paper list as it was computed before paging: every paper read, filtered in Python."""
    now = engine.now()
    out = []
    for paper in engine.store.iter_papers():
        if (workflow and paper.workflow != workflow) or (state and paper.state.state != state):
            continue
        if not may_read(engine.definition_of(paper), paper.state, who):
            continue
        status = engine.view(paper)
        if body and status.body != body and body not in {b.body for b in status.branches}:
            continue
        if overdue and not any(d.due_at < now for d in engine.store.outbox.deadlines(paper.reference)):
            continue
        out.append(paper.reference)
    return sorted(out)


def all_pages(engine: Engine, who: Person, limit: int, **filters: Any) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    while True:
        page, after = engine.papers_page(who, limit=limit, after=after, **filters)
        assert len(page) <= limit
        seen.extend(s.reference for s in page)
        if after is None:
            return seen
        assert page and after == page[-1].reference


def test_pages_give_every_paper_once_with_every_filter_combination(engine: Engine, clock: FixedClock) -> None:
    """Every combination of workflow, state, body and overdue, for an auditor, staff, a council's clerk and a
    stranger: the pages together hold exactly the papers the old all-papers path gave, each once, in order."""
    corpus(engine, clock)
    views = [engine.view(p) for p in engine.store.iter_papers()]
    states = sorted({v.state for v in views})
    bodies = sorted({v.body for v in views if v.body} | {b.body for v in views for b in v.branches})
    assert len(states) >= 4 and "rat_olfen" in bodies
    combinations = itertools.product([None, "sachstandsbericht", "kreisstrategie"],
                                     [None, "ausschuss", "kommunale_raete", "keiner"],
                                     [None, bodies[0], "rat_olfen", "kein_gremium"], [False, True])
    nonempty = 0
    for workflow, state, body, overdue in combinations:
        for who in PEOPLE:
            expected = old_papers_for(engine, who, workflow, state, body, overdue)
            got = all_pages(engine, who, 3, workflow=workflow, state=state, body=body, overdue=overdue)
            assert got == expected, (who.email, workflow, state, body, overdue)
            nonempty += bool(expected)
    assert nonempty > 50  # the combinations are not vacuous
    # the access rule is unchanged: a stranger misses exactly the private papers, a member sees them
    assert len(all_pages(engine, AUDITOR, 50)) == len(all_pages(engine, Person("jemand@example.org"), 50)) + 4
    assert "SV-04" in all_pages(engine, Person(LANDRAT), 50)


def test_keyset_pages_under_inserts(engine: Engine, clock: FixedClock) -> None:
    """Papers created between two pages neither repeat nor hide a paper: every paper that existed is seen
    exactly once, and the new ones after the cursor are seen too."""
    corpus(engine, clock)
    before = set(engine.store.references())
    seen: list[str] = []
    after: str | None = None
    added_later: set[str] = set()
    for round_ in itertools.count():
        page, after = engine.papers_page(AUDITOR, limit=4, after=after)
        seen.extend(s.reference for s in page)
        if after is None:
            break
        for ref in (f"AA-{round_}", f"SV-{after[3:]}-{round_}", f"ZZ-{round_}"):  # before, just after, at the end
            engine.create("sachstandsbericht", ref, LANDRAT, {"title": "neu"})
            if ref > after:
                added_later.add(ref)
    assert len(seen) == len(set(seen))
    assert before <= set(seen) and added_later <= set(seen)
    assert not any(ref.startswith("AA-") for ref in seen)  # created behind the cursor: next time


def web_client(engine: Engine, email: str) -> TestClient:
    """The app behind the administration's proxy, which names ``email`` as the signed-in person."""
    app = create_app(engine, Settings(secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))
    return TestClient(app, client=("127.0.0.1", 50000), headers={"X-Remote-User": email})


def test_api_pages_with_limit_and_cursor(engine: Engine, clock: FixedClock) -> None:
    """GET /api/papers?limit=&cursor=: the Link header leads through every page; a bad limit is a 422."""
    corpus(engine, clock)
    client = web_client(engine, LANDRAT)
    url: str | None = "/api/papers?limit=4"
    seen = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.json()
        assert len(page) <= 4
        seen.extend(p["reference"] for p in page)
        link = response.headers.get("link")
        url = link[1:link.index(">")] if link else None
        if url:
            assert response.headers["x-next-cursor"] == page[-1]["reference"]
    assert seen == old_papers_for(engine, Person(LANDRAT), None, None, None, False)
    assert client.get("/api/papers?limit=0").status_code == 422
    assert client.get("/api/papers?limit=100000").status_code == 422


def test_pages_link_on(engine: Engine, clock: FixedClock) -> None:
    """The Vorlagen page shows 50 papers and "Weitere Vorlagen"; the last page has no such link."""
    for n in range(55):
        engine.create("sachstandsbericht", f"P-{n:03d}", LANDRAT, {"title": f"Bericht {n}"})
    client = web_client(engine, LANDRAT)
    first = client.get("/vorlagen?workflow=sachstandsbericht").text
    assert "P-049" in first and "P-050" not in first and "Weitere Vorlagen" in first
    assert 'href="/vorlagen?workflow=sachstandsbericht&amp;nach=P-049"' in first
    second = client.get("/vorlagen?workflow=sachstandsbericht&nach=P-049").text
    assert "P-050" in second and "P-054" in second and "P-049" not in second and "Weitere Vorlagen" not in second


def old_deadlines_for(engine: Engine, who: Person) -> list[Any]:
    rows = [row for row in engine.involved_deadlines(who) if who.auditor or row.notified or row.escalated]
    return sorted(rows, key=lambda row: (row.view.deadline.due_at, row.view.deadline.id))


def my_deadlines_as_before(engine: Engine, limit: int = 2) -> int:
    """"Meine Fristen" page after page equals the list built from every paper for each kind of person (the
    deadline, its mails, why it is theirs), overdue ones first; how many rows were compared."""
    checked = 0
    for who in [*PEOPLE, Person(FEDER), Person(contact("rat_billerbeck"))]:
        expected = old_deadlines_for(engine, who)
        got = []
        after = None
        while True:
            page, after = engine.deadlines_page(who, limit=limit, after=after)
            assert len(page) <= limit
            got.extend(page)
            if after is None:
                break
        assert [(r.paper.reference, r.view, r.notified, r.escalation, r.escalated) for r in got] == \
            [(r.paper.reference, r.view, r.notified, r.escalation, r.escalated) for r in expected], who.email
        now = engine.now()
        overdue = [r.view.overdue(now) for r in got]
        assert overdue == sorted(overdue, reverse=True)  # overdue first
        checked += len(got)
    return checked


def test_my_deadlines_pages_equal_the_old_list(engine: Engine, clock: FixedClock) -> None:
    """"Meine Fristen" a page at a time holds the same rows as the list built from every paper."""
    corpus(engine, clock)
    assert my_deadlines_as_before(engine) > 10


def audience_rows(store: Store) -> set[tuple[str, int, Any]] | None:
    """The (address, deadline id, since) rows kept for "Meine Fristen" (None for the memory store), checking
    that each belongs to a running deadline and carries its due moment."""
    if not isinstance(store, SqlStore):
        return None
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT a.email, a.deadline_id, a.since, a.due_at = d.due_at, d.status FROM "
                                 "deadline_audience a JOIN deadlines d ON d.id = a.deadline_id")).all()
    assert all(same and status == "running" for *_, same, status in rows), rows
    return {(email, deadline_id, since) for email, deadline_id, since, _, _ in rows}


def test_my_deadlines_follow_fire_done_undo_meeting_and_escalation(engine: Engine, clock: FixedClock) -> None:
    """The addresses kept with each running deadline follow every change: a deadline marked done leaves the
    lists and comes back with undo, a decided branch's deadlines leave them, a moved meeting restarts a
    deadline under its new due moment, and the one it escalates to sees it once its escalation is due (not
    before); after each step the pages equal the list built from every paper."""
    corpus(engine, clock)
    olfen = contact("rat_olfen")
    steps = [
        lambda: engine.done("KS-2", "ratsbeschluss", olfen, branch="rat_olfen"),
        lambda: engine.done("KS-2", "ratsbeschluss", olfen, branch="rat_olfen", undo=True),
        lambda: engine.set_meeting("KS-3", "2020-12-01T18:00", olfen, branch="rat_olfen"),
        lambda: engine.set_meeting("KS-3", "2020-12-08T18:00", olfen, branch="rat_olfen"),
        lambda: engine.fire("KS-3", "beschliessen", olfen, branch="rat_olfen", values={"result": "einstimmig"}),
        lambda: engine.fire("SV-01", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-12-10T17:00"}),
        lambda: clock.advance(timedelta(days=130)),  # past the councils' decision and its escalation
        lambda: engine.done("KS-2", "ratsbeschluss", olfen, branch="rat_olfen"),
    ]
    before = audience_rows(engine.store)
    landrat = Person(LANDRAT)
    escalated = len([r for r in old_deadlines_for(engine, landrat) if r.escalated])
    for n, step in enumerate(steps):
        step()
        assert my_deadlines_as_before(engine, limit=3) > 0, n
        rows = audience_rows(engine.store)
        if before is not None:
            assert rows != before or n == 6, n  # the rows changed with the deadlines (not with the clock)
        before = rows
        if n == 6:  # the escalations became due: the Landrat's list has them now
            assert len([r for r in old_deadlines_for(engine, landrat) if r.escalated]) > escalated


def oparl_now(engine: Engine) -> list[dict[str, Any]]:
    total, items = engine.oparl_papers(BASE, 0, 100)
    assert total == len(items)
    return items


def test_oparl_objects_are_kept_and_stay_equal_to_fresh_ones(tmp_path: Path, store: Store,
                                                             clock: FixedClock) -> None:
    """The OParl Paper objects are stored with the paper's version and read back; after a trigger, a meeting and
    a migration to a new definition version they equal objects built afresh from the trail."""
    folder = tmp_path / "defs"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    engine = Engine(store, DefinitionLibrary(folder), clock)
    corpus(engine, clock)

    def fresh() -> list[dict[str, Any]]:
        return engine.oparl(BASE, "Kreis", "Europe/Berlin", public_only=True)["papers"]

    assert oparl_now(engine) == fresh()
    kept = {ref: t for ref, _, t in store.oparl_page(0, 100)[1]}
    assert all(kept.values()) and json.loads(kept["SV-01"])["version"] == engine.load("SV-01").version
    engine.fire("SV-01", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-10-01T17:00"})
    engine.set_meeting("KS-2", "2020-11-03T18:00", contact("rat_olfen"), branch="rat_olfen")
    engine.fire("KS-2", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "einstimmig"})
    assert oparl_now(engine) == fresh()
    v2 = (SPEC / "sachstandsbericht.yaml").read_text().replace("version: 1", "version: 2").replace(
        "label: Beratung im Ausschuss", "label: Beratung im Fachausschuss")
    (folder / "sachstandsbericht.yaml").write_text(v2, encoding="utf-8")
    clock.advance(timedelta(days=1))
    engine = Engine(store, DefinitionLibrary(folder), clock)  # reads the new file
    moved, _ = engine.migrate("sachstandsbericht", 2, {})
    assert moved
    items = oparl_now(engine)
    assert items == fresh()
    # and each page is read from the stored objects: one tampered with (same version) is served as stored
    paper = engine.load("SV-02")
    store.keep_oparl([(paper, json.dumps({"version": paper.version, "base": BASE, "paper": {"id": "gespeichert"}}))])
    assert {"id": "gespeichert"} in oparl_now(engine)
    assert engine.oparl_papers("https://anderswo.example/oparl", 0, 100)[1][1]["id"].startswith(
        "https://anderswo.example/oparl/papers/")  # another base: built again


def test_oparl_pages_are_exact_as_papers_come(store: Store, clock: FixedClock, tmp_path: Path) -> None:
    """Every OParl page (from the pages' first ids kept per trail head) is the slice of the whole list at its
    offset, for several page sizes, read in order and backwards, past the end and from an offset where no page
    starts; a paper created (public
    or not) shows on the pages at once, the public one at the end."""
    folder = tmp_path / "defs"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    engine = Engine(store, DefinitionLibrary(folder), clock)
    corpus(engine, clock)

    def whole() -> list[dict[str, Any]]:
        items = oparl_now(engine)
        assert items == engine.oparl(BASE, "Kreis", "Europe/Berlin", public_only=True)["papers"]
        for size in (1, 3, 7):  # page after page: each page's first id is known from the page before
            for offset in range(0, len(items) + 2 * size, size):
                assert engine.oparl_papers(BASE, offset, size) == (len(items), items[offset:offset + size])
        for offset in sorted(range(0, len(items), 2), reverse=True):  # jumped to: found by an index skip
            assert engine.oparl_papers(BASE, offset, 2) == (len(items), items[offset:offset + 2])
        assert engine.oparl_papers(BASE, 2, 3) == (len(items), items[2:5])
        return items

    before = whole()
    engine.create("sachstandsbericht", "SV-90", LANDRAT, {"title": "Vertraulich", "public": "false"})
    assert whole() == before
    engine.create("sachstandsbericht", "SV-91", LANDRAT, {"title": "Neu"})
    after = whole()
    assert after[:-1] == before and after[-1]["reference"] == "SV-91"


# --- query plans on a filled table ------------------------------------------------------------------------

def _fill(store: SqlStore, engine: Engine, papers: int) -> None:
    """``papers`` papers (copies of the corpus' rows) with their audit entries and deadlines, inserted in bulk,
    then the planner's statistics."""
    template = {p.reference: p for p in store.iter_papers()}
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT workflow, workflow_version, definition_hash, state, entered_at, meeting, "
                                 "branches, fields, result, created_at, updated_at, version, last_seq, last_hash, "
                                 "public FROM papers ORDER BY id")).all()
        audit = conn.execute(text("SELECT workflow, workflow_version, kind, trigger, from_state, to_state, branch, "
                                  "body, actor, at, payload, prev_hash, hash FROM audit ORDER BY seq")).all()
        first = int(conn.execute(text("SELECT MAX(seq) FROM audit")).scalar_one()) + 1
        start = int(conn.execute(text("SELECT MAX(id) FROM papers")).scalar_one()) + 1
        papers_rows, audit_rows, deadline_rows, body_rows = [], [], [], []
        for n in range(papers):
            row = rows[n % len(rows)]
            pid, ref = start + n, f"X-{n:06d}"
            values = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row._mapping.items()}
            papers_rows.append({"id": pid, "reference": ref, **values,
                                "next_due": row.updated_at if n % 7 == 0 else None})
            body_rows.append({"body": f"gremium_{n % 40}", "reference": ref, "paper_id": pid})
            deadline_rows.append({"paper_id": pid, "reference": ref, "name": "frist", "label": "Frist", "state": "x",
                                  "branch": "", "body": None, "due_at": row.updated_at, "anchor": "entered",
                                  "anchor_at": row.updated_at, "started_at": row.updated_at,
                                  "status": "running" if n % 3 else "ended"})
            for k in range(3):
                entry = audit[(n * 3 + k) % len(audit)]
                audit_rows.append({"seq": first + n * 3 + k, "paper_id": pid, "reference": ref,
                                   **dict(entry._mapping)})
        conn.execute(text("INSERT INTO papers (id, reference, workflow, workflow_version, definition_hash, state, "
                          "entered_at, meeting, branches, fields, result, created_at, updated_at, modified_at, "
                          "version, last_seq, last_hash, public, next_due) VALUES (:id, :reference, :workflow, "
                          ":workflow_version, :definition_hash, :state, :entered_at, :meeting, :branches, :fields, "
                          ":result, :created_at, :updated_at, :updated_at, :version, :last_seq, :last_hash, :public, "
                          ":next_due)"),
                     papers_rows)
        conn.execute(text("INSERT INTO paper_bodies (body, reference, paper_id) VALUES (:body, :reference, "
                          ":paper_id)"), body_rows)
        conn.execute(text("INSERT INTO deadlines (paper_id, reference, name, label, state, branch, body, due_at, "
                          "anchor, anchor_at, started_at, status) VALUES (:paper_id, :reference, :name, :label, "
                          ":state, :branch, :body, :due_at, :anchor, :anchor_at, :started_at, :status)"),
                     deadline_rows)
        conn.execute(text("INSERT INTO deadline_audience (email, due_at, deadline_id, since) SELECT :email, due_at, "
                          "id, NULL FROM deadlines WHERE status = 'running' AND reference LIKE 'X-%'"), {"email": SITZ})
        conn.execute(text("INSERT INTO audit (seq, paper_id, reference, workflow, workflow_version, kind, trigger, "
                          "from_state, to_state, branch, body, actor, at, payload, prev_hash, hash) VALUES (:seq, "
                          ":paper_id, :reference, :workflow, :workflow_version, :kind, :trigger, :from_state, "
                          ":to_state, :branch, :body, :actor, :at, :payload, :prev_hash, :hash)"), audit_rows)
        conn.execute(text("ANALYZE"))
    assert template


def plan(store: SqlStore, sql: str, params: dict[str, Any]) -> list[str]:
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(("EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN ") + sql, params)
        lines = [str(r[-1] if store.dialect == "sqlite" else r[0]) for r in cur.fetchall()]
    finally:
        raw.close()
    return lines


def assert_indexed(store: SqlStore, sql: str, params: dict[str, Any], *, ordered_scan: bool = False) -> None:
    """No full scan of a table: SQLite searches or walks an index (``ordered_scan``: or the rowid newest first,
    for a page of the trail without an equality filter, which stops at LIMIT); PostgreSQL plans no sequential
    scan."""
    lines = plan(store, sql, params)
    if store.dialect == "sqlite":
        for line in lines:
            if line.startswith("SCAN") and "INDEX" not in line:
                assert ordered_scan and line == "SCAN audit", lines
    else:
        assert not any("Seq Scan" in line for line in lines), lines


def test_list_queries_use_indexes(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """EXPLAIN of every list query (papers with each filter combination, running deadlines, OParl papers, the
    audit page with each filter it offers) on a filled table: an index, not a full scan."""
    folder = tmp_path / "defs"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    store = SqlStore(db_url)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    corpus(engine, clock)
    _fill(store, engine, 20_000)
    now = datetime(2020, 9, 1, tzinfo=UTC)
    readable = engine.readable_definitions(Person("jemand@example.org"))
    for workflow, state, body, overdue, after in itertools.product(
            [None, "kreisstrategie"], [None, "ausschuss"], [None, "gremium_3"], [False, True], [None, "X-010000"]):
        sql, params = store.page_papers_sql(51, after, workflow=workflow, state=state, body=body,
                                            due_before=now if overdue else None, readable=readable)
        assert_indexed(store, sql, params)
    for after_key in (None, (now, 5000)):
        for audience in (None, SITZ):
            sql, params = store.running_deadlines_sql(51, after_key, audience=audience, now=now)
            assert_indexed(store, sql, params)
    for since in (None, now):
        # (the count, once per trail head, is the planner's choice: most papers are public)
        _, seek_sql, page_sql, params = store.oparl_page_sql(100, modified_since=since)
        assert_indexed(store, seek_sql, {**params, "offset": 5000})
        assert_indexed(store, page_sql, {**params, "first": 5000, "rows": 101})
    filters = {"reference": "X-000100", "workflow": "kreisstrategie", "actor": SITZ, "trigger": "einbringen",
               "body": "rat_olfen", "from_state": "entwurf", "to_state": "ausschuss", "since": now,
               "until": now + timedelta(days=1)}
    for size in (0, 1, 2):
        for chosen in itertools.combinations(filters, size):
            for before in (None, 30_000):
                sql, params = store.page_audit_sql(50, before, **{k: filters[k] for k in chosen})
                # without an equality filter the page walks the trail newest first and stops at LIMIT
                assert_indexed(store, sql, params, ordered_scan=set(chosen) <= {"since", "until"})
    store.dispose()


def test_upgrade_fills_the_list_columns_from_the_papers(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """A database of revision 0005 (before the list columns) with papers: after the upgrade the lists
    (public, overdue, body filters) give what the old all-papers path gives."""
    from alembic import command

    from workflow.store.schema import _config

    folder = tmp_path / "defs"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    store = SqlStore(db_url)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    corpus(engine, clock)
    cfg = _config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    store.dispose()
    upgraded = SqlStore(db_url)
    assert upgraded.schema_revision() == "0005"
    upgraded.init()
    engine = Engine(upgraded, DefinitionLibrary(folder), clock)
    for who, body, overdue in itertools.product(PEOPLE, [None, "rat_olfen", "afwk"], [False, True]):
        assert all_pages(engine, who, 5, body=body, overdue=overdue) == \
            old_papers_for(engine, who, None, None, body, overdue)
    assert engine.verify().ok
    upgraded.dispose()


def test_upgrade_keeps_the_addresses_of_the_running_deadlines(db_url: str, clock: FixedClock,
                                                             tmp_path: Path) -> None:
    """A database of revision 0006 (before the addresses kept with the deadlines) with running deadlines,
    escalations due and not yet due: after the upgrade "Meine Fristen" gives what the list built from every
    paper gives, and changes keep the rows right from there."""
    from alembic import command

    from workflow.store.schema import _config

    folder = tmp_path / "defs"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml"):
        (folder / name).write_bytes((SPEC / name).read_bytes())
    store = SqlStore(db_url)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    corpus(engine, clock)
    clock.advance(timedelta(days=100))
    engine.create("kreisstrategie", "KS-4", FEDER, {"title": "Später"})
    to_councils(engine, "KS-5")  # its escalations are not due when the first ones are
    clock.advance(timedelta(days=30))
    expected = audience_rows(store)
    cfg = _config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    store.dispose()
    upgraded = SqlStore(db_url)
    assert upgraded.schema_revision() == "0006"
    upgraded.init()
    assert upgraded.schema_revision() == SCHEMA_HEAD
    engine = Engine(upgraded, DefinitionLibrary(folder), clock)
    assert audience_rows(upgraded) == expected
    assert my_deadlines_as_before(engine, limit=4) > 10
    engine.fire("KS-5", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "einstimmig"})
    assert my_deadlines_as_before(engine, limit=4) > 10
    upgraded.dispose()


def test_my_deadlines_page_links_on(engine: Engine, clock: FixedClock) -> None:
    """"Meine Fristen" shows 50 deadlines and "Nächste Seite"; following it shows the rest; a cursor that is
    not one ("?ab=…" typed by hand) shows the first page, not an error."""
    for n in range(55):
        ref = f"F-{n:03d}"
        engine.create("sachstandsbericht", ref, LANDRAT, {"title": f"Bericht {n}"})
        engine.fire(ref, "einbringen", LANDRAT, values={"meeting": f"2020-{9 + n // 28:02d}-{1 + n % 28:02d}T17:00"})
    client = web_client(engine, SITZ)
    expected = [r.view.deadline.reference for r in old_deadlines_for(engine, Person(SITZ))]
    assert len(expected) == 55
    first = client.get("/")
    assert first.status_code == 200 and "Nächste Seite" in first.text
    link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = client.get(link)
    assert second.status_code == 200 and "Nächste Seite" not in second.text
    shown = [ref for ref in expected if f">{ref}</a>" in first.text]
    assert shown == expected[:50] and all(f">{ref}</a>" in second.text for ref in expected[50:])
    for bad in ("kaputt", "2020-01-01~x", "2020-01-01T00:00~1", "~", "2020-01-01T00:00+00:00~" + "9" * 40):
        response = client.get("/", params={"ab": bad})
        assert response.status_code == 200 and f">{expected[0]}</a>" in response.text, bad
