"""The shipped definitions (version 2 of the process owner's files): the Vorlage is released with the
internal trigger `vorlage_freigeben`, and a consultation without a meeting reminds someone to set one."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, NotAllowedNowError, load_definition_file
from workflow.demo import run_demo
from workflow.store import Store

from .conftest import DEFINITIONS, FEDER, KAEMMEREI, LANDRAT, SITZ, SPEC, contact


@pytest.fixture
def shipped(store: Store, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(DEFINITIONS), clock)


def _kinds(engine: Engine, reference: str, name: str, branch: str = "") -> dict[str, str]:
    """Mail kind -> status of one deadline's newest visit."""
    return {m.kind: m.status for v in engine.deadlines(reference)
            if v.deadline.name == name and v.deadline.branch == branch for m in v.mails}


def test_the_shipped_files_extend_the_process_owners_text() -> None:
    """The shipped versions keep every state, body and transition of the process owner's version 1; each
    transition got a label (version 3), a withdrawal needs a confirmation with a reason; version 4 brought the
    follow-up papers after the decision and, for the Sachstandsbericht, the Mitzeichnung of the Kämmerei (a role,
    a signoff on the draft, an edit of the draft); version 5 of the strategy attaches the Kreistag's Bericht über
    offene Beschlüsse to each Sachstandsbericht."""
    for name, version, added, roles in (("kreisstrategie", 5, set(), set()),
                                        ("sachstandsbericht", 4, {"bearbeiten"}, {"kaemmerei"})):
        old, new = load_definition_file(SPEC / f"{name}.yaml"), load_definition_file(DEFINITIONS / f"{name}.yaml")
        assert (old.version, new.version) == (1, version)
        assert all(t.label for t in new.transitions) and not any(t.label for t in old.transitions)
        assert {t.trigger for t in new.transitions if t.confirm} == {"zurueckziehen"}
        assert old.states == {k: replace(s, signoff=None) for k, s in new.states.items()}
        assert old.bodies == new.bodies and set(new.roles) - set(old.roles) == roles
        assert {k: v for k, v in new.roles.items() if k in old.roles} == old.roles
        assert {t.trigger for t in new.transitions} - {t.trigger for t in old.transitions} == \
            {"vorlage_freigeben", *added}
        assert all(d.description for d in new.deadlines)
    strategy = load_definition_file(DEFINITIONS / "kreisstrategie.yaml")
    assert [(f.name, f.workflow, f.when) for f in strategy.follow_ups] == [
        ("massnahme", "umsetzung", "beschlossen"), ("sachstand", "sachstandsbericht", "beschlossen")]
    assert [(a.report, a.body, a.format) for a in strategy.follow_ups[1].attach] == [("decisions", "kreistag", "pdf")]


def test_the_kaemmerei_signs_the_sachstandsbericht_off_before_it_goes_to_the_committee(shipped: Engine) -> None:
    """Version 4: `einbringen` waits for the Kämmerei's sign-off; an edit of the draft voids it."""
    shipped.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Sachstandsbericht"})
    with pytest.raises(NotAllowedNowError, match=r"es fehlt: kaemmerei \(offen\)"):
        shipped.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    shipped.sign("SV-1", KAEMMEREI)
    assert [c.trigger for c in shipped.fire("SV-1", "bearbeiten", LANDRAT, values={"department": "01"})] == \
        ["bearbeiten", "void"]
    shipped.sign("SV-1", KAEMMEREI, text="keine finanziellen Auswirkungen")
    shipped.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    assert shipped.status("SV-1").state == "ausschuss" and shipped.verify().ok


