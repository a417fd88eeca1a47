"""Labels instead of ids: the transition keys ``label`` and ``confirm``, the reason a confirmed trigger needs
(engine on every store, CLI, API), and the German labels of the trail's entries."""

from __future__ import annotations

import json

import pytest

from workflow import DefinitionError, DefinitionLibrary, Engine, FixedClock, InputError, load_definition
from workflow.cli import run
from workflow.definition import humanise
from workflow.german import entry_label, entry_text
from workflow.store import Store

from .conftest import DEFINITIONS, FEDER, LANDRAT, SITZ

Cli = pytest.CaptureFixture[str]

MINI = """\
workflow: mini
version: 1
title: Mini
timezone: Europe/Berlin
roles:
  verfasser: [a@example.org]
states:
  entwurf: {label: Entwurf, initial: true}
  fertig: {label: Fertig, final: true}
  weg: {label: Zurückgezogen, final: true}
transitions:
  - {trigger: kenntnis_nehmen, source: entwurf, dest: fertig, roles: [verfasser]}
  - trigger: zurueckziehen
    label: Zurückziehen
    confirm: true
    source: entwurf
    dest: weg
    roles: [verfasser]
"""


# --- the definition language -------------------------------------------------------------------------


def test_label_and_confirm_are_loaded() -> None:
    d = load_definition(MINI, "mini.yaml")
    by_trigger = {t.trigger: t for t in d.transitions}
    assert (by_trigger["zurueckziehen"].label, by_trigger["zurueckziehen"].confirm) == ("Zurückziehen", True)
    assert (by_trigger["kenntnis_nehmen"].label, by_trigger["kenntnis_nehmen"].confirm) == (None, False)
    assert d.trigger_label("zurueckziehen") == "Zurückziehen"
    assert d.trigger_label("kenntnis_nehmen") == "Kenntnis nehmen"  # without a label: the id humanised
    assert humanise("join_success") == "Join success"


def test_a_label_is_trimmed_and_may_be_80_characters() -> None:
    text = MINI.replace("label: Zurückziehen", f"label: '  {'ä' * 80}  '")
    assert load_definition(text).trigger_label("zurueckziehen") == "ä" * 80


