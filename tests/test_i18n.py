"""One language for users: every message people read is marked for the catalogs and translated to German;
English is there on request (``--lang en``, ``LANG``, ``Accept-Language``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from workflow import i18n
from workflow.catalogs import check

ROOT = Path(__file__).resolve().parent.parent

#: Modules whose messages are not yet all marked for the catalogs. Empty when the work is done.
NOT_YET: set[str] = {
}


def test_every_message_of_the_code_has_a_german_translation() -> None:
    problems = check()
    assert not problems, "\n".join(str(p) for p in problems[:40]) + f"\n… {len(problems)} in all (make messages)"


def _raised_text(node: ast.Call) -> ast.expr | None:
    """The message argument of ``raise SomeError(<message>)``: a literal or f-string means it was not marked."""
    if not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant | ast.JoinedStr) and isinstance(getattr(first, "value", ""), str):
        return first
    if isinstance(first, ast.BinOp) and isinstance(first.left, ast.Constant | ast.JoinedStr):
        return first
    return None


USER_ERRORS = {"WorkflowError", "DefinitionError", "InputError", "NotAllowedNowError", "NotPermittedError",
               "ConflictError", "NotFoundError", "StorageError", "AuditIntegrityError", "ToolMissingError",
               "Unauthenticated", "Problem", "ConfigError", "TemplateError", "RefusedError"}


def _unmarked(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name not in USER_ERRORS:
            continue
        text = _raised_text(node) if name != "Problem" else next(
            (a for a in node.args[3:4] if isinstance(a, ast.Constant | ast.JoinedStr)), None)
        if text is not None:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(text)[:90]}")
    return found


@pytest.mark.parametrize("package", ["workflow", "notifier"])
def test_every_error_a_user_reads_goes_through_the_catalog(package: str) -> None:
    unmarked = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if str(path.relative_to(ROOT)) in NOT_YET or "migrations" in path.parts:
            continue
        unmarked += _unmarked(path)
    assert not unmarked, "\n".join(unmarked[:60]) + f"\n… {len(unmarked)} in all"


def test_the_language_is_german_unless_english_is_asked_for() -> None:
    env = i18n.language_from_environment
    assert env({}) == "de"
    assert env({"LANG": "C.UTF-8"}) == "de"
    assert env({"LANG": "en_GB.UTF-8"}) == "en"
    assert env({"LANG": "de_DE.UTF-8", "LC_ALL": "en_US"}) == "en"
    assert env({"LANG": "en_US.UTF-8", "COUNCILFLOW_LANG": "de"}) == "de"
    assert env({"LANG": "fr_FR.UTF-8"}) == "de"


@pytest.mark.parametrize(("header", "language"), [
    (None, "de"), ("", "de"), ("en", "en"), ("en-GB,en;q=0.9", "en"), ("de-DE,de;q=0.9,en;q=0.8", "de"),
    ("fr-FR,en;q=0.5", "en"), ("en;q=0.2,de;q=0.9", "de"), ("*", "de"), ("en;q=abc", "de"), ("en;q=0", "de"),
    ("x" * 5000, "de"), (";;;,,,q=", "de"),
])
def test_accept_language_picks_the_best_language_councilflow_speaks(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_a_request_language_does_not_leak_into_the_process() -> None:
    message = "councilflow: aborted"
    assert i18n.gettext(message) == "councilflow: abgebrochen"
    with i18n.use_language("en"):
        assert i18n.gettext(message) == message
    assert i18n.gettext(message) == "councilflow: abgebrochen"


@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, "councilflow: Fehler: --set 'foo' muss die Form FELD=WERT haben"),
    (["--lang", "en"], {}, "councilflow: error: --set 'foo' must have the form FIELD=VALUE"),
    ([], {"COUNCILFLOW_LANG": "", "LANG": "en_GB.UTF-8"}, "councilflow: error: --set 'foo' must have the form"),
])
def test_the_cli_speaks_german_and_english_on_request(args: list[str], env: dict[str, str], expected: str,
                                                      tmp_path: Path) -> None:
    import os

    result = subprocess.run([sys.executable, "-m", "workflow.cli", *args, "fire", "SV-1", "x", "--actor", "a@b.example",
                             "--set", "foo", "--db", f"sqlite:///{tmp_path / 'x.db'}"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            cwd=tmp_path, check=False)
    assert result.returncode == 4
    assert result.stderr.startswith(expected), result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    ([], "unbekannter Zustand 'erledgt' (gemeint: 'erledigt'?)"),
    (["--lang", "en"], "unknown state 'erledgt' (did you mean 'erledigt'?)"),
])
def test_a_broken_definition_is_reported_in_german_and_in_english_on_request(args: list[str], expected: str,
                                                                             tmp_path: Path) -> None:
    import os
    import shutil

    path = tmp_path / "unknown_state.yaml"
    shutil.copy(ROOT / "tests" / "bad_definitions" / "unknown_state.yaml", path)
    env = {**{k: v for k, v in os.environ.items() if k not in ("COUNCILFLOW_LANG", "LANG", "LC_ALL", "LC_MESSAGES")},
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "workflow.cli", *args, "definitions", "validate", str(path)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert result.returncode == 3
    assert result.stderr == f"{path}:25:51: {expected}\n"


def test_the_diagram_is_drawn_in_the_language_asked_for() -> None:
    """The embedded diagram is cached per language: an English page never gets the German drawing."""
    from workflow.diagram import svg_inline
    from workflow.loader import load_definition_file

    definition = load_definition_file(ROOT / "definitions" / "kreisstrategie.yaml")
    german = svg_inline(definition)
    with i18n.use_language("en"):
        english = svg_inline(definition)
    assert "alle müssen zustimmen" in german and "all must agree" not in german
    assert "all must agree" in english and "alle müssen zustimmen" not in english
    assert 'aria-label="Workflow ' in english


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "COUNCILFLOW_LANG": "", "LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": "",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "workflow.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, check=False)


@pytest.mark.parametrize(("lang", "expected"), [
    ([], "councilflow: Fehler: keine Vorlage mit der Nummer 'SV-404'"),
    (["--lang", "en"], "councilflow: error: no paper with reference 'SV-404'"),
])
def test_an_engine_error_reads_german_and_english_on_request(lang: list[str], expected: str, tmp_path: Path) -> None:
    definitions = ROOT / "definitions"
    result = _cli([*lang, "fire", "SV-404", "einbringen", "--actor", "a@b.example", "--db",
                   f"sqlite:///{tmp_path / 'x.db'}", "--definitions", str(definitions)], tmp_path)
    assert result.returncode == 8
    assert result.stderr == expected + "\n"


@pytest.mark.parametrize(("lang", "expected"), [
    ([], ["Aufruf: councilflow", "Optionen:", "Befehle:", "Sitzungsvorlagen durch ihre Beratungsfolge führen",
          "Den Prüfpfad prüfen.", "Diese Hilfe zeigen und beenden."]),
    (["--lang", "en"], ["Usage: councilflow", "Options:", "Commands:", "take council papers (Sitzungsvorlagen)",
                        "Check the audit trail.", "Show this message"]),
])
def test_the_help_reads_german_and_english_on_request(lang: list[str], expected: list[str], tmp_path: Path) -> None:
    result = _cli([*lang, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout, text
    command = _cli([*lang, "fire", "--help"], tmp_path)
    assert ("Den Übergang TRIGGER an der Vorlage REFERENCE auslösen." if not lang
            else "Fire TRIGGER on the paper REFERENCE.") in command.stdout
    assert ("Wer den Übergang auslöst." if not lang else "Who fires the trigger.") in command.stdout


def test_the_tables_of_german_py_are_looked_up_when_shown() -> None:
    from workflow.german import MAIL_KIND, branch_status

    assert MAIL_KIND["remind"] == "Erinnerung" and branch_status("adopted", hearings=True) == "angehört"
    with i18n.use_language("en"):
        assert MAIL_KIND["remind"] == "reminder" and branch_status("not_needed") == "no longer needed"


BOUND_TEMPLATES = [
    '{{ _("Good day,") }} {{ gettext("Overdue") }}',
    '{{ _("This reminder also went to: %(others)s.", others=people | join(", ")) }}',
    '{% trans name=people[0] %}a deadline for <b>{{ name }}</b>{% endtrans %} {% trans %}50%{% endtrans %}',
    '{{ pgettext("clock", "%(when)s", when=people[1]) }} {{ _("Due:") | ljust(10) }}|',
    '{{ pgettext("mine", "in %(context)s") }} {{ pgettext("mine", "%(context)s", context=people[0]) }}',
    '{{ _("meeting %(when)s", when=pgettext("clock", "%(when)s", when=people[0])) }}',
    '<html lang="{{ current_language() }}">{{ _("50%% of %(n)s", n=3) }} {{ _("100%%") }}',
]


@pytest.mark.parametrize("source", BOUND_TEMPLATES)
@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("language", ["de", "en"])
def test_a_template_bound_to_a_language_says_what_the_catalog_says_when_rendered(
        source: str, autoescape: bool, language: str) -> None:
    """Translated once when compiled for one language: the same text as the catalog looked up at every rendering
    (escaped values in HTML, "%%" read as "%"), and no lookup left to do."""
    from jinja2 import Environment, nodes

    env = Environment(autoescape=autoescape)
    env.filters["ljust"] = lambda text, width: str(text).ljust(width)
    i18n.install_jinja(env)
    people = ["<a@x.example> & Co", "B 'b' \"c\""]
    with i18n.use_language(language):
        looked_up = env.from_string(source).render(people=people)
        tree = i18n.bind_jinja_language(env.parse(source), language)
        bound = env.from_string(tree).render(people=people)
    assert bound == looked_up
    assert ("Guten Tag," in bound) == (language == "de" and "Good day" in source)
    assert not [call for call in tree.find_all(nodes.Call) if isinstance(call.node, nodes.Name)
                and call.node.name in ("_", "gettext", "pgettext", "current_language")]


@pytest.mark.parametrize("source", [
    '{% for _ in [shout] %}{{ _("Good day,") }}{% endfor %}{{ _("Good day,") }}',
    '{% set gettext = shout %}{{ _("Good day,") }} {{ gettext("Overdue") }}',
    '{% with pgettext = shout %}{{ pgettext("Good day,") }}{% endwith %}',
    '{% macro _(text) %}[{{ text }}]{% endmacro %}{{ _("Good day,") }}',
    '{{ _(word) }} {{ _("Good day,", *rest) }} {{ _(*texts) }} {{ _("Good day,", **more) }}',
])
def test_a_template_that_binds_the_names_itself_or_asks_for_a_variable_text_is_left_to_rendering(source: str) -> None:
    """A process owner's template may use ``_`` as its own name (a loop variable, a macro) or ask for a text it
    computes: such calls are not translated when compiling, and render as before."""
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    i18n.install_jinja(env)
    with i18n.use_language("de"):
        context = {"word": "Overdue", "rest": [], "texts": ["Due:"], "more": {}, "shout": lambda text: text.upper()}
        looked_up = env.from_string(source).render(**context)
        assert env.from_string(i18n.bind_jinja_language(env.parse(source), "de")).render(**context) == looked_up
