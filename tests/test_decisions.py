"""The Beschlusskontrolle: the follow-up papers of a body's decisions with a traffic light (red when delayed or
overdue, yellow within ten working days of the target date, green otherwise), red first; the same list on the
command line (table, csv, html, pdf), the page and the API, each with its permissions; bad input is one
German line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.access import Person
from workflow.decisions import deciding, light, sort_moment, warn_until
from workflow.errors import InputError
from workflow.loader import load_definition
from workflow.store import Store

from .conftest import FEDER, ROOT, SITZ
from .test_follow_up import ADOPTED, BERLIN, COUNCILS, REF, adopt, shipped

VERANTWORTLICH = "digitalisierung@kreis-coesfeld.example"
MASSNAHMEN = "E-Akte einführen, Bürgerportal ausbauen, WLAN in allen Schulen"
ANYONE = Person("jemand@kreis-coesfeld.example")


def at(day: str, hour: int = 9) -> datetime:
    """A local Coesfeld moment (TT.MM.JJJJ) in UTC."""
    d, m, y = (int(x) for x in day.split("."))
    return datetime(y, m, d, hour, 0, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(ADOPTED.astimezone(UTC))


@pytest.fixture
def strategy(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(shipped(tmp_path / "definitions")), clock)


def rows(engine: Engine, body: str = "kreistag", status: str | None = None) -> list[tuple[str, str, str | None]]:
    return [(v.child, v.state, v.light) for v in engine.decisions_for(ANYONE, body, status=status)]


def begin(engine: Engine, child: str, target: str) -> None:
    engine.fire(child, "beginnen", VERANTWORTLICH, values={"zieltermin": target, "sachstand": "begonnen"})


# --- the pure rules -----------------------------------------------------------------------------------------


def test_deciding_bodies_are_results_leaving_a_consultation_and_branch_outcomes() -> None:
    t = [datetime(2025, 1, d, tzinfo=UTC) for d in range(1, 8)]
    entries = [
        ("create", None, "entwurf", None, t[0], {}),
        ("transition", "entwurf", "bmk", "bmk", t[1], {}),                              # went to, decided nothing
        ("transition", "bmk", "bmk", "bmk", t[2], {"result": "vertagt"}),               # deferred: stays
        ("transition", "bmk", "kreistag", "bmk", t[3], {"result": "empfohlen"}),
        ("branch", "raete", "raete", "rat_a", t[4], {"outcome": "deferred", "result": "vertagt"}),
        ("branch", "raete", "raete", "rat_a", t[5], {"outcome": "adopted", "result": "beschlossen"}),
        ("transition", "kreistag", "raete", "kreistag", t[6], {"result": "beschlossen"}),
    ]
    assert [(d.body, d.at.day, d.result) for d in deciding(entries)] == [
        ("bmk", 4, "empfohlen"), ("rat_a", 6, "beschlossen"), ("kreistag", 7, "beschlossen")]


def test_the_light_and_its_sort_moment() -> None:
    definition = load_definition((ROOT / "definitions" / "umsetzung.yaml").read_text(encoding="utf-8"))
    now = at("01.12.2025")
    # ten working days from Monday 1 December 2025: Monday 15 December, to its end
    yellow = warn_until(definition, now, 10)
    assert yellow.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M") == "15.12.2025 23:59"
    assert light(at("30.11.2025"), False, False, now, yellow) == "rot"
    assert light(at("01.03.2026"), True, False, now, yellow) == "rot"
    assert light(at("15.12.2025", 18), False, False, now, yellow) == "gelb"
    assert light(at("16.12.2025"), False, False, now, yellow) == "gruen"
    assert light(None, False, False, now, yellow) == "gruen"
    assert light(at("30.11.2025"), False, True, now, yellow) is None
    assert sort_moment(at("01.03.2026"), True) < sort_moment(at("30.11.2025"), False) < sort_moment(None, False)


def test_umsetzung_marks_verzoegert_delayed() -> None:
    definition = load_definition((ROOT / "definitions" / "umsetzung.yaml").read_text(encoding="utf-8"))
    assert [s.id for s in definition.states.values() if s.delayed] == ["verzoegert"]


# --- the scenario: three Maßnahmen, one delayed --------------------------------------------------------------


def test_three_measures_one_delayed_red_then_yellow_then_green(strategy: Engine, clock: FixedClock) -> None:
    adopt(strategy, massnahmen=MASSNAHMEN)
    m1, m2, m3 = (f"{REF}-M{n}" for n in (1, 2, 3))
    # every council and the Kreistag decided it (the Vorberatungen too); the Bürgermeisterkonferenz's
    # recommendation is its decision
    [first, *_] = strategy.decisions_for(ANYONE, "Kreistag")
    assert (first.reference, first.title, first.body, first.result) == (
        REF, "Digitalisierungsstrategie", "kreistag", "beschlossen")
    assert (first.follow_up, first.state_label, first.responsible) == ("massnahme", "Offen", (VERANTWORTLICH,))
    assert first.target_label == "Umsetzung beginnen und Zieltermin festlegen"
    # open: the deadline to begin is due in ten working days, so each is yellow at once
    assert rows(strategy, "rat_olfen") == rows(strategy, "kreistag") == [
        (m1, "offen", "gelb"), (m2, "offen", "gelb"), (m3, "offen", "gelb")]
    assert rows(strategy, "bmk") == rows(strategy)

    # work begins on all three: targets at the end of March, April and June 2026
    begin(strategy, m1, "2026-03-31")
    begin(strategy, m2, "2026-04-30")
    begin(strategy, m3, "2026-06-30")
    assert rows(strategy) == [(m1, "in_arbeit", "gruen"), (m2, "in_arbeit", "gruen"), (m3, "in_arbeit", "gruen")]

    # mid-March: the first is due within ten working days (yellow)
    clock.set(at("20.03.2026"))
    assert rows(strategy) == [(m1, "in_arbeit", "gelb"), (m2, "in_arbeit", "gruen"), (m3, "in_arbeit", "gruen")]

    # April: the first is overdue (red); the second reports a delay with a new target date: red, and first
    clock.set(at("02.04.2026"))
    assert rows(strategy)[0] == (m1, "in_arbeit", "rot")
    strategy.fire(m2, "verzoegern", VERANTWORTLICH, values={"sachstand": "Ausschreibung verzögert",
                                                             "zieltermin": "2026-09-30"})
    assert rows(strategy) == [(m2, "verzoegert", "rot"), (m1, "in_arbeit", "rot"), (m3, "in_arbeit", "gruen")]
    assert rows(strategy, status="verzoegert") == [(m2, "verzoegert", "rot")]
    [delayed] = strategy.decisions_for(ANYONE, "kreistag", status="verzoegert")
    assert delayed.target_at is not None and delayed.target_at.astimezone(BERLIN).strftime("%d.%m.%Y") == "30.09.2026"

    # the first is done (gone from the open list, in erledigt); the second back on track: green
    strategy.fire(m1, "erledigen", VERANTWORTLICH, values={"sachstand": "E-Akte läuft"})
    strategy.fire(m2, "fortsetzen", VERANTWORTLICH, values={"sachstand": "Zuschlag erteilt"})
    assert rows(strategy) == [(m3, "in_arbeit", "gruen"), (m2, "in_arbeit", "gruen")]
    assert rows(strategy, status="erledigt") == [(m1, "erledigt", None)]

    # September: the second due within ten working days again (yellow); the third long overdue (red)
    clock.set(at("21.09.2026"))
    assert rows(strategy) == [(m3, "in_arbeit", "rot"), (m2, "in_arbeit", "gelb")]
    assert strategy.verify().ok


def test_paging_and_bad_input(strategy: Engine) -> None:
    adopt(strategy, massnahmen=MASSNAHMEN)
    page, more = strategy.decisions_page(ANYONE, "kreistag", limit=2)
    assert ([v.child for v in page], more) == ([f"{REF}-M1", f"{REF}-M2"], True)
    page, more = strategy.decisions_page(ANYONE, "kreistag", limit=2, offset=2)
    assert ([v.child for v in page], more) == ([f"{REF}-M3"], False)
    with pytest.raises(InputError) as unknown:
        strategy.decisions_for(ANYONE, "Kreistg")
    assert str(unknown.value) == "kein Gremium 'Kreistg' – gemeint: Kreistag (kreistag)?"
    with pytest.raises(InputError) as status:
        strategy.decisions_for(ANYONE, "kreistag", status="verzoegrt")
    assert str(status.value) == ("unbekannter Status 'verzoegrt' (gemeint: 'verzoegert'?); erlaubt: offen, "
                                 "verzoegert, erledigt")


def test_private_papers_only_for_their_roles(strategy: Engine) -> None:
    strategy.create("kreisstrategie", REF, FEDER, {"title": "Vertraulich", "massnahmen": "Geheime Maßnahme",
                                                   "public": "nein"})
    strategy.fire(REF, "einbringen", FEDER)
    for _ in range(2):
        strategy.fire(REF, "beraten", SITZ, values={"result": "empfohlen"})
    strategy.fire(REF, "beschliessen", SITZ, values={"result": "beschlossen"})
    for body in COUNCILS:
        strategy.fire(REF, "beschliessen", SITZ, branch=body, values={"result": "beschlossen"})
    assert rows(strategy) == []
    assert [v.child for v in strategy.decisions_for(Person(FEDER), "kreistag")] == [f"{REF}-M1"]
    assert [v.child for v in strategy.decisions_for(Person("pruefer@example", auditor=True), "kreistag")] == [
        f"{REF}-M1"]
