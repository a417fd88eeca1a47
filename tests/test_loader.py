"""The definition loader: the spec files load unchanged; every bad definition gets its one-line message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workflow import DefinitionError, load_definition, load_definition_file
from workflow.cli import run

from .conftest import SPEC

HERE = Path(__file__).parent
BAD = HERE / "bad_definitions"

# The first problem each file of the corpus must report, as `line:col: message`.
EXPECTED = {
    "anchor_alias": "9:14: YAML-Anker sind nicht erlaubt (gefunden: '&leute')",
    "bad_closed_day": "7:12: Schließtag '13-45' ist weder MM-TT (jedes Jahr) noch JJJJ-MM-TT (nur an diesem Tag)",
    "branch_outside_parallel": "26:33: Zweig-Übergang 'annehmen' braucht einen parallelen Quellzustand, aber 'ausschuss' ist nicht parallel",
    "dead_end": "23:3: Zustand 'warten' ist eine Sackgasse: kein Endzustand und kein Weg hinaus",
    "deadline_bad_due": "27:46: due von Frist 'ladung' braucht genau eines von days, working_days, months, invitation_period",
    "duplicate_key": "23:3: doppelter Schlüssel 'entwurf' (zuerst in Zeile 18)",
    "final_with_exit": "22:3: Endzustand 'erledigt' hat ausgehende Übergänge",
    "impossible_quorum": "24:75: unerfüllbares Quorum 3 in Zustand 'raete': es gibt nur 2 Gremien",
    "meeting_without_consultation": "25:96: Übergang 'erledigen' verlangt eine Sitzung, aber Zustand 'erledigt' wartet auf keine Sitzung",
    "no_initial": "17:1: kein Anfangszustand: kennzeichnen Sie genau einen Zustand mit 'initial: true'",
    "parallel_without_bodies": "24:24: parallel von Zustand 'raete' braucht mindestens ein Gremium",
    "several_initial": "21:14: mehrere Anfangszustände: 'entwurf' und 'ausschuss'",
    "syntax_error": '9:14: die eckige Klammer [ wird nicht geschlossen (oder zwischen zwei Einträgen fehlt ein Komma); schließen Sie sie mit ]',
    "tag": "2:10: YAML-Tags sind nicht erlaubt (gefunden: 'tag:yaml.org,2002:int')",
    "unknown_body": "21:26: unbekanntes Gremium 'afwc' (gemeint: 'afwk'?)",
    "unknown_branch_outcome": "29:48: branch von Übergang 'annehmen' muss eines von adopted, rejected, deferred sein, nicht der Text 'adoptd' (gemeint: 'adopted'?)",
    "unknown_field": "25:97: unbekanntes Feld 'reslt' (gemeint: 'result'?)",
    "unknown_holidays": "6:13: unbekannter Feiertagskalender 'DE-XX' (z. B. DE-NW, DE-BY, DE)",
    "unknown_key": "18:13: Zustand 'entwurf': unbekannter Schlüssel 'lable' (gemeint: 'label'?); erlaubt: label, initial, final, consultation, parallel, signoff, delayed",
    "unknown_role": "25:69: unbekannte Rolle 'sitzungdienst' (gemeint: 'sitzungsdienst'?)",
    "unknown_state": "25:51: unbekannter Zustand 'erledgt' (gemeint: 'erledigt'?)",
    "unknown_timezone": "4:11: unbekannte Zeitzone 'Europe/Berlim' (ein IANA-Name wie Europe/Berlin)",
    "unknown_top_key": "4:1: die Ablaufdefinition: unbekannter Schlüssel 'beschreibung'; erlaubt: workflow, version, title, timezone, states, transitions, calendar, roles, bodies, fields, deadlines, follow_up",
    "unreachable": "23:3: Zustand 'archiv' ist von 'entwurf' aus nicht erreichbar",
    "workflow_id_mismatch": "1:11: die Ablauf-ID 'anderer_name' muss dem Dateinamen 'workflow_id_mismatch' entsprechen",
    "wrong_type": "2:10: version muss eine ganze Zahl sein, nicht der Text 'eins'",
    "yes_no_booleans_in_initial": "18:38: initial von Zustand 'entwurf' muss true oder false sein, nicht der Text 'yes'",
}


@pytest.mark.parametrize("name", ["kreisstrategie", "sachstandsbericht"], ids=str)
def test_spec_definitions_load_unchanged(name: str) -> None:
    """Both process-owner files (tests/data/process-owner) load exactly as written."""
    d = load_definition_file(SPEC / f"{name}.yaml")
    assert d.workflow == name
    assert d.initial.id == "entwurf"
    assert d.source_hash and len(d.source_hash) == 64


def test_kreisstrategie_model_matches_the_file() -> None:
    """The parsed model carries the 11 councils, the join, the '=' destination and the deadlines."""
    d = load_definition_file(SPEC / "kreisstrategie.yaml")
    parallel = d.states["kommunale_raete"].parallel
    assert parallel is not None and len(parallel.bodies) == 11
    assert parallel.join.quorum is None and parallel.on_success == "beschlossen"
    vertagen = d.find("kreistag", "vertagen")
    assert vertagen is not None and vertagen.dest_for("kreistag") == "kreistag"
    assert vertagen.requires == ("result", "meeting")
    branch = d.find("kommunale_raete", "vertagen")
    assert branch is not None and branch.branch == "deferred" and branch.dest is None
    assert [x.name for x in d.deadlines] == ["vorlage_fertig", "ladung", "ladung_rat", "ratsbeschluss"]
    assert d.bodies["rat_nottuln"].invitation_days == 10
    assert d.calendar.closed == ("12-24", "12-31")


def test_corpus_is_complete() -> None:
    """Every file of the bad-definition corpus has an expected message, and every message a file."""
    assert {p.stem for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_bad_definition_reports_its_problem(name: str) -> None:
    """Each broken definition is refused with `path:line:col: message` as its first problem."""
    path = BAD / f"{name}.yaml"
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    first = caught.value.problems[0]
    assert str(first) == f"{path}:{EXPECTED[name]}"


def test_state_named_off_and_yes_stay_strings() -> None:
    """YAML 1.1 booleans do not eat state or trigger names: `off`, `yes` and `no` are names."""
    d = load_definition_file(HERE / "good_definitions" / "state_named_off.yaml")
    assert "off" in d.states and "yes" in d.states
    assert d.find("ausschuss", "no") is not None


def test_all_problems_are_reported_at_once() -> None:
    """A file with several problems lists every one of them, in file order."""
    text = (BAD / "unknown_key.yaml").read_text().replace("version: 1", "version: eins")
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "x.yaml")
    lines = [str(p) for p in caught.value.problems]
    assert lines == [
        "x.yaml:2:10: version muss eine ganze Zahl sein, nicht der Text 'eins'",
        "x.yaml:18:13: Zustand 'entwurf': unbekannter Schlüssel 'lable' (gemeint: 'label'?);"
        " erlaubt: label, initial, final, consultation, parallel, signoff, delayed",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1:1: die Datei ist leer"),
        ("- a\n- b\n", "1:1: die Ablaufdefinition muss eine Abbildung sein, nicht eine Liste"),
        ("a: 1\n---\nb: 2\n", "2:1: nur ein YAML-Dokument je Datei ist erlaubt"),
    ],
    ids=["empty", "list", "two-documents"],
)
def test_structural_problems(text: str, message: str) -> None:
    """Empty files, non-mappings and multi-document streams are refused with a position."""
    with pytest.raises(DefinitionError, match=r"^x\.yaml:" + message.replace("(", r"\(").replace(")", r"\)")):
        load_definition(text, "x.yaml")


def test_validate_command_prints_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`definitions validate` prints ok for good files, every problem for bad ones, and exits 3."""
    shutil.copy(SPEC / "sachstandsbericht.yaml", tmp_path)
    shutil.copy(BAD / "unknown_role.yaml", tmp_path)
    code = run(["definitions", "validate", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 3
    assert f"{tmp_path / 'sachstandsbericht.yaml'}: ok" in out
    assert err.strip() == f"{tmp_path / 'unknown_role.yaml'}:{EXPECTED['unknown_role']}"


def test_validate_shipped_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    """The definitions shipped in definitions/ are valid."""
    assert run(["definitions", "validate", str(HERE.parent / "definitions")]) == 0
    assert capsys.readouterr().out.count(": ok") >= 2
