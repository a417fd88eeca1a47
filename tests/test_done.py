"""Deadlines that can be marked done: `done_by` triggers and meetings, internal transitions,
`councilflow done` (and undo), on the web; reminders and escalations end with them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import (
    DefinitionError,
    Engine,
    FixedClock,
    NotAllowedNowError,
    NotPermittedError,
    load_definition,
)
from workflow.cli import run
from workflow.config import Settings
from workflow.store import Store
from workflow.web import create_app

from .conftest import LANDRAT, SITZ, SPEC, engine_on

TEXT = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8").replace(
    "  - {trigger: zurueckziehen,",
    "  - {trigger: vorlage_freigeben, source: ausschuss, internal: true, roles: [verfasser], sets: [department]}\n"
    "  - {trigger: zurueckziehen,",
) + """  - name: vorlage
    label: Vorlage fertigstellen
    description: Bitte die Vorlage im DMS freigeben und dem Sitzungsdienst melden
    states: [ausschuss]
    due: {before: meeting, days: 14}
    remind: [{working_days: 5}, {working_days: 1}]
    notify: [verfasser]
    escalate: {after: {working_days: 1}, notify: [sitzungsdienst]}
    done_by: [vorlage_freigeben]
"""
PROXIED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1")


@pytest.fixture
def engine(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    return engine_on(store, tmp_path / "defs", clock, sachstandsbericht=TEXT)


def _in_committee(engine: Engine, reference: str = "SV-1") -> None:
    engine.create("sachstandsbericht", reference, LANDRAT, {"title": "Bericht"})
    engine.fire(reference, "einbringen", LANDRAT, values={"meeting": "2020-09-24T17:00"})


def _pending(engine: Engine, reference: str, name: str) -> list[str]:
    return [m.kind for v in engine.deadlines(reference) if v.deadline.name == name and v.done is None
            for m in v.mails if m.status == "pending"]


def test_an_internal_trigger_marks_its_deadline_done(engine: Engine, clock: FixedClock) -> None:
    """`vorlage_freigeben` stays in the state, is recorded, and ends "Vorlage fertigstellen" with its mails;
    the other deadline keeps running."""
    _in_committee(engine)
    assert _pending(engine, "SV-1", "vorlage") == ["remind", "remind", "escalate"]
    clock.advance(timedelta(days=2))
    engine.fire("SV-1", "vorlage_freigeben", LANDRAT, values={"department": "01"})
    status = engine.status("SV-1")
    assert (status.state, status.fields["department"]) == ("ausschuss", "01")
    entry = engine.history("SV-1")[-1]
    assert (entry.kind, entry.trigger, entry.from_state, entry.to_state) == ("internal", "vorlage_freigeben",
                                                                              "ausschuss", "ausschuss")
    views = {v.deadline.name: v for v in engine.deadlines("SV-1")}
    assert views["vorlage"].done == (clock.now(), LANDRAT, None)
    assert views["vorlage"].description == "Bitte die Vorlage im DMS freigeben und dem Sitzungsdienst melden"
    assert {m.status for m in views["vorlage"].mails} == {"cancelled"}
    assert views["ladung"].done is None and [m.status for m in views["ladung"].mails] == ["pending"]
    engine.set_meeting("SV-1", "2020-10-01T17:00", SITZ)  # moving the meeting does not restart a done deadline
    assert _pending(engine, "SV-1", "vorlage") == []
    assert engine.verify().ok


def test_done_and_undo_by_command(engine: Engine, clock: FixedClock) -> None:
    """`done` is for those the deadline reminds and those who may act in the state; undo restarts it."""
    _in_committee(engine)
    with pytest.raises(NotPermittedError, match="darf 'vorlage' von SV-1 nicht als erledigt markieren"):
        engine.done("SV-1", "vorlage", "jemand@kreis-coesfeld.example")
    clock.advance(timedelta(hours=1))
    engine.done("SV-1", "vorlage", LANDRAT, note="im DMS freigegeben")
    with pytest.raises(NotAllowedNowError, match="bereits erledigt"):
        engine.done("SV-1", "vorlage", LANDRAT)
    [view] = [v for v in engine.deadlines("SV-1") if v.deadline.name == "vorlage"]
    assert view.done == (clock.now(), LANDRAT, "im DMS freigegeben")
    assert view.to_json()["done"] == {"at": clock.now().isoformat(), "by": LANDRAT, "note": "im DMS freigegeben"}
    clock.advance(timedelta(hours=1))
    engine.done("SV-1", "vorlage", SITZ, undo=True)  # the Sitzungsdienst may act in the state
    assert _pending(engine, "SV-1", "vorlage") == ["remind", "remind", "escalate"]
    assert [e.kind for e in engine.history("SV-1")][-2:] == ["done", "undone"]
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert engine.status("SV-1", as_of=(clock.now() - timedelta(minutes=90)).isoformat()).state == "ausschuss"
    assert engine.verify().ok
    with pytest.raises(NotAllowedNowError, match="läuft jetzt nicht"):
        engine.done("SV-1", "vorlage", LANDRAT)


def test_done_and_undone_at_the_same_instant(engine: Engine, clock: FixedClock) -> None:
    """Marked done and taken back in the minute the deadline started: the deadline restarts with the same
    start and due moment as before, and its new mails still get Message-IDs of their own."""
    _in_committee(engine)
    engine.done("SV-1", "vorlage", LANDRAT)
    engine.done("SV-1", "vorlage", LANDRAT, undo=True)
    engine.done("SV-1", "vorlage", LANDRAT)
    engine.done("SV-1", "vorlage", LANDRAT, undo=True)
    assert [e.kind for e in engine.history("SV-1")][-4:] == ["done", "undone", "done", "undone"]
    assert _pending(engine, "SV-1", "vorlage") == ["remind", "remind", "escalate"]
    mails = engine.reminders(reference="SV-1", statuses=("pending", "cancelled"))
    assert len({m.message_id for m in mails}) == len(mails) == 3 * 3 + 1  # three starts of it; the Ladung's
    assert engine.verify().ok


def test_re_entering_the_state_starts_it_afresh(engine: Engine, clock: FixedClock) -> None:
    _in_committee(engine)
    engine.done("SV-1", "vorlage", LANDRAT)
    clock.advance(timedelta(days=3))
    engine.fire("SV-1", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-10-22T17:00"})
    assert _pending(engine, "SV-1", "vorlage") == ["remind", "remind", "escalate"]


def test_the_cli_and_the_web_mark_done(engine: Engine, db_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _in_committee(engine)
    base = ["--db", db_url, "--definitions", str(tmp_path / "defs"), "--now", "2020-08-05T10:00"]
    assert run(["done", "SV-1", "vorlage", "--actor", LANDRAT, "--note", "fertig", *base]) == 0
    assert "SV-1: Frist vorlage erledigt am 05.08.2020 10:00 von " + LANDRAT in capsys.readouterr().out
    assert run(["deadlines", "SV-1", *base]) == 0
    assert "erledigt am 05.08.2020 10:00 von buero.landrat@kreis-coesfeld.example: fertig" in capsys.readouterr().out
    assert run(["done", "SV-1", "vorlag", "--actor", LANDRAT, *base]) == 4
    assert "unbekannte Frist 'vorlag' (gemeint: 'vorlage'?)" in capsys.readouterr().err
    _in_committee(engine, "SV-2")
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        who = {"X-Remote-User": LANDRAT}
        api = client.post("/api/papers/SV-2/deadlines/vorlage/done", headers=who, json={"note": "per API"})
        assert api.status_code == 200
        assert client.post("/api/papers/SV-2/deadlines/vorlage/done", headers=who, json={}).status_code == 409
        _in_committee(engine, "SV-3")
        page = client.get("/", headers=who).text
        assert "Bitte die Vorlage im DMS freigeben" in page and 'action="/vorlagen/SV-3/erledigt"' in page
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        form = client.post("/vorlagen/SV-3/erledigt", headers=who, follow_redirects=False,
                           data={"csrf": token, "deadline": "vorlage", "back": "fristen"})
        assert form.status_code == 303 and form.headers["location"] == "/"
        paper = client.get("/vorlagen/SV-3", headers=who).text
        assert "erledigt</strong> am" in paper and "Erledigt zurücknehmen" in paper
        assert "Erledigt</button>" not in client.get("/vorlagen/SV-3", headers={"X-Remote-User": "x@y.example"}).text
    assert [v.done is not None for v in engine.deadlines("SV-2") if v.deadline.name == "vorlage"] == [True]


def test_the_meeting_marks_a_scheduling_deadline_done(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    """`done_by: [meeting]`: "Sitzungstermin festlegen" ends when the meeting is set."""
    text = (SPEC / "kreisstrategie.yaml").read_text(encoding="utf-8") + """  - name: termin
    label: Sitzungstermin festlegen
    states: [bmk]
    due: {after: entered, working_days: 5}
    remind: [{working_days: 1}]
    notify: [sitzungsdienst]
    done_by: [meeting]