def test_papers_of_an_older_version_run_on_without_a_signoff(store: Store, clock: FixedClock,
                                                             tmp_path: Path) -> None:
    """A paper keeps the definition version it started on: one of version 1 goes to the committee without a
    sign-off after the folder got version 4, a new one needs it, and the trail of both verifies and replays."""
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "sachstandsbericht.yaml").write_bytes((SPEC / "sachstandsbericht.yaml").read_bytes())
    Engine(store, DefinitionLibrary(folder), clock).create("sachstandsbericht", "SV-ALT", LANDRAT, {"title": "Alt"})
    (folder / "sachstandsbericht.yaml").write_bytes((DEFINITIONS / "sachstandsbericht.yaml").read_bytes())
    engine = Engine(store, DefinitionLibrary(folder), clock)
    clock.set(datetime(2020, 8, 4, 8, tzinfo=UTC))
    engine.create("sachstandsbericht", "SV-NEU", LANDRAT, {"title": "Neu"})
    engine.fire("SV-ALT", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    with pytest.raises(NotAllowedNowError):
        engine.fire("SV-NEU", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    assert [engine.status(r).workflow_version for r in ("SV-ALT", "SV-NEU")] == [1, 4]
    assert engine.status("SV-ALT").signoffs == () and engine.status("SV-ALT", as_of="2020-08-04T09:30").state == \
        "entwurf"
    assert engine.verify().ok


def test_releasing_the_vorlage_ends_its_reminders_and_escalation(shipped: Engine, clock: FixedClock) -> None:
    shipped.create("kreisstrategie", "KS-1", FEDER, {"title": "Digitalisierungsstrategie"})
    shipped.fire("KS-1", "einbringen", FEDER)
    shipped.set_meeting("KS-1", "2020-09-29T10:00", SITZ)
    assert _kinds(shipped, "KS-1", "vorlage_fertig") == {"remind": "pending", "escalate": "pending"}
    shipped.fire("KS-1", "vorlage_freigeben", FEDER)
    paper = shipped.load("KS-1")
    assert paper.state.state == "bmk" and ("vorlage_fertig", "") in paper.state.done
    [view] = [v for v in shipped.deadlines(paper) if v.deadline.name == "vorlage_fertig"]
    assert view.done is not None and view.done[1] == FEDER
    assert set(_kinds(shipped, "KS-1", "vorlage_fertig").values()) == {"cancelled"}
    assert shipped.history("KS-1")[-1].trigger == "vorlage_freigeben"


def test_a_consultation_without_a_meeting_reminds_to_set_one(shipped: Engine, clock: FixedClock) -> None:
    """"Sitzungstermin festlegen" runs from entering until the meeting is set; a meeting given when entering
    marks it done at once (nothing to remind)."""
    shipped.create("kreisstrategie", "KS-1", FEDER, {"title": "Digitalisierungsstrategie"})
    shipped.fire("KS-1", "einbringen", FEDER)
    [waiting] = [w for w in shipped.waiting(shipped.load("KS-1")) if w.deadline.name == "vorlage_fertig"]
    assert "Sitzungstermin" in waiting.reason
    assert _kinds(shipped, "KS-1", "termin") == {"remind": "pending"}
    [mail] = [m for v in shipped.deadlines("KS-1") if v.deadline.name == "termin" for m in v.mails]
    assert mail.recipients == (SITZ,)
    shipped.set_meeting("KS-1", "2020-09-29T10:00", SITZ)
    assert ("termin", "") in shipped.load("KS-1").state.done
    assert _kinds(shipped, "KS-1", "termin") == {"remind": "cancelled"}
    # vertagen names the new meeting when re-entering: the scheduling deadline is done on entry
    shipped.fire("KS-1", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-10-27T10:00"})
    assert ("termin", "") in shipped.load("KS-1").state.done
    assert not [m for v in shipped.deadlines("KS-1") if v.deadline.name == "termin" for m in v.mails
                if m.status == "pending"]


def test_each_council_is_reminded_to_schedule_until_its_own_meeting_is_set(shipped: Engine) -> None:
    shipped.create("kreisstrategie", "KS-1", FEDER, {"title": "Digitalisierungsstrategie"})
    shipped.fire("KS-1", "einbringen", FEDER)
    shipped.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    shipped.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    shipped.fire("KS-1", "beschliessen", SITZ, values={"result": "beschlossen"})
    assert _kinds(shipped, "KS-1", "termin_rat", "rat_olfen") == {"remind": "pending"}
    shipped.set_meeting("KS-1", "2020-11-23T18:00", contact("rat_olfen"), branch="rat_olfen")
    assert _kinds(shipped, "KS-1", "termin_rat", "rat_olfen") == {"remind": "cancelled"}
    assert _kinds(shipped, "KS-1", "termin_rat", "rat_senden") == {"remind": "pending"}


def test_the_demo_sends_no_false_escalation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed path with the shipped definitions: every escalation of the old demo ("Vorlage fertigstellen …
    abgelaufen und noch nicht erledigt" at every stage) is gone; the Kreisausschuss, whose meeting was set
    after the deadline had passed, gets the notice that says so instead."""
    monkeypatch.chdir(tmp_path)
    engine = run_demo(f"sqlite:///{tmp_path}/demo.db", str(DEFINITIONS), echo=lambda _: None,
                      status=lambda *_: None, line=lambda *_: "")
    sent = engine.reminders(statuses=("sent",))
    assert sent and not [m for m in sent if m.kind == "escalate"]
    late = [m for m in sent if m.kind == "late"]
    assert [m.reference for m in late] == ["KS-2020-001"] and LANDRAT in late[0].recipients
    files = os.listdir(tmp_path / "councilflow-mail" / "new")
    assert len(files) == sum(len(m.recipients) for m in sent)  # one personal copy per recipient
