"""The Beschlusskontrolle: the follow-up papers of a body's decisions with a traffic light (red when delayed or
overdue, yellow within ten working days of the target date, green otherwise), red first; the same list on the
command line (table, csv, html, pdf), the page and the API, each with its permissions; bad input is one
German line."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.access import Person
from workflow.decision_report import build
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
    page, following = strategy.decisions_page(ANYONE, "kreistag", limit=2)
    assert [v.child for v in page] == [f"{REF}-M1", f"{REF}-M2"] and following is not None
    page, following = strategy.decisions_page(ANYONE, "kreistag", limit=2, after=following)
    assert ([v.child for v in page], following) == ([f"{REF}-M3"], None)
    assert rows(strategy, status="Verzögert") == []  # as the page shows it
    with pytest.raises(InputError) as too_many:
        build(strategy, ANYONE, "kreistag", most=2)
    assert str(too_many.value) == ("kreistag: mehr als 2 Folgevorlagen für einen Bericht; bitte einen Status wählen "
                                   "(--status verzoegert) oder die CSV-Form nehmen")
    assert len(build(strategy, ANYONE, "kreistag", most=3).rows) == 3
    with pytest.raises(InputError) as cursor:
        strategy.decisions_page(ANYONE, "kreistag", after="gestern~1")
    assert str(cursor.value) == "'gestern~1' ist kein Seitenzeiger der Beschlusskontrolle; bitte ohne ihn beginnen"
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


# --- the report: table, csv, html, pdf; the command's bad input ----------------------------------------------

NOW = "2026-04-02T09:00"
Cli = pytest.CaptureFixture[str]


@pytest.fixture
def measures(store: Store, db_url: str, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
             ) -> Engine:
    """The strategy adopted on 1 September 2025 with three measures; on 2 April 2026 the first is due on 10 April
    (yellow), the second delayed to 30 September (red), the third due at the end of the year (green)."""
    folder = shipped(tmp_path / "definitions")
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(folder))
    monkeypatch.delenv("COUNCILFLOW_NOW", raising=False)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    adopt(engine, massnahmen=MASSNAHMEN)
    begin(engine, f"{REF}-M1", "2026-04-10")
    begin(engine, f"{REF}-M2", "2026-03-31")
    begin(engine, f"{REF}-M3", "2026-12-31")
    clock.set(at("01.04.2026"))
    engine.fire(f"{REF}-M2", "verzoegern", VERANTWORTLICH, values={"sachstand": "Ausschreibung verzögert",
                                                                    "zieltermin": "2026-09-30"})
    return engine


HEADER = ["Ampel", "Vorlage", "Titel", "Beschlossen am", "Ergebnis", "Folgevorlage", "Auftrag", "Zustand",
          "Zuständig", "Termin"]
ROWS = [
    ["rot", REF, "Digitalisierungsstrategie", "01.09.2025", "beschlossen", f"{REF}-M2", "Bürgerportal ausbauen",
     "Verzögert", VERANTWORTLICH, "30.09.2026"],
    ["gelb", REF, "Digitalisierungsstrategie", "01.09.2025", "beschlossen", f"{REF}-M1", "E-Akte einführen",
     "In Arbeit", VERANTWORTLICH, "10.04.2026"],
    ["grün", REF, "Digitalisierungsstrategie", "01.09.2025", "beschlossen", f"{REF}-M3", "WLAN in allen Schulen",
     "In Arbeit", VERANTWORTLICH, "31.12.2026"],
]


def test_the_report_as_table_and_csv(measures: Engine, capsys: Cli) -> None:
    from workflow.cli import run

    capsys.readouterr()
    assert run(["decisions", "--body", "Kreistag", "--now", NOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:4]] == [["rot", REF], ["gelb", REF], ["grün", REF]]
    assert [re.split(r"\s{2,}", line) for line in lines[:4]] == [HEADER, *ROWS]
    assert lines[4:] == ["Kreistag: 3 offene Folgevorlagen (rot 1, gelb 1, grün 1)"]
    assert run(["decisions", "--body", "kreistag", "--format", "csv", "--now", NOW]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [HEADER, *ROWS]
    assert run(["decisions", "--body", "kreistag", "--status", "verzoegert", "--format", "csv", "--now", NOW]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [HEADER, ROWS[0]]
    # a Vorberatung's body sees the same follow-ups; yellow from 20 working days on, the third too
    assert run(["decisions", "--body", "bmk", "--warn-days", "200", "--format", "csv", "--now", NOW]) == 0
    assert [row[0] for row in csv.reader(io.StringIO(capsys.readouterr().out))] == ["Ampel", "rot", "gelb", "gelb"]


class _Cells(HTMLParser):
    """The text of each table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_report_as_html_and_pdf(measures: Engine, tmp_path: Path, capsys: Cli) -> None:
    from pypdf import PdfReader

    from workflow.cli import run

    out = tmp_path / "bericht.html"
    capsys.readouterr()
    assert run(["decisions", "--body", "kreistag", "--format", "html", "--out", str(out), "--now", NOW]) == 0
    assert capsys.readouterr().out == f"{out}: 3 Folgevorlagen von Kreistag\n"
    document = out.read_text(encoding="utf-8")
    assert "<h1>Bericht über offene Beschlüsse</h1>" in document and "@page" in document
    parsed = _Cells()
    parsed.feed(document)
    assert parsed.rows == [HEADER, *ROWS]
    assert "3 offene Folgevorlagen: 1 rot, 1 gelb, 1 grün" in " ".join(document.split())

    pdf = tmp_path / "bericht.pdf"
    assert run(["decisions", "--body", "kreistag", "--format", "pdf", "--out", str(pdf), "--now", NOW]) == 0
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    flat = re.sub(r"\s+", "", text)
    assert text.lstrip().startswith("Bericht über offene Beschlüsse") and "Seite 1 von 1" in text
    for row in ROWS:
        assert re.sub(r"\s+", "", "".join(row[5:7])) in flat, row
    assert flat.index(f"{REF}-M2") < flat.index(f"{REF}-M1") < flat.index(f"{REF}-M3")


