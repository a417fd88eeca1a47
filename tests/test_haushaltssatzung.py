"""The shipped Haushaltssatzung of a Gemeinde in NRW (definitions/haushaltssatzung.yaml) and its scenario
(definitions/scenarios/haushaltssatzung.yaml): the scenario plays through the engine on a memory store with
every name it uses checked against the definition; the minimum periods of § 80 GO NRW (Einwendungsfrist,
the month after the Anzeige) refuse a step one day early and allow it on the day; three of four
Bezirksausschüsse move the paper on (quorum); deadlines count from the field beginn_haushaltsjahr."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifier.dispatch import Dispatcher
from notifier.transports import MemoryTransport
from workflow import DefinitionLibrary, Engine, FixedClock, load_definition_file
from workflow.calendar import working_calendar
from workflow.config import Settings
from workflow.errors import InputError, NotAllowedNowError, NotPermittedError
from workflow.store import MemoryStore
from workflow.values import field_texts
from workflow.yamlsafe import load_located

from .conftest import DEFINITIONS

BERLIN = ZoneInfo("Europe/Berlin")
SCENARIO = DEFINITIONS / "scenarios" / "haushaltssatzung.yaml"
DEFINITION = load_definition_file(DEFINITIONS / "haushaltssatzung.yaml")
KAEMMEREI = "kaemmerei@musterhausen.example"
BM = "buergermeister@musterhausen.example"
SITZ = "sitzungsdienst@musterhausen.example"
BEZIRKE = ["ba_nord", "ba_sued", "ba_ost", "ba_west"]
FIELDS = {"title": "Haushaltssatzung 2026", "haushaltsjahr": "2026", "beginn_haushaltsjahr": "2026-01-01"}


def local(text: str) -> datetime:
    """A scenario's local time (Europe/Berlin, the workflow's zone) in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def contact(body: str) -> str:
    found = DEFINITION.bodies[body].contact
    assert found is not None
    return found


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(local("2025-09-01T09:00"))


@pytest.fixture
def hh(clock: FixedClock) -> Engine:
    store = MemoryStore()
    store.init()
    return Engine(store, DefinitionLibrary(DEFINITIONS), clock)


def _deliver_until(engine: Engine, worker: Dispatcher, clock: FixedClock, target: datetime) -> None:
    """Tick at every moment a mail falls due up to ``target``, as `serve` would (deferred mails included)."""
    outbox = engine.store.outbox
    for _ in range(1000):
        due = outbox.reminders(due_before=target, limit=1)
        if not due:
            break
        clock.set(max(clock.now(), due[0].next_attempt_at))
        worker.tick(clock.now())
    else:
        raise AssertionError("the mails did not settle")
    clock.set(max(clock.now(), target))


def _check_names(scenario: dict[str, Any]) -> None:
    """Every key and name of the scenario exists in the definition (the engine would refuse the rest too,
    but not a branch named on a trigger that ignores it, nor a misspelt key of a step)."""
    assert set(scenario) <= {"reference", "start", "actor", "fields", "steps", "until"}
    assert set(scenario["fields"]) <= set(DEFINITION.fields)
    parallel_bodies = {b for s in DEFINITION.states.values() if s.parallel for b in s.parallel.bodies}
    deadlines = {d.name for d in DEFINITION.deadlines}
    people = {a for members in DEFINITION.roles.values() for a in members}
    people |= {b.contact for b in DEFINITION.bodies.values() if b.contact}
    assert scenario["actor"] in people
    for step in scenario["steps"]:
        assert set(step) <= {"at", "fire", "meeting", "done", "branch", "set", "actor"}, step
        [kind] = [k for k in ("fire", "meeting", "done") if k in step]
        if kind == "fire":
            assert step["fire"] in DEFINITION.trigger_names, step
        if kind == "done":
            assert step["done"] in deadlines, step
        if "branch" in step:
            assert step["branch"] in parallel_bodies, step
        assert set(step.get("set", {})) <= set(DEFINITION.fields) | {"result", "meeting"}, step
        assert step.get("actor", scenario["actor"]) in people, step


