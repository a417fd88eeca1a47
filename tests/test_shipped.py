"""The shipped definitions (version 2 of the process owner's files): the Vorlage is released with the
internal trigger `vorlage_freigeben`, and a consultation without a meeting reminds someone to set one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, load_definition_file
from workflow.demo import run_demo
from workflow.store import Store

from .conftest import DEFINITIONS, FEDER, LANDRAT, SITZ, SPEC, contact


@pytest.fixture
def shipped(store: Store, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(DEFINITIONS), clock)


def _kinds(engine: Engine, reference: str, name: str, branch: str = "") -> dict[str, str]:
    """Mail kind -> status of one deadline's newest visit."""
    return {m.kind: m.status for v in engine.deadlines(reference)
            if v.deadline.name == name and v.deadline.branch == branch for m in v.mails}


def test_the_shipped_files_extend_the_process_owners_text() -> None:
    """Version 4 keeps every state, body and transition of the process owner's version 1; each transition got
    a label (version 3), a withdrawal needs a confirmation with a reason, and the follow-up papers after the
    decision came with version 4."""
    for name in ("kreisstrategie", "sachstandsbericht"):
        old, new = load_definition_file(SPEC / f"{name}.yaml"), load_definition_file(DEFINITIONS / f"{name}.yaml")
        assert (old.version, new.version) == (1, 4)
        assert all(t.label for t in new.transitions) and not any(t.label for t in old.transitions)
        assert {t.trigger for t in new.transitions if t.confirm} == {"zurueckziehen"}
        assert old.states == new.states and old.bodies == new.bodies and old.roles == new.roles
        assert {t.trigger for t in new.transitions} - {t.trigger for t in old.transitions} == {"vorlage_freigeben"}
        assert all(d.description for d in new.deadlines)
    strategy = load_definition_file(DEFINITIONS / "kreisstrategie.yaml")
    assert [(f.name, f.workflow, f.when) for f in strategy.follow_ups] == [
        ("massnahme", "umsetzung", "beschlossen"), ("sachstand", "sachstandsbericht", "beschlossen")]


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