"""
    engine = engine_on(store, tmp_path / "ks", clock, kreisstrategie=text)
    engine.create("kreisstrategie", "KS-1", "digitalisierung@kreis-coesfeld.example", {"title": "x"})
    engine.fire("KS-1", "einbringen", "digitalisierung@kreis-coesfeld.example")
    assert "termin" in {v.deadline.name for v in engine.deadlines("KS-1") if v.done is None}
    engine.set_meeting("KS-1", "2020-09-15T10:00", SITZ)
    [termin] = [v for v in engine.deadlines("KS-1") if v.deadline.name == "termin"]
    assert termin.done is not None and termin.done[1] == SITZ


@pytest.mark.parametrize(("change", "message"), [
    ("    done_by: [vorlage_freigeben]\n", "    done_by: [freigeben]\n"),
    ("internal: true, roles: [verfasser]", "internal: true, dest: ausschuss, roles: [verfasser]"),
    ("internal: true, roles: [verfasser]", "internal: ja, roles: [verfasser]"),
])
def test_the_new_keys_are_checked_at_load(change: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(TEXT.replace(change, message), "sachstandsbericht.yaml")
    text = str(caught.value)
    assert ("'freigeben' ist kein Trigger der Zustände von Frist 'vorlage'" in text
            or "interner Übergang 'vorlage_freigeben' hat kein dest" in text
            or "internal von Übergang 'vorlage_freigeben' muss true oder false sein" in text), text


def test_a_broken_trail_entry_of_the_new_kinds_is_found(engine: Engine) -> None:
    """`done` entries replay like every other (verify compares the replayed state, done set included)."""
    _in_committee(engine)
    engine.done("SV-1", "vorlage", LANDRAT)
    assert engine.status("SV-1").state == "ausschuss"
    assert engine.verify().ok