def play(engine: Engine, clock: FixedClock, worker: Dispatcher, scenario: dict[str, Any]) -> str:
    """Play the scenario step by step at its moments, delivering mails in between; return its reference."""
    reference = scenario["reference"]
    clock.set(local(scenario["start"]))
    engine.create("haushaltssatzung", reference, scenario["actor"], field_texts(scenario["fields"], "fields"))
    for step in scenario["steps"]:
        _deliver_until(engine, worker, clock, local(step["at"]))
        actor = step.get("actor", scenario["actor"])
        branch = step.get("branch")
        values = field_texts(step.get("set"), "set")
        if "fire" in step:
            engine.fire(reference, step["fire"], actor, branch=branch, values=values)
        elif "meeting" in step:
            engine.set_meeting(reference, step["meeting"], actor, branch=branch)
        else:
            engine.done(reference, step["done"], actor, branch=branch)
    _deliver_until(engine, worker, clock, local(scenario["until"] + "T23:59"))
    return str(reference)


def test_the_scenario_plays_on_time_to_the_publication(hh: Engine, clock: FixedClock) -> None:
    scenario = load_located(SCENARIO.read_text(encoding="utf-8"), str(SCENARIO)).value
    _check_names(scenario)
    transport = MemoryTransport()
    reference = play(hh, clock, Dispatcher(hh, transport, Settings(mail_from="fristen@musterhausen.example")),
                     scenario)
    status = hh.status(reference)
    assert status.state == "bekanntgemacht" and status.final
    trail = [r for r in hh.history(reference) if not r.is_note]  # its changes (not the mails they led to)
    assert [r.to_state for r in trail if r.to_state != r.from_state] == [
        "entwurf", "einwendungsfrist", "bezirksausschuesse", "hfa", "rat", "beschlossen", "anzeige",
        "bekanntgemacht"]
    # the third Stellungnahme met the quorum: the system moved the paper, ba_west was no longer needed
    moves = [(r.kind, r.branch, r.to_state) for r in trail if r.actor == "system"]
    assert moves == [("close", "ba_west", "bezirksausschuesse"), ("join", None, "hfa")]
    outbox = hh.store.outbox
    sent = outbox.reminders(reference=reference, statuses=("sent",))
    kinds = {m.kind for m in sent}
    assert "remind" in kinds and not kinds & {"escalate", "late"}, kinds  # reminded, never late
    # ba_west set its meeting only after its reminder to schedule one; nobody else needed that reminder
    names = {d.id: d.name for d in outbox.deadlines(reference, running_only=False)}
    termin = [m for m in sent if m.deadline_id is not None and names[m.deadline_id] in ("termin", "termin_bezirk")]
    assert [m.recipients for m in termin] == [(contact("ba_west"),)]
    assert termin[0].sent_at is not None and termin[0].sent_at.astimezone(BERLIN).date() == date(2025, 9, 25)
    assert not hh.store.outbox.reminders(reference=reference, statuses=("pending", "claimed"))


def _to_einwendungsfrist(hh: Engine, clock: FixedClock) -> None:
    hh.create("haushaltssatzung", "HH-2026", KAEMMEREI, FIELDS)
    clock.set(local("2025-09-01T10:00"))
    hh.fire("HH-2026", "zuleiten", KAEMMEREI)


def test_the_einwendungsfrist_is_refused_one_day_early(hh: Engine, clock: FixedClock) -> None:
    """Made known on 1 September: Einwendungen until the end of 15 September (14 days, the day itself not
    counted); the Bezirksausschüsse are heard from 16 September on."""
    _to_einwendungsfrist(hh, clock)
    clock.set(local("2025-09-15T23:59"))
    with pytest.raises(NotAllowedNowError, match=r"nicht vor dem 16\.09\.2025 \(eine Mindestfrist\)"):
        hh.fire("HH-2026", "bezirke_anhoeren", KAEMMEREI)
    assert hh.load("HH-2026").state.state == "einwendungsfrist"
    clock.set(local("2025-09-16T00:00"))
    hh.fire("HH-2026", "bezirke_anhoeren", KAEMMEREI)
    assert hh.load("HH-2026").state.state == "bezirksausschuesse"


