"""Councils deciding in parallel do not collide: a branch decision is checked against its own branch's
version, not the whole paper's; the join still happens exactly once."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from workflow import ConflictError, DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.config import Settings
from workflow.web import create_app

from .conftest import COUNCILS, SITZ, contact, to_councils

PROXIED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1")


def _seen(engine: Engine, reference: str = "KS-1") -> tuple[int, dict[str, str]]:
    status = engine.status(reference)
    return engine.load(reference).version, {b.body: b.version for b in status.branches}


def test_eleven_councils_decide_on_the_same_page_without_conflict(engine: Engine) -> None:
    """Every council acts on the page it loaded before any other decided: all eleven get through."""
    to_councils(engine)
    version, branches = _seen(engine)
    for body in COUNCILS:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"},
                    expected_version=version, expected_branch_version=branches[body])
    history = engine.history("KS-1")
    assert [r.trigger for r in history].count("join_success") == 1
    assert engine.status("KS-1").state == "beschlossen"


def test_a_change_of_the_branch_itself_is_a_conflict(engine: Engine) -> None:
    to_councils(engine)
    version, branches = _seen(engine)
    engine.fire("KS-1", "vertagen", SITZ, branch="rat_olfen",
                values={"result": "vertagt", "meeting": "2021-03-01T18:00"})
    with pytest.raises(ConflictError, match="Zweig 'rat_olfen' wurde inzwischen"):
        engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen",
                    values={"result": "beschlossen"}, expected_version=version,
                    expected_branch_version=branches["rat_olfen"])
    # without a branch version, the paper's version decides, as before
    with pytest.raises(ConflictError, match="von jemand anderem geändert"):
        engine.fire("KS-1", "beschliessen", contact("rat_senden"), branch="rat_senden",
                    values={"result": "beschlossen"}, expected_version=version)


def test_the_web_form_and_the_api_send_the_branch_version(engine: Engine) -> None:
    to_councils(engine)
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        headers = {"X-Remote-User": contact("rat_olfen")}
        page = client.get("/vorlagen/KS-1", headers=headers).text
        version, branches = _seen(engine)
        assert f'rat_olfen={branches["rat_olfen"]};' in page
        engine.fire("KS-1", "beschliessen", contact("rat_senden"), branch="rat_senden", values={"result": "ja"})
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        form = {"trigger": "beschliessen", "csrf": csrf, "branch": "rat_olfen", "result": "beschlossen",
                "version": str(version), "branch_versions": f"rat_olfen={branches['rat_olfen']};"}
        answer = client.post("/vorlagen/KS-1/fire", headers=headers, data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        status = client.get("/api/papers/KS-1", headers=headers).json()
        [ascheberg] = [b for b in status["branches"] if b["body"] == "rat_ascheberg"]
        reply = client.post("/api/papers/KS-1/fire", headers={"X-Remote-User": contact("rat_ascheberg")},
                            json={"trigger": "beschliessen", "branch": "rat_ascheberg", "values": {"result": "ja"},
                                  "version": version, "branch_version": ascheberg["version"]})
        assert reply.status_code == 200, reply.text
    decided = {b.body for b in engine.status("KS-1").branches if b.status == "adopted"}
    assert decided == {"rat_senden", "rat_olfen", "rat_ascheberg"}


def test_eleven_councils_at_the_same_moment(db_url: str, defs_dir: object, clock: FixedClock) -> None:
    """Eleven processes (threads with their own engine and connections) decide at once on the database."""
    setup = Engine(SqlStore(db_url), DefinitionLibrary(defs_dir), clock)  # type: ignore[arg-type]
    to_councils(setup)
    version, branches = _seen(setup)
    start, errors = threading.Barrier(len(COUNCILS)), []

    def council(body: str) -> None:
        engine = Engine(SqlStore(db_url), DefinitionLibrary(defs_dir), clock)  # type: ignore[arg-type]
        try:
            start.wait(timeout=30)
            engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"},
                        expected_version=version, expected_branch_version=branches[body])
        except Exception as exc:  # collected and asserted below
            errors.append(f"{body}: {exc!r}")
        finally:
            engine.store.dispose()

    threads = [threading.Thread(target=council, args=(body,)) for body in COUNCILS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    history = setup.history("KS-1")
    assert [r.trigger for r in history].count("join_success") == 1
    assert setup.status("KS-1").state == "beschlossen" and setup.verify().ok


def test_a_finished_paper_keeps_its_council_grid(engine: Engine) -> None:
    to_councils(engine)
    for body in COUNCILS:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": f"beschlossen {body}"})
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        page = client.get("/vorlagen/KS-1", headers={"X-Remote-User": SITZ}).text
    assert "Gremien – Beschlussfassung in den Räten der Städte und Gemeinden (abgeschlossen)" in page
    grid = page.split("(abgeschlossen)</h2>")[1].split("</table>")[0]
    assert all(f"beschlossen {body}" in grid for body in COUNCILS) and "Rat der Gemeinde Nottuln" in grid
