"""Bad-input fuzzing (hypothesis): the definition loader, the CLI and the OParl importer never show a
traceback; every failure is one clear error."""

from __future__ import annotations

import contextlib
import io
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow import DefinitionError, load_definition
from workflow.cli import run
from workflow.oparl_read import read_oparl

from .conftest import SPEC

SPEC_TEXT = (SPEC / "kreisstrategie.yaml").read_text(encoding="utf-8")
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.data())
def test_mutated_definitions_fail_cleanly(data: st.DataObject) -> None:
    """A spec file with random edits loads or fails with located problems, nothing else."""
    text = SPEC_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 12))
        insert = data.draw(st.text(alphabet=string.printable + "äöü&*!|>{}[]", max_size=8))
        text = text[:at] + insert + text[at + cut:]
    try:
        load_definition(text, "fuzz.yaml")
    except DefinitionError as exc:
        assert exc.problems and all(str(p).startswith("fuzz.yaml:") and "\n" not in str(p) for p in exc.problems)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12)


@FUZZ
@given(yaml_values)
def test_random_documents_fail_cleanly(value: Any) -> None:
    """Any JSON-shaped document (valid YAML) is refused with located problems."""
    with pytest.raises(DefinitionError) as caught:
        load_definition(json.dumps(value, ensure_ascii=False), "doc.yaml")
    assert all(str(p).startswith("doc.yaml:") for p in caught.value.problems)


words = st.text(alphabet=string.ascii_letters + string.digits + "-_=:/.,@ äöß\t", max_size=20)
commands = st.sampled_from([
    ["status"], ["history"], ["fire"], ["meeting"], ["documents", "create"], ["definitions", "validate"],
    ["definitions", "show"], ["audit", "query", "--since"], ["reminders", "list", "--due-before"], ["deadlines"],
    ["audit", "timeline"], ["tokens", "revoke"]])
options = st.lists(st.sampled_from(["--actor", "--set", "--branch", "--json", "--as-of", "--now", "--format"]),
                   max_size=3)


@FUZZ
@given(commands, st.lists(words, max_size=4), options, st.lists(words, max_size=3))
def test_cli_arguments_never_traceback(tmp_path: Path, defs_dir: Path, command: list[str], args: list[str],
                                       opts: list[str], values: list[str]) -> None:
    """Random arguments give a documented exit code and at most one error line, never a traceback."""
    argv = [*command, *args]
    for opt, value in zip(opts, values, strict=False):
        argv += [opt, value]
    argv += ["--db", f"sqlite:///{tmp_path / 'fuzz.db'}", "--definitions", str(defs_dir)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run(argv)
    assert code in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    assert "Traceback" not in err.getvalue()
    if code not in (0, 2, 3):
        assert err.getvalue().count("\n") == 1, err.getvalue()


oparl_objects = st.dictionaries(
    st.sampled_from(["id", "type", "reference", "name", "created", "consultation", "organization", "meeting",
                     "agendaItem", "start", "result", "role", "data", "paperType"]),
    yaml_values | st.sampled_from(["https://schema.oparl.org/1.1/Paper", "https://schema.oparl.org/1.1/Meeting",
                                   "https://schema.oparl.org/1.1/Organization", "2020-08-04T09:00:00+02:00",
                                   "2020-08-04T09:00:00"]),
    max_size=8)


@FUZZ
@given(st.lists(oparl_objects, max_size=5) | oparl_objects)
def test_oparl_import_never_crashes(tmp_path: Path, defs_dir: Path, content: Any) -> None:
    """Hostile OParl files are reported object by object; the import finishes with a summary."""
    folder = tmp_path / "fuzz-oparl"
    folder.mkdir(exist_ok=True)
    (folder / "objects.json").write_text(json.dumps(content), encoding="utf-8")
    read_oparl([folder])  # never raises
    mapping = tmp_path / "map.yaml"
    mapping.write_text("workflow: sachstandsbericht\norganizations: {}\nresults:\n"
                       "  - {match: '.', trigger: kenntnis_nehmen}\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["import", "oparl", str(folder), "--mapping", str(mapping), "--json", "--db",
                    f"sqlite:///{tmp_path / 'fuzz.db'}", "--definitions", str(defs_dir)])
    assert code == 0 and "Traceback" not in err.getvalue()
    report = json.loads(out.getvalue())
    assert set(report) == {"imported", "updated", "unchanged", "skipped", "unreadable"}