def _to_bezirke(hh: Engine, clock: FixedClock) -> None:
    _to_einwendungsfrist(hh, clock)
    clock.set(local("2025-09-16T09:00"))
    hh.fire("HH-2026", "bezirke_anhoeren", KAEMMEREI)


def test_three_of_four_bezirksausschuesse_move_the_paper_on(hh: Engine, clock: FixedClock) -> None:
    _to_bezirke(hh, clock)
    for body in ("ba_nord", "ba_sued"):
        hh.fire("HH-2026", "anhoeren", contact(body), branch=body, values={"result": "zugestimmt"})
    hh.fire("HH-2026", "vertagen", contact("ba_west"), branch="ba_west",
            values={"result": "vertagt", "meeting": "2025-10-30T18:00"})
    assert hh.load("HH-2026").state.state == "bezirksausschuesse"  # two of three so far
    with pytest.raises(NotPermittedError, match="darf 'anhoeren' an"):  # a Bezirk speaks only for itself
        hh.fire("HH-2026", "anhoeren", contact("ba_nord"), branch="ba_ost", values={"result": "zugestimmt"})
    hh.fire("HH-2026", "anhoeren", contact("ba_ost"), branch="ba_ost", values={"result": "zugestimmt"})
    assert hh.load("HH-2026").state.state == "hfa"
    assert hh.history("HH-2026")[-1].actor == "system"
    # the HFA has no meeting yet: "Sitzungstermin festlegen" runs for the Sitzungsdienst
    [termin] = [v for v in hh.deadlines("HH-2026") if v.deadline.name == "termin"]
    assert {m.recipients for m in termin.mails} == {(SITZ,)}


def test_two_rejections_send_the_draft_back(hh: Engine, clock: FixedClock) -> None:
    """With a quorum of 3 of 4, the second rejection makes it unreachable: back to the Kämmerei."""
    _to_bezirke(hh, clock)
    hh.fire("HH-2026", "ablehnen", contact("ba_nord"), branch="ba_nord", values={"result": "abgelehnt"})
    assert hh.load("HH-2026").state.state == "bezirksausschuesse"
    hh.fire("HH-2026", "ablehnen", contact("ba_sued"), branch="ba_sued", values={"result": "abgelehnt"})
    assert hh.load("HH-2026").state.state == "entwurf"


def _to_anzeige(hh: Engine, clock: FixedClock) -> None:
    _to_bezirke(hh, clock)
    for body in BEZIRKE[:3]:
        hh.fire("HH-2026", "anhoeren", contact(body), branch=body, values={"result": "zugestimmt"})
    hh.fire("HH-2026", "vorberaten", SITZ, values={"result": "empfohlen", "meeting": "2025-11-27T17:00"})
    clock.set(local("2025-11-27T20:30"))
    hh.fire("HH-2026", "beschliessen", SITZ, values={"result": "beschlossen", "beschlossen_am": "2025-11-27"})
    clock.set(local("2025-11-28T11:00"))
    hh.fire("HH-2026", "anzeigen", KAEMMEREI)


def test_the_publication_waits_a_month_after_the_anzeige(hh: Engine, clock: FixedClock) -> None:
    _to_anzeige(hh, clock)
    clock.set(local("2025-12-27T23:59"))
    with pytest.raises(NotAllowedNowError, match=r"nicht vor dem 28\.12\.2025"):
        hh.fire("HH-2026", "bekanntmachen", KAEMMEREI, values={"bekanntgemacht_am": "2025-12-27"})
    clock.set(local("2025-12-28T00:00"))
    hh.fire("HH-2026", "bekanntmachen", KAEMMEREI, values={"bekanntgemacht_am": "2025-12-28"})
    assert hh.status("HH-2026").state == "bekanntgemacht"