@pytest.mark.parametrize(("args", "message"), [
    (["--body", "Kreistg"], "kein Gremium 'Kreistg' – gemeint: Kreistag (kreistag)?"),
    ([], "die Beschlusskontrolle braucht ein Gremium (--body)"),
    (["--body", "kreistag", "--status", "offfen"], "unbekannter Status 'offfen' (gemeint: 'offen'?); erlaubt: "
                                                   "offen, verzoegert, erledigt"),
    (["--body", "kreistag", "--format", "pdf"], "--format pdf braucht --out DATEI.pdf"),
    (["--body", "kreistag", "--warn-days", "-1"], "--warn-days -1: bitte eine Zahl von Arbeitstagen von 0 bis 250"),
])
def test_bad_input_is_one_german_line_exit_4(measures: Engine, capsys: Cli, args: list[str], message: str) -> None:
    from workflow.cli import run

    capsys.readouterr()
    assert run(["decisions", *args, "--now", NOW]) == 4
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


# --- the API and the page ------------------------------------------------------------------------------------

AUDITOR = "pruefung@kreis-coesfeld.example"
OUTSIDER = "buerger@example.org"


def web(engine: Engine) -> Any:
    from fastapi.testclient import TestClient

    from workflow.config import Settings
    from workflow.web import create_app

    app = create_app(engine, Settings(auditors=AUDITOR, secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))
    return TestClient(app, client=("127.0.0.1", 50000))


def as_user(email: str) -> dict[str, str]:
    return {"X-Remote-User": email}