@pytest.mark.parametrize(("value", "line_col", "message"), [
    ('""', "14:12", "label von Übergang 'zurueckziehen' '' muss 1 bis 80 Zeichen lang sein"),
    ("'" + "x" * 81 + "'", "14:12", "muss 1 bis 80 Zeichen lang sein"),
    ('"Zurück\\nziehen"', "14:12", "enthält ein unsichtbares Zeichen oder Steuerzeichen (an Stelle 7)"),
    ('"Zurück\\u200bziehen"', "14:12", "enthält ein unsichtbares Zeichen oder Steuerzeichen (an Stelle 7)"),
    ("[a, b]", "14:12", "label von Übergang 'zurueckziehen' muss Text sein, nicht eine Liste"),
    ("12", "14:12", "label von Übergang 'zurueckziehen' muss Text sein, nicht die Zahl 12"),
])
def test_a_bad_label_is_refused_with_its_place(value: str, line_col: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(MINI.replace("label: Zurückziehen", f"label: {value}"), "mini.yaml")
    assert f"mini.yaml:{line_col}: " in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("value", ["ja", "1", '"true"', "[true]"])
def test_confirm_must_be_true_or_false(value: str) -> None:
    with pytest.raises(DefinitionError, match=r"mini\.yaml:15:14: confirm von Übergang 'zurueckziehen' muss "
                                              "true oder false sein"):
        load_definition(MINI.replace("confirm: true", f"confirm: {value}"), "mini.yaml")


def test_every_shipped_transition_has_a_label() -> None:
    from workflow import load_definition_file

    for path in sorted(DEFINITIONS.glob("*.yaml")):
        d = load_definition_file(path)
        assert all(t.label for t in d.transitions), path.name
        assert "zurueckziehen" in {t.trigger for t in d.transitions if t.confirm}, path.name


# --- the reason: the engine's rule on every store ------------------------------------------------------


@pytest.fixture
def shipped(store: Store, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(DEFINITIONS), clock)


def test_a_confirmed_trigger_needs_a_reason(shipped: Engine) -> None:
    shipped.create("kreisstrategie", "KS-1", FEDER, {"title": "Digitalisierungsstrategie"})
    for reason in (None, "", "   \n "):
        with pytest.raises(InputError, match=r"^KS-1: „Zurückziehen“ \(zurueckziehen\) muss mit einer Begründung "
                                             "bestätigt werden"):
            shipped.fire("KS-1", "zurueckziehen", LANDRAT, reason=reason)
    assert shipped.status("KS-1").state == "entwurf" and len(shipped.history("KS-1")) == 1  # nothing written
    with pytest.raises(InputError, match="unsichtbares Zeichen oder Steuerzeichen"):
        shipped.fire("KS-1", "zurueckziehen", LANDRAT, reason="Grund\u202e")
    with pytest.raises(InputError, match=r"höchstens 10\.000 sind erlaubt"):
        shipped.fire("KS-1", "zurueckziehen", LANDRAT, reason="x" * 10_001)
    shipped.fire("KS-1", "zurueckziehen", LANDRAT, reason="  Die Strategie wird neu gefasst.  ")
    last = shipped.history("KS-1")[-1]
    assert shipped.status("KS-1").state == "zurueckgezogen"
    assert last.payload == {"reason": "Die Strategie wird neu gefasst."}
    assert entry_text(last, shipped.definition_of(shipped.load("KS-1")), "Europe/Berlin").details == (
        "Begründung: Die Strategie wird neu gefasst.",)
    assert shipped.verify().ok


def test_a_reason_is_optional_elsewhere_and_recorded(shipped: Engine) -> None:
    """Other triggers (a transition, an internal one, a branch decision) take a reason too, and need none."""
    shipped.create("kreisstrategie", "KS-2", FEDER, {"title": "Digitalisierungsstrategie"})
    shipped.fire("KS-2", "einbringen", FEDER)
    assert "reason" not in shipped.history("KS-2")[-1].payload
    shipped.fire("KS-2", "vorlage_freigeben", FEDER, reason="im DMS freigegeben")
    assert shipped.history("KS-2")[-1].payload == {"reason": "im DMS freigegeben"}
    shipped.fire("KS-2", "beraten", SITZ, values={"result": "empfohlen"}, reason="  ")
    assert "reason" not in shipped.history("KS-2")[-1].payload  # a blank reason is none
    shipped.fire("KS-2", "beraten", SITZ, values={"result": "empfohlen"})
    shipped.fire("KS-2", "beschliessen", SITZ, values={"result": "beschlossen"})
    shipped.fire("KS-2", "vertagen", "hauptamt@olfen.example", branch="rat_olfen",
                 values={"result": "vertagt", "meeting": "2020-09-30T18:00"}, reason="Beratungsbedarf")
    entry = shipped.history("KS-2")[-1]
    assert entry.payload["reason"] == "Beratungsbedarf" and entry.payload["outcome"] == "deferred"


def test_the_permission_is_checked_before_the_reason(shipped: Engine) -> None:
    """Someone who may not withdraw learns that, not that a reason is missing."""
    from workflow import NotPermittedError

    shipped.create("kreisstrategie", "KS-3", FEDER, {"title": "Digitalisierungsstrategie"})
    with pytest.raises(NotPermittedError):
        shipped.fire("KS-3", "zurueckziehen", FEDER)


# --- CLI and API ------------------------------------------------------------------------------------------


def test_cli_fire_takes_a_reason(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Cli) -> None:
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(DEFINITIONS))
    monkeypatch.setenv("COUNCILFLOW_NOW", "2020-08-04T09:00")
    assert run(["init"]) == 0
    assert run(["documents", "create", "sachstandsbericht", "SV-1", "--actor", LANDRAT,
                "--set", "title=Sachstand"]) == 0
    capsys.readouterr()
    assert run(["fire", "SV-1", "zurueckziehen", "--actor", LANDRAT]) == 4
    err = capsys.readouterr().err
    assert "SV-1: „Zurückziehen“ (zurueckziehen) muss mit einer Begründung bestätigt werden" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert run(["fire", "SV-1", "zurueckziehen", "--actor", LANDRAT, "--reason", "Thema erledigt"]) == 0
    capsys.readouterr()
    assert run(["history", "SV-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[-1]["payload"] == {"reason": "Thema erledigt"}
    assert run(["history", "SV-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Angelegt [create]" in lines[0] and "  Entwurf" in lines[0]
    assert "Zurückziehen [zurueckziehen]  Entwurf → Zurückgezogen  (Begründung: Thema erledigt)" in lines[1]


def test_api_fire_takes_a_reason(shipped: Engine) -> None:
    from fastapi.testclient import TestClient

    from workflow.config import Settings
    from workflow.web.app import create_app

    shipped.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "Sachstand"})
    app = create_app(shipped, Settings(definitions=str(DEFINITIONS), secret="s", trusted_header="X-Remote-User",
                                       trusted_proxies="127.0.0.1"))
    headers = {"X-Remote-User": LANDRAT}
    with TestClient(app, client=("127.0.0.1", 1)) as client:
        refused = client.post("/api/papers/SV-2/fire", json={"trigger": "zurueckziehen"}, headers=headers)
        assert refused.status_code == 400 and "muss mit einer Begründung bestätigt werden" in refused.text
        wrong = client.post("/api/papers/SV-2/fire", json={"trigger": "zurueckziehen", "reason": 5},
                            headers=headers)
        assert wrong.status_code == 400 and "'reason' muss ein Text sein" in wrong.text
        done = client.post("/api/papers/SV-2/fire", json={"trigger": "zurueckziehen", "reason": "doppelt"},
                           headers=headers)
        assert done.status_code == 200 and done.json()["state"] == "zurueckgezogen"
        history = client.get("/api/papers/SV-2/history", headers=headers).json()
    assert history[-1]["payload"] == {"reason": "doppelt"}


# --- the engine's own entries -----------------------------------------------------------------------------


def test_engine_entries_have_german_labels() -> None:
    d = load_definition(MINI)
    assert entry_label(d, "create", "create", {}) == "Angelegt"
    assert entry_label(d, "meeting", "meeting", {"meeting": "x"}) == "Sitzungstermin festgelegt"
    assert entry_label(d, "meeting", "meeting", {"meeting": "x", "previous": "y"}) == "Sitzungstermin verschoben"
    assert entry_label(d, "join", "join_success", {"join": "success"}) == "Alle nötigen Gremien haben zugestimmt"
    assert entry_label(d, "join", "join_failure", {"join": "failure"}).startswith("Die nötige Zustimmung")
    assert entry_label(d, "close", "close", {}) == "Beratung nicht mehr nötig"
    assert entry_label(d, "transition", "zurueckziehen", {}) == "Zurückziehen"
    assert entry_label(d, "internal", "kenntnis_nehmen", {}) == "Kenntnis nehmen"
    assert entry_label(None, "transition", "kenntnis_nehmen", {}) == "Kenntnis nehmen"
    for kind in ("done", "undone", "migrate"):
        label = entry_label(d, kind, kind, {})
        assert label and label != kind and label[0].isupper()