def test_a_shortened_period_is_recorded_with_the_supervisors_order(hh: Engine, clock: FixedClock) -> None:
    """The Kommunalaufsicht may shorten the month (§ 80 Abs. 5 Satz 4 GO NRW): only the Bürgermeister
    publishes early, and only naming its order."""
    _to_anzeige(hh, clock)
    clock.set(local("2025-12-05T10:00"))
    with pytest.raises(InputError, match="braucht fristverkuerzung"):
        hh.fire("HH-2026", "vorzeitig_bekanntmachen", BM, values={"bekanntgemacht_am": "2025-12-05"})
    with pytest.raises(NotPermittedError, match="darf 'vorzeitig_bekanntmachen' an"):
        hh.fire("HH-2026", "vorzeitig_bekanntmachen", KAEMMEREI,
                values={"bekanntgemacht_am": "2025-12-05", "fristverkuerzung": "Verfügung vom 04.12.2025"})
    hh.fire("HH-2026", "vorzeitig_bekanntmachen", BM,
            values={"bekanntgemacht_am": "2025-12-05", "fristverkuerzung": "Verfügung vom 04.12.2025, 15.1-HH"})
    assert hh.load("HH-2026").state.fields["fristverkuerzung"].startswith("Verfügung vom 04.12.2025")


def test_deadlines_count_from_the_start_of_the_haushaltsjahr(hh: Engine, clock: FixedClock) -> None:
    """The draft is due four months, the Anzeige one month before beginn_haushaltsjahr (23:59:59 local)."""
    hh.create("haushaltssatzung", "HH-2026", KAEMMEREI, FIELDS)
    [entwurf] = hh.deadlines("HH-2026")
    assert entwurf.deadline.name == "entwurf_zuleiten"
    assert entwurf.deadline.due_at == local("2025-09-01T23:59:59")
    hh.create("haushaltssatzung", "HH-2027", KAEMMEREI, {**FIELDS, "haushaltsjahr": "2027",
                                                         "beginn_haushaltsjahr": "2027-01-01"})
    assert hh.deadlines("HH-2027")[0].deadline.due_at == local("2026-09-01T23:59:59")
    # the Anzeige of HH-2026, in the state after the Rat's decision
    clock.set(local("2025-09-01T09:30"))
    hh.fire("HH-2026", "zuleiten", KAEMMEREI)
    clock.set(local("2025-09-16T09:00"))
    hh.fire("HH-2026", "bezirke_anhoeren", KAEMMEREI)
    for body in BEZIRKE[:3]:
        hh.fire("HH-2026", "anhoeren", contact(body), branch=body, values={"result": "zugestimmt"})
    hh.fire("HH-2026", "vorberaten", SITZ, values={"result": "empfohlen", "meeting": "2025-11-27T17:00"})
    clock.set(local("2025-11-27T20:30"))
    hh.fire("HH-2026", "beschliessen", SITZ, values={"result": "beschlossen", "beschlossen_am": "2025-11-27"})
    [anzeige] = hh.deadlines("HH-2026")
    assert anzeige.deadline.name == "anzeige" and anzeige.deadline.due_at == local("2025-12-01T23:59:59")
    reminders = sorted(m.send_at for m in anzeige.mails if m.kind == "remind")
    # 5 working days before (24.11.) had passed at the decision: one reminder the next working morning,
    # which is also the day of the reminder one working day before
    assert [r.astimezone(BERLIN) for r in reminders] == [datetime(2025, 11, 28, 8, tzinfo=BERLIN)]
    [escalation] = [m for m in anzeige.mails if m.kind == "escalate"]
    assert escalation.send_at == local("2025-12-02T08:00") and escalation.recipients == (BM,)


def test_rosenmontag_is_no_working_day() -> None:
    """The Rhineland's Rosenmontag is closed with its date; the Tuesday after it works again."""
    calendar = working_calendar(DEFINITION.calendar)
    assert not calendar.is_working_day(date(2026, 2, 16))
    assert calendar.is_working_day(date(2026, 2, 17)) and calendar.is_working_day(date(2026, 2, 13))
    assert calendar.step(date(2026, 2, 17), -1) == date(2026, 2, 13)


def test_the_worked_example_of_a_kreis_validates_under_its_own_id() -> None:
    """docs/definition-language.md explains a Kreis's Haushaltssatzung; it loads, under an id of its own
    (copied into a definitions folder it does not collide with the shipped Gemeinde's)."""
    example = load_definition_file(DEFINITIONS.parent / "docs" / "examples" / "haushaltssatzung_kreis.yaml")
    assert example.workflow == "haushaltssatzung_kreis" != DEFINITION.workflow
