"""Follow-up papers (``follow_up``): the seed's Sachstandsberichte every six months, an Umsetzungsauftrag per
Maßnahme, each child created exactly once (restarts, several schedulers on PostgreSQL), the load errors with
their places, OParl's superordinated and subordinated papers, and a trail that verifies."""

from __future__ import annotations

import multiprocessing as mp
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifier.dispatch import Dispatcher
from notifier.stepping import deliver_until
from notifier.transports import MemoryTransport
from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.config import Settings
from workflow.errors import DefinitionError
from workflow.library import check_follow_ups
from workflow.loader import load_definition
from workflow.store import Store

from .conftest import FEDER, ROOT, SITZ

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday, 1 September 2025, 09:00 in Coesfeld: the Kreistag's and the councils' decisions on the strategy.
ADOPTED = datetime(2025, 9, 1, 9, 0, tzinfo=BERLIN)
REF = "SV-9-1000"
LANDRAT = "buero.landrat@kreis-coesfeld.example"
COUNCILS = ("rat_ascheberg", "rat_billerbeck", "rat_coesfeld", "rat_duelmen", "rat_havixbeck", "rat_luedinghausen",
            "rat_nordkirchen", "rat_nottuln", "rat_olfen", "rat_rosendahl", "rat_senden")


def shipped(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for name in ("kreisstrategie", "sachstandsbericht", "umsetzung"):
        shutil.copy(ROOT / "definitions" / f"{name}.yaml", folder)
    return folder


def adopt(engine: Engine, reference: str = REF, massnahmen: str = "") -> None:
    """The strategy through its consultations, adopted by the Kreistag and all eleven councils."""
    values = {"title": "Digitalisierungsstrategie", "department": "Stabsstelle Digitalisierung"}
    if massnahmen:
        values["massnahmen"] = massnahmen
    engine.create("kreisstrategie", reference, FEDER, values)
    engine.fire(reference, "einbringen", FEDER)
    for _ in range(2):
        engine.fire(reference, "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire(reference, "beschliessen", SITZ, values={"result": "beschlossen"})
    for body in COUNCILS:
        engine.fire(reference, "beschliessen", SITZ, branch=body, values={"result": "einstimmig beschlossen"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(ADOPTED.astimezone(UTC))


@pytest.fixture
def strategy(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(shipped(tmp_path / "definitions")), clock)


def local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M")


def test_the_seed_series_four_reports_every_six_months_each_reminded_once(strategy: Engine, clock: FixedClock
                                                                          ) -> None:
    adopt(strategy)
    assert strategy.status(REF).state == "beschlossen"
    [first] = strategy.follow_ups(REF)
    assert (first.reference, first.status, local(first.due_at)) == (f"{REF}-SB1", "planned", "01.03.2026 09:00")

    transport = MemoryTransport()
    dispatcher = Dispatcher(strategy, transport, Settings(), "test")
    report = deliver_until(dispatcher, clock, datetime(2028, 1, 1, tzinfo=BERLIN))
    assert report.follow_ups == 4

    children = strategy.follow_ups(REF)
    assert [(c.reference, c.status, local(c.due_at), c.state) for c in children] == [
        (f"{REF}-SB1", "created", "01.03.2026 09:00", "entwurf"),
        (f"{REF}-SB2", "created", "01.09.2026 09:00", "entwurf"),
        (f"{REF}-SB3", "created", "01.03.2027 09:00", "entwurf"),
        (f"{REF}-SB4", "created", "01.09.2027 09:00", "entwurf"),
    ]
    # each report drafted within 20 working days of its creation (Karfreitag and Ostermontag 2027 do not count),
    # reminded twice and escalated like any paper's deadline
    expected_due = {1: date(2026, 3, 27), 2: date(2026, 9, 29), 3: date(2027, 3, 31), 4: date(2027, 9, 29)}
    for n, due in expected_due.items():
        child = f"{REF}-SB{n}"
        status = strategy.status(child)
        assert status.fields == {"title": f"Sachstandsbericht {n}: Digitalisierungsstrategie",
                                 "department": "Stabsstelle Digitalisierung", "public": True, "references": [REF]}
        created = strategy.history(child)[0]
        assert (created.kind, created.actor, created.payload["follow_up"]) == (
            "create", "system", {"parent": REF, "name": "sachstand", "n": n, "on_behalf_of": "buero_landrat"})
        assert local(created.at) == local(children[n - 1].due_at)
        [deadline] = strategy.deadlines(child)
        assert (deadline.deadline.name, deadline.deadline.due_at.astimezone(BERLIN).date()) == ("einbringen", due)
        mails = strategy.reminders(reference=child, statuses=("sent",))
        assert [(m.kind, m.recipients) for m in mails] == [
            ("remind", (LANDRAT,)), ("remind", (LANDRAT,)), ("escalate", (SITZ,))]
    # the parent's trail names each child, on behalf of the role; no fifth report
    notes = [r for r in strategy.history(REF) if r.kind == "follow_up"]
    assert [(r.payload["child"], r.payload["on_behalf_of"], r.actor) for r in notes] == [
        (f"{REF}-SB{n}", "buero_landrat", "system") for n in range(1, 5)]
    assert f"{REF}-SB5" not in strategy.store.references()
    assert strategy.verify().ok

    # a restart (a new process on the same database) creates none of them again
    papers, entries = strategy.store.references(), strategy.store.count_audit()
    again = Engine(strategy.store, DefinitionLibrary(strategy.library.folder), FixedClock(clock.now()))
    replay = Dispatcher(again, MemoryTransport(), Settings(), "restarted")
    assert replay.tick().follow_ups == 0
    assert again.create_due_follow_ups(datetime(2030, 1, 1, tzinfo=UTC)) == []
    assert (strategy.store.references(), strategy.store.count_audit()) == (papers, entries)


def test_three_massnahmen_become_three_umsetzungsauftraege_in_the_adopting_transaction(strategy: Engine) -> None:
    adopt(strategy, massnahmen="E-Akte einführen, Bürgerportal ausbauen, WLAN in allen Schulen")
    children = [c for c in strategy.follow_ups(REF) if c.name == "massnahme"]
    assert [(c.reference, c.workflow, c.status, c.state_label) for c in children] == [
        (f"{REF}-M1", "umsetzung", "created", "Offen"),
        (f"{REF}-M2", "umsetzung", "created", "Offen"),
        (f"{REF}-M3", "umsetzung", "created", "Offen"),
    ]
    assert [strategy.status(c.reference).fields["title"] for c in children] == [
        "E-Akte einführen", "Bürgerportal ausbauen", "WLAN in allen Schulen"]
    parent = strategy.parent_of(f"{REF}-M2")
    assert parent is not None and (parent.reference, parent.name, parent.n) == (REF, "massnahme", 2)
    assert strategy.parent_of(REF) is None
    # the join into "beschlossen" and the children's creation are one change: the follow_up entries come
    # right after it, each after its child's creation
    trail = list(strategy.audit())
    join = next(r for r in trail if r.reference == REF and r.kind == "join")
    after = [(r.reference, r.kind) for r in trail if r.seq > join.seq]
    assert after == [(f"{REF}-M1", "create"), (REF, "follow_up"), (f"{REF}-M2", "create"), (REF, "follow_up"),
                     (f"{REF}-M3", "create"), (REF, "follow_up")]
    # each order runs its own deadline at once (start it within 10 working days)
    [start] = strategy.deadlines(f"{REF}-M1")
    assert (start.deadline.name, start.deadline.due_at.astimezone(BERLIN).date()) == ("beginnen", date(2025, 9, 15))
    # delayed with a new target date: the target-date deadline starts again from it
    strategy.fire(f"{REF}-M1", "beginnen", FEDER, values={"zieltermin": "2026-03-31"})
    strategy.fire(f"{REF}-M1", "verzoegern", FEDER, values={"sachstand": "Ausschreibung gescheitert",
                                                           "zieltermin": "2026-06-30"})
    [target] = strategy.deadlines(f"{REF}-M1")
    assert (target.deadline.name, target.deadline.due_at.astimezone(BERLIN).date()) == ("zieltermin",
                                                                                       date(2026, 6, 30))
    assert strategy.status(f"{REF}-M1").state_label == "Verzögert"
    assert strategy.verify().ok


def test_oparl_names_the_follow_up_papers_and_the_paper_they_follow(strategy: Engine) -> None:
    adopt(strategy, massnahmen="E-Akte, Portal")
    base = "https://ris.example/oparl/v1.1"
    parent = strategy.oparl_paper(strategy.load(REF), base)
    assert parent["subordinatedPaper"] == [f"{base}/papers/{REF}-M1", f"{base}/papers/{REF}-M2"]
    assert "superordinatedPaper" not in parent
    child = strategy.oparl_paper(strategy.load(f"{REF}-M2"), base)
    assert child["superordinatedPaper"] == [f"{base}/papers/{REF}"]
    assert child["relatedPaper"] == [f"{base}/papers/{REF}"]
    assert "subordinatedPaper" not in child
    # the kept OParl object of the parent is built again once a recurring report joins its children
    strategy.oparl_papers(base, 0, 100)
    strategy.create_due_follow_ups(datetime(2026, 3, 2, tzinfo=UTC))
    _total, papers = strategy.oparl_papers(base, 0, 100)
    kept = next(p for p in papers if p["reference"] == REF)
    assert kept["subordinatedPaper"][-1] == f"{base}/papers/{REF}-SB1"
    # ... and it counts as modified then: a client syncing with modified_since fetches it again
    created = strategy.history(f"{REF}-SB1")[0].at
    assert kept["modified"] == created.isoformat() > kept["created"]
    since = datetime(2026, 3, 1, tzinfo=UTC)
    _total, changed = strategy.oparl_papers(base, 0, 100, modified_since=since)
    assert {p["reference"] for p in changed} == {REF, f"{REF}-SB1"}
    exported = strategy.oparl(base, "Kreis Coesfeld", "Europe/Berlin", modified_since=since)["papers"]
    assert {p["reference"] for p in exported} == {REF, f"{REF}-SB1"}


def test_follow_ups_as_they_stood_on_a_day(strategy: Engine, clock: FixedClock) -> None:
    """``status --as-of`` (and the API's as_of) list the follow-up papers as they stood then: created ones with
    the child's state then, the next of a series as planned, later ones not at all."""
    adopt(strategy, massnahmen="E-Akte")
    strategy.create_due_follow_ups(datetime(2026, 3, 1, 8, tzinfo=UTC))  # SB1 created; SB2 planned
    strategy.create_due_follow_ups(datetime(2026, 9, 1, 8, tzinfo=UTC))  # SB2 created; SB3 planned
    clock.set(datetime(2026, 9, 10, tzinfo=UTC))
    strategy.fire(f"{REF}-M1", "beginnen", FEDER, values={"zieltermin": "2027-03-31"})

    def then(day: datetime | None) -> list[tuple[str, str, str | None]]:
        return [(c.reference, c.status, c.state) for c in strategy.follow_ups(REF, day)]

    assert then(datetime(2025, 8, 1, tzinfo=UTC)) == []  # before the decision: nothing owed yet
    assert then(datetime(2025, 10, 1, tzinfo=UTC)) == [(f"{REF}-M1", "created", "offen"),
                                                       (f"{REF}-SB1", "planned", None)]
    assert then(datetime(2026, 6, 1, tzinfo=UTC)) == [(f"{REF}-M1", "created", "offen"),
                                                      (f"{REF}-SB1", "created", "entwurf"),
                                                      (f"{REF}-SB2", "planned", None)]
    assert then(None) == [(f"{REF}-M1", "created", "in_arbeit"), (f"{REF}-SB1", "created", "entwurf"),
                          (f"{REF}-SB2", "created", "entwurf"), (f"{REF}-SB3", "planned", None)]
    as_json = strategy.follow_up_json(REF, datetime(2026, 6, 1, tzinfo=UTC))
    assert [c["reference"] for c in as_json["follow_ups"]] == [f"{REF}-M1", f"{REF}-SB1", f"{REF}-SB2"]


def test_a_day_before_the_paper_is_named_as_the_user_wrote_it(strategy: Engine, clock: FixedClock) -> None:
    """``status --as-of`` a day before a follow-up paper existed says so in local time, with when it was created
    (it named the instant in UTC: "am 2026-02-28T23:00:00+00:00" for --as-of 2026-03-01)."""
    from workflow.errors import InputError

    adopt(strategy, massnahmen="E-Akte")
    strategy.create_due_follow_ups(datetime(2026, 3, 1, 8, tzinfo=UTC))
    with pytest.raises(InputError) as caught:
        strategy.status(f"{REF}-SB1", "2026-03-01")
    assert caught.value.message == (f"{REF}-SB1 gab es am 01.03.2026 00:00 noch nicht; angelegt wurde sie am "
                                    "01.03.2026 09:00")


def test_the_paper_page_and_status_list_the_follow_up_papers(strategy: Engine, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from workflow.web import create_app

    adopt(strategy, massnahmen="E-Akte, Portal")
    strategy.fire(f"{REF}-M1", "beginnen", FEDER, values={"zieltermin": "2026-03-31"})
    app = create_app(strategy, Settings(secret="test-secret", trusted_header="X-Remote-User",
                                        trusted_proxies="127.0.0.1"))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        page = client.get(f"/vorlagen/{REF}", headers={"X-Remote-User": FEDER}).text
        child = client.get(f"/vorlagen/{REF}-M2", headers={"X-Remote-User": FEDER}).text
        api = client.get(f"/api/papers/{REF}-M2", headers={"X-Remote-User": FEDER}).json()
        parent_api = client.get(f"/api/papers/{REF}", headers={"X-Remote-User": FEDER}).json()
    assert api["parent"] == {"reference": REF, "follow_up": "massnahme", "n": 2} and api["follow_ups"] == []
    assert [(c["reference"], c["status"], c["state"]) for c in parent_api["follow_ups"]] == [
        (f"{REF}-M1", "created", "in_arbeit"), (f"{REF}-M2", "created", "offen"), (f"{REF}-SB1", "planned", None)]
    assert '<h2 id="folgevorlagen">Folgevorlagen</h2>' in page
    assert f'<a href="/vorlagen/{REF}-M1">{REF}-M1</a>' in page and "In Arbeit" in page
    assert f"{REF}-SB1</td>" in page and "wird am 01.03.2026 09:00 angelegt" in page
    assert f'Folgevorlage von</dt><dd><a href="/vorlagen/{REF}">{REF}</a>' in child

    from click.testing import CliRunner

    from workflow.cli import main

    db = strategy.store.url if strategy.store.dialect != "memory" else None
    if db is None:
        return  # the command line opens its database by URL
    result = CliRunner().invoke(main, ["status", REF, "--db", db, "--definitions", str(strategy.library.folder),
                                       "--now", "2025-09-02T10:00"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-4:] == [
        "  Folgevorlagen:",
        f"    {REF + '-M1':<24} {'umsetzung':<20} In Arbeit",
        f"    {REF + '-M2':<24} {'umsetzung':<20} Offen",
        f"    {REF + '-SB1':<24} {'sachstandsbericht':<20} wird am 01.03.2026 09:00 angelegt",
    ]


def test_a_series_until_a_date_field_ends_when_the_paper_leaves_the_state(store: Store, tmp_path: Path,
                                                                         clock: FixedClock) -> None:
    folder = shipped(tmp_path / "definitions")
    (folder / "projekt.yaml").write_text(PROJEKT, encoding="utf-8")
    engine = Engine(store, DefinitionLibrary(folder), clock)
    engine.create("projekt", "P-1", FEDER, {"title": "Glasfaser", "laufzeit_bis": "2025-12-31"})
    engine.create("projekt", "P-2", FEDER, {"title": "Radwege", "laufzeit_bis": "2026-12-31"})
    for ref in ("P-1", "P-2"):
        engine.fire(ref, "starten", FEDER)
    engine.create_due_follow_ups(datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    # the fourth report would be due on 1 January, after the project's end: it is not owed
    assert [(c.reference, c.status) for c in engine.follow_ups("P-1")] == [
        ("P-1-B1", "created"), ("P-1-B2", "created"), ("P-1-B3", "created")]
    # P-2 is stopped before its fourth report is due: it is not created
    clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    engine.fire("P-2", "beenden", FEDER)
    engine.create_due_follow_ups(datetime(2027, 1, 1, tzinfo=UTC))
    assert [(c.reference, c.status) for c in engine.follow_ups("P-2")] == [
        ("P-2-B1", "created"), ("P-2-B2", "created"), ("P-2-B3", "created"), ("P-2-B4", "ended")]
    assert engine.status("P-1-B2").fields["title"] == "Bericht 2 zu Glasfaser (P-1)"
    assert engine.verify().ok


def test_entering_the_state_again_continues_the_series_from_its_start(store: Store, tmp_path: Path,
                                                                      clock: FixedClock) -> None:
    folder = shipped(tmp_path / "definitions")
    (folder / "projekt.yaml").write_text(PROJEKT, encoding="utf-8")
    engine = Engine(store, DefinitionLibrary(folder), clock)
    engine.create("projekt", "P-3", FEDER, {"title": "Schulbau", "laufzeit_bis": "2025-12-31"})
    engine.fire("P-3", "starten", FEDER)
    engine.create_due_follow_ups(datetime(2025, 11, 2, tzinfo=UTC))
    clock.set(datetime(2025, 11, 10, 12, 0, tzinfo=UTC))
    engine.fire("P-3", "verlaengern", FEDER, values={"laufzeit_bis": "2026-02-28"})  # re-enters "laufend"
    assert [(c.reference, c.status) for c in engine.follow_ups("P-3")] == [
        ("P-3-B1", "created"), ("P-3-B2", "created"), ("P-3-B3", "planned")]
    engine.create_due_follow_ups(datetime(2026, 6, 1, tzinfo=UTC))
    # still monthly from 1 September, 09:00, and now until the end of February
    assert [(c.reference, c.status, local(c.due_at)) for c in engine.follow_ups("P-3")] == [
        ("P-3-B1", "created", "01.10.2025 09:00"), ("P-3-B2", "created", "01.11.2025 09:00"),
        ("P-3-B3", "created", "01.12.2025 09:00"), ("P-3-B4", "created", "01.01.2026 09:00"),
        ("P-3-B5", "created", "01.02.2026 09:00")]


PROJEKT = """\
workflow: projekt
version: 1
title: Projekt mit Berichten
timezone: Europe/Berlin
roles:
  leitung: [digitalisierung@kreis-coesfeld.example]
fields:
  title: {type: text, required: true}
  laufzeit_bis: {type: date}
states:
  geplant: {initial: true}
  laufend: {}
  beendet: {final: true}
transitions:
  - {trigger: starten, source: geplant, dest: laufend, roles: [leitung]}
  - {trigger: beenden, source: laufend, dest: beendet, roles: [leitung]}
  - {trigger: verlaengern, source: laufend, dest: "=", roles: [leitung], requires: [laufzeit_bis]}
follow_up:
  - name: bericht
    when: laufend
    workflow: sachstandsbericht
    every: {months: 1}
    until: laufzeit_bis
    reference: "{reference}-B{n}"
    fields: {title: "Bericht {n} zu {title} ({reference})"}
"""

BAD = """\
workflow: bad
version: 1
title: Fehlerhaft
timezone: Europe/Berlin
roles:
  leitung: [a@example.org]
fields:
  title: {type: text, required: true}
  massnahmen: {type: list}
  frist: {type: date}
states:
  offen: {initial: true}
  fertig: {final: true}
transitions:
  - {trigger: fertigstellen, source: offen, dest: fertig, roles: [leitung]}
follow_up:
  - name: a
    when: fertg
    workflow: umsetzung
    every: {months: 6}
    for_each: massnahmen
    reference: "{reference}-A"
    actor: leitng
  - name: b
    when: fertig
    workflow: umsetzung
    every: {months: 6}
    count: 2
    until: frist
    reference: "{reference}-B{n}"
    fields: {title: "{titel} {item}"}
  - name: c
    when: fertig
    workflow: umsetzung
    count: 3
    reference: "{reference}-C{n:03}"
"""


def test_load_errors_name_their_places() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(BAD, "bad.yaml")
    found = [(p.line, p.column, p.message) for p in caught.value.problems]
    # the loader's own checks of names (a state, a role), in whatever words they are worded
    assert [(line, column) for line, column, message in found if "'fertg'" in message or "'leitng'" in message] \
        == [(18, 11), (23, 12)]
    assert [f"bad.yaml:{line}:{column}: {message}" for line, column, message in found
            if "'fertg'" not in message and "'leitng'" not in message] == [
        "bad.yaml:21:5: Folgevorlage 'a' ist wiederkehrend (every) und je Listeneintrag (for_each): bitte eines von "
        "beiden",
        "bad.yaml:22:16: Aktenzeichen von Folgevorlage 'a' muss {n} enthalten (1, 2, …): jede Folgevorlage braucht "
        "ein eigenes Aktenzeichen",
        "bad.yaml:29:5: Folgevorlage 'b' hat count und until: eine Reihe endet nach count Vorlagen oder am Datum in "
        "until, nicht beidem",
        "bad.yaml:31:21: Feld 'title' von Folgevorlage 'b': unbekannter Platzhalter '{titel}' (gemeint: 'title'?); "
        "möglich: reference, n, result, title, massnahmen, frist",
        "bad.yaml:31:21: Feld 'title' von Folgevorlage 'b': der Platzhalter '{item}' braucht for_each: er ist der "
        "Listeneintrag jeder Folgevorlage",
        "bad.yaml:35:5: count von Folgevorlage 'c' braucht every: nur eine wiederkehrende Reihe hat ein Ende",
        "bad.yaml:36:16: Aktenzeichen von Folgevorlage 'c': '{n:03}' ist kein Platzhalter: schreiben Sie {NAME} mit "
        "einem Feldnamen, reference, n oder item; eine Klammer selbst doppelt ({{ oder }})",
    ]


def test_bad_names_of_a_follow_up_are_told_in_german() -> None:
    text = BAD.replace("  - name: a\n", "  - name: Sachstand\n").replace("workflow: umsetzung\n    every",
                                                                         "workflow: Umsetzung\n    every", 1)
    text = text.replace('fields: {title: "{titel} {item}"}', 'fields: {Titel: "x"}')
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "bad.yaml")
    messages = [p.message for p in caught.value.problems]
    rule = "darf nur Kleinbuchstaben, Ziffern und _ enthalten und muss mit einem Buchstaben beginnen"
    for what, value in (("Name der Folgevorlage", "Sachstand"), ("Ablauf-ID", "Umsetzung"), ("Feldname", "Titel")):
        assert f"{what} '{value}' {rule}" in messages, messages


def test_the_folder_check_names_unknown_workflows_and_fields(tmp_path: Path) -> None:
    folder = shipped(tmp_path / "definitions")
    text = (folder / "kreisstrategie.yaml").read_text(encoding="utf-8")
    text = text.replace("workflow: umsetzung\n", "workflow: umsetzen\n").replace(
        'fields: {title: "Sachstandsbericht {n}: {title}", department: "{department}"}',
        'fields: {titel: "Sachstandsbericht {n}: {title}"}')
    definition = load_definition(text, "kreisstrategie.yaml")
    with pytest.raises(DefinitionError) as caught:
        check_follow_ups(definition, folder)
    lines = text.splitlines()
    workflow_line = next(i for i, line in enumerate(lines, 1) if "workflow: umsetzen" in line)
    titel_line = next(i for i, line in enumerate(lines, 1) if "titel:" in line)
    report_line = next(i for i, line in enumerate(lines, 1) if "workflow: sachstandsbericht" in line)
    assert [str(p) for p in caught.value.problems] == [
        f"kreisstrategie.yaml:{workflow_line}:15: Folgevorlage 'massnahme': kein Ablauf 'umsetzen' in {folder} "
        "(gemeint: 'umsetzung'?); bekannt: kreisstrategie, sachstandsbericht, umsetzung",
        f"kreisstrategie.yaml:{report_line}:15: Folgevorlage 'sachstand': Feld 'title' des Ablaufs "
        "'sachstandsbericht' ist Pflicht; bitte in fields angeben",
        f"kreisstrategie.yaml:{titel_line}:14: Folgevorlage 'sachstand': Ablauf 'sachstandsbericht' hat kein Feld "
        "'titel' (gemeint: 'title'?); seine Felder: title, department, public, references",
    ]


def test_a_child_whose_reference_is_taken_is_recorded_as_failed_and_the_parent_moves_on(strategy: Engine) -> None:
    strategy.create("umsetzung", f"{REF}-M2", FEDER, {"title": "Schon da"})
    adopt(strategy, massnahmen="E-Akte, Portal, WLAN")
    assert strategy.status(REF).state == "beschlossen"
    rows = [(c.reference, c.status, c.error) for c in strategy.follow_ups(REF) if c.name == "massnahme"]
    assert rows == [
        (f"{REF}-M1", "created", None),
        (f"{REF}-M2", "failed", f"{REF}-M2: eine Vorlage mit diesem Aktenzeichen gibt es schon; Folgevorlage "
                                f"'massnahme' von {REF} kann sie nicht anlegen"),
        (f"{REF}-M3", "created", None),
    ]
    assert strategy.status(f"{REF}-M2").fields["title"] == "Schon da"


def _scheduler(url: str, defs: str, moment: str, barrier: Any, out: Any) -> None:
    """One `serve` process's tick at the same moment as the others' (its mails go nowhere)."""
    engine = Engine(SqlStore(url), DefinitionLibrary(defs), FixedClock(datetime.fromisoformat(moment)))
    dispatcher = Dispatcher(engine, MemoryTransport(), Settings(), f"serve-{mp.current_process().pid}")
    try:
        barrier.wait(timeout=60)
        report = dispatcher.tick()
        out.put(("ok", report.follow_ups) if not report.errors else ("error", report.errors))
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put(("error", repr(exc)))


@pytest.mark.postgres
def test_several_schedulers_on_postgresql_create_each_report_exactly_once(pg_database: str, tmp_path: Path,
                                                                           clock: FixedClock) -> None:
    from .conftest import _reset_pg

    _reset_pg(pg_database)
    folder = shipped(tmp_path / "definitions")
    store = SqlStore(pg_database)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    try:
        adopt(engine)
        adopt(engine, "SV-9-2000")
        moment = datetime(2028, 1, 1, tzinfo=UTC).isoformat()  # all eight reports are due
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_scheduler, args=(pg_database, str(folder), moment, barrier, out))
                 for _ in range(4)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert all(kind == "ok" for kind, _ in results), results
        assert sum(count for _, count in results) == 8  # each report by exactly one process
        expected = sorted(f"{ref}-SB{n}" for ref in (REF, "SV-9-2000") for n in range(1, 5))
        for ref in (REF, "SV-9-2000"):
            assert [c.status for c in engine.follow_ups(ref)] == ["created"] * 4
            assert len([r for r in engine.history(ref) if r.kind == "follow_up"]) == 4
        assert sorted(r for r in store.references() if "-SB" in r) == expected
        assert engine.verify().ok
    finally:
        store.dispose()


def test_definitions_diff_lists_the_follow_ups_of_a_new_version() -> None:
    from workflow.defdiff import diff_definitions
    from workflow.loader import load_definition_file

    from .conftest import SPEC

    diff = diff_definitions(load_definition_file(SPEC / "kreisstrategie.yaml"),
                            load_definition_file(ROOT / "definitions" / "kreisstrategie.yaml"))
    assert [(i.kind, i.name, i.details[3]) for i in diff.items if i.section == "follow_up"] == [
        ("added", "massnahme", "wann: je Eintrag von massnahmen"),
        ("added", "sachstand", "wann: alle 6 Monate, 4-mal")]


def test_list_entries_with_a_comma_stay_whole(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    """A Maßnahme with a comma (one entry per line) is one Umsetzungsauftrag; a list field's template takes a
    list placeholder entry by entry and ``{item}`` and the parent's reference whole, commas and all."""
    folder = shipped(tmp_path / "definitions")
    strategy = (folder / "kreisstrategie.yaml").read_text(encoding="utf-8")
    (folder / "kreisstrategie.yaml").write_text(strategy.replace(
        'fields: {title: "{item}", department: "{department}"}',
        'fields: {title: "{item}", department: "{department}", references: "{reference}, {references}, {item}"}'),
        encoding="utf-8")
    engine = Engine(store, DefinitionLibrary(folder), clock)
    reference = "SV 9,1000"
    engine.create("kreisstrategie", "SV-9-1334", FEDER, {"title": "Vorgänger"})
    adopt(engine, reference, massnahmen="Breitband, Glasfaser ausbauen\nSchulen anbinden\n")
    assert engine.status(reference).fields["massnahmen"] == ["Breitband, Glasfaser ausbauen", "Schulen anbinden"]
    children = [c.reference for c in engine.follow_ups(reference) if c.name == "massnahme"]
    assert [engine.status(c).fields["title"] for c in children] == ["Breitband, Glasfaser ausbauen",
                                                                    "Schulen anbinden"]
    assert engine.status(children[0]).fields["references"] == [reference, "Breitband, Glasfaser ausbauen"]
    [report] = engine.create_due_follow_ups(datetime(2026, 3, 2, tzinfo=UTC))  # the first Sachstandsbericht
    assert engine.status(report.child).fields["references"] == [reference]  # the parent, filled in by the engine
    assert engine.verify().ok
