"""YAML mistakes in plain words: each mistake of a process owner's corpus gets one German line at the line
where it is, saying what is wrong and how to fix it (not the parser's jargon)."""

from __future__ import annotations

import pytest

from workflow import DefinitionError, load_definition

from .conftest import SPEC

TEXT = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8")
LINES = TEXT.splitlines(keepends=True)


def _with(line: int, new: str) -> str:
    """The process owner's file with line ``line`` (1-based) replaced by ``new``."""
    return "".join(LINES[: line - 1]) + new + "".join(LINES[line:])


def _number(text: str) -> int:
    return next(i for i, line in enumerate(LINES, 1) if line.startswith(text))


CORPUS = [
    # (what, the file, expected "line:col: message")
    ("indentation, less", lambda: _with(_number("  zur_kenntnis_genommen"), " zur_kenntnis_genommen: {label: Zur "
                                         "Kenntnis genommen, final: true}\n"),
     "'zur_kenntnis_genommen' ist weniger eingerückt als 'consultation' darüber; die Schlüssel einer Abbildung "
     "beginnen in derselben Spalte"),
    ("indentation, more", lambda: _with(_number("    consultation:"), "      consultation: {body: afwk, role: "
                                        "Kenntnisnahme}\n"),
     "'consultation' ist tiefer eingerückt als 'label' darüber, das schon einen Wert hat; rücken Sie 'consultation' "
     "so weit ein wie 'label'"),
    ("a tab", lambda: _with(_number("  verfasser:"), "\tverfasser: [buero.landrat@kreis-coesfeld.example]\n"),
     "ein Tabulator-Zeichen: YAML rückt nur mit Leerzeichen ein"),
    ("an unclosed quote", lambda: _with(_number("title:"), 'title: "Sachstandsbericht zur Kenntnisnahme\n'),
     'das Anführungszeichen " wird nicht geschlossen; setzen Sie ein schließendes " ans Ende des Werts'),
    ("an unclosed bracket", lambda: _with(_number("  sitzungsdienst:"),
                                          "  sitzungsdienst: [sitzungsdienst@kreis-coesfeld.example\n"),
     "die eckige Klammer [ wird nicht geschlossen (oder zwischen zwei Einträgen fehlt ein Komma); schließen Sie "
     "sie mit ]"),
    ("an unclosed brace", lambda: _with(_number("  afwk:"), '  afwk: {name: "Ausschuss", invitation_days: 7\n'),
     "die geschweifte Klammer { wird nicht geschlossen"),
    ("a missing colon", lambda: _with(_number("version:"), "version 1\n"),
     "nach 'version 1' fehlt der Doppelpunkt; schreiben Sie 'schlüssel: wert'"),
    ("a list item in a mapping", lambda: _with(_number("  sitzungsdienst:"),
                                               "  - sitzungsdienst@kreis-coesfeld.example\n"),
     "ein Listeneintrag '- sitzungsdienst@kreis-coesfeld.example' mitten in einer Abbildung; eine Ebene ist "
     "entweder eine Liste"),
    ("a key in a list", lambda: _with(_number("  - {trigger: vertagen"), "  vertagen: {source: ausschuss}\n"),
     "'vertagen' steht als Schlüssel in einer Liste; eine Ebene ist entweder eine Liste"),
]


@pytest.mark.parametrize(("what", "make", "message"), CORPUS, ids=[c[0] for c in CORPUS])
def test_each_mistake_is_one_plain_line_at_its_place(what: str, make: object, message: str) -> None:
    text = make()  # type: ignore[operator]
    changed = next(i for i, (a, b) in enumerate(zip(text.splitlines(), TEXT.splitlines(), strict=False), 1) if a != b)
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "sachstandsbericht.yaml")
    [problem] = caught.value.problems
    assert problem.line == changed, (what, str(problem))
    assert message in problem.message and "expected" not in problem.message and "scanning" not in problem.message


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  entwurf:    {label: Entwurf, initial: true}", "  entwurf: Entwurf",
     "Zustand 'entwurf' muss eine Abbildung sein, nicht der Text 'Entwurf'"),
    ("    consultation: {body: afwk, role: Kenntnisnahme}", "    consultation: afwk",
     "consultation von Zustand 'ausschuss' muss eine Abbildung sein, nicht der Text 'afwk'"),
    ('  afwk: {name: "Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung", invitation_days: 7}',
     "  - afwk", "bodies muss eine Abbildung sein, nicht eine Liste"),
], ids=["state", "consultation", "bodies"])
def test_a_wrong_type_is_one_problem_without_follow_ons(old: str, new: str, message: str) -> None:
    """Not also "unknown state 'entwurf'", "no initial state" or "wartet auf keine Sitzung"."""
    assert old in TEXT
    with pytest.raises(DefinitionError) as caught:
        load_definition(TEXT.replace(old, new), "sachstandsbericht.yaml")
    assert [p.message for p in caught.value.problems] == [message]