def adopt_private(engine: Engine) -> None:
    """A second strategy, marked not public, adopted with one measure."""
    engine.create("kreisstrategie", "SV-9-2000", FEDER, {"title": "Vertraulich", "massnahmen": "Geheime Maßnahme",
                                                         "public": "nein"})
    engine.fire("SV-9-2000", "einbringen", FEDER)
    for _ in range(2):
        engine.fire("SV-9-2000", "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire("SV-9-2000", "beschliessen", SITZ, values={"result": "beschlossen"})
    for body in COUNCILS:
        engine.fire("SV-9-2000", "beschliessen", SITZ, branch=body, values={"result": "beschlossen"})


def test_the_api_pages_and_shows_what_one_may_read(strategy: Engine) -> None:
    adopt(strategy, massnahmen=MASSNAHMEN)
    adopt_private(strategy)
    with web(strategy) as client:
        response = client.get("/api/decisions?body=kreistag&limit=2", headers=as_user(OUTSIDER))
        assert response.status_code == 200 and "X-Next-Cursor" in response.headers
        first = response.json()[0]
        assert {k: first[k] for k in ("body", "body_name", "reference", "child", "child_title", "state",
                                      "state_label", "light", "responsible", "result")} == {
            "body": "kreistag", "body_name": "Kreistag", "reference": REF, "child": f"{REF}-M1",
            "child_title": "E-Akte einführen", "state": "offen", "state_label": "Offen", "light": "gelb",
            "responsible": [VERANTWORTLICH], "result": "beschlossen"}
        following = client.get(response.headers["Link"].split(">")[0].lstrip("<"), headers=as_user(OUTSIDER))
        assert [r["child"] for r in following.json()] == [f"{REF}-M3"] and "X-Next-Cursor" not in following.headers
        # the private strategy's measure: for its roles and the auditors, not for others
        children = {who: [r["child"] for r in client.get("/api/decisions?body=Kreistag&limit=50",
                                                         headers=as_user(who)).json()]
                    for who in (OUTSIDER, FEDER, AUDITOR)}
        assert children[OUTSIDER] == [f"{REF}-M{n}" for n in (1, 2, 3)]
        assert children[FEDER] == children[AUDITOR] == [*children[OUTSIDER], "SV-9-2000-M1"]
        # bad input: one German line, HTTP 400
        for query, message in (("body=Kreistg", "kein Gremium 'Kreistg' – gemeint: Kreistag (kreistag)?"),
                               ("body=kreistag&status=zu", "unbekannter Status 'zu'"),
                               ("status=offen", "die Beschlusskontrolle braucht ein Gremium (--body)"),
                               ("body=kreistag&cursor=x", "'x' ist kein Seitenzeiger")):
            bad = client.get(f"/api/decisions?{query}", headers=as_user(OUTSIDER))
            assert bad.status_code == 400 and message in bad.json()["detail"], query
        assert client.get("/api/decisions?body=kreistag").status_code == 401


def test_the_page_with_labels_links_and_filters(strategy: Engine) -> None:
    adopt(strategy, massnahmen=MASSNAHMEN)
    adopt_private(strategy)
    strategy.fire(f"{REF}-M2", "beginnen", VERANTWORTLICH, values={"zieltermin": "2026-06-30", "sachstand": "x"})
    strategy.fire(f"{REF}-M2", "verzoegern", VERANTWORTLICH, values={"zieltermin": "2026-09-30", "sachstand": "y"})
    with web(strategy) as client:
        empty = client.get("/beschlusskontrolle", headers=as_user(OUTSIDER))
        assert empty.status_code == 200 and "Bitte ein Gremium wählen" in empty.text
        assert '<option value="kreistag">Kreistag</option>' in empty.text
        page = client.get("/beschlusskontrolle?body=Kreistag", headers=as_user(OUTSIDER))
        assert page.status_code == 200
        rows = _Cells()
        rows.feed(page.text)
        assert [r[0] for r in rows.rows[1:]] == ["rot", "gelb", "gelb"]
        assert rows.rows[1][3] == f"{REF}-M2 Bürgerportal ausbauen" and rows.rows[1][4] == "Verzögert"
        assert f'href="/vorlagen/{REF}-M2"' in page.text and f'href="/vorlagen/{REF}"' in page.text
        assert "SV-9-2000" not in page.text
        assert "SV-9-2000-M1" in client.get("/beschlusskontrolle?body=kreistag", headers=as_user(FEDER)).text
        delayed = client.get("/beschlusskontrolle?body=kreistag&status=verzoegert", headers=as_user(OUTSIDER))
        assert f"{REF}-M2" in delayed.text and f"{REF}-M1" not in delayed.text
        bad = client.get("/beschlusskontrolle?body=Kreistg", headers=as_user(OUTSIDER))
        assert bad.status_code == 400
        assert "kein Gremium 'Kreistg' – gemeint: Kreistag (kreistag)?" in html.unescape(bad.text)
        assert client.get("/beschlusskontrolle?body=kreistag&status=zu",
                          headers=as_user(OUTSIDER)).status_code == 400
        report = client.get("/beschlusskontrolle/bericht?body=kreistag&format=html", headers=as_user(OUTSIDER))
        assert report.status_code == 200 and "attachment" in report.headers["Content-Disposition"]
        assert "Bericht über offene Beschlüsse" in report.text and "SV-9-2000" not in report.text


@pytest.mark.parametrize(("spec", "message"), [
    ("{label: Erledigt, final: true, delayed: true}",
     "Zustand 'erledigt' ist ein Endzustand und kann nicht verzögert sein"),
    ("{label: Erledigt, final: true, delayed: ja}", "delayed von Zustand 'erledigt' muss true oder false sein"),
])
def test_delayed_is_checked_at_load(spec: str, message: str) -> None:
    from workflow.errors import DefinitionError

    text = (ROOT / "definitions" / "umsetzung.yaml").read_text(encoding="utf-8")
    text = text.replace("erledigt:   {label: Erledigt, final: true}", f"erledigt:   {spec}")
    with pytest.raises(DefinitionError) as problem:
        load_definition(text)
    assert message in str(problem.value)
