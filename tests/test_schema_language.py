"""The JSON Schema of the definition language (``councilflow definitions schema``) and the loader agree.

Both come from ``workflow/language.py``: the loader takes the keys of every mapping from there, the schema is
generated from it. The schema checks the *shape* of a file – keys, value types, enums, names – so an editor
can show mistakes while typing. What needs the whole definition stays with the loader alone, and these tests
do not expect the schema to find it: references (an unknown state, body, role or field), the state graph
(unreachable states, dead ends, one initial state), a time zone or holiday calendar that does not exist, a
quorum larger than the number of bodies, a field default that is no valid date, a trigger defined twice.

Two leniencies of the loader are left out of the generated cases below: a reminder or ``escalate.after``
may carry ``before``/``after`` (the loader ignores them there, the schema refuses them), and ``null`` for an
optional key is accepted by the loader in a few places (e.g. ``branch: null`` with a ``dest``) where the
schema wants the documented type. Whole numbers written as ``7.0`` count as integers for JSON Schema but not
for the loader; the generated numbers avoid them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow import DefinitionError, load_definition
from workflow.cli import run
from workflow.language import MAPPINGS, definition_schema
from workflow.yamlsafe import load_located

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "definitions" / "councilflow.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(definition_schema())

#: A small definition that holds every mapping of the language once.
BASE: dict[str, Any] = {
    "workflow": "probe",
    "version": 1,
    "title": "Probe",
    "timezone": "Europe/Berlin",
    "calendar": {"holidays": "DE-NW", "closed": ["12-24", "2026-02-16"]},
    "roles": {"amt": ["amt@kreis.example"]},
    "bodies": {
        "rat": {"name": "Rat", "invitation_days": 7, "contact": "rat@kreis.example", "location": "Saal"},
        "ausschuss": {"name": "Ausschuss", "invitation_days": 5},
    },
    "fields": {"frist": {"type": "date"}, "titel": {"type": "text", "required": False, "default": "ohne"}},
    "states": {
        "entwurf": {"label": "Entwurf", "initial": True,
                    "signoff": {"roles": ["amt"], "order": "sequence"}},
        "beratung": {"consultation": {"body": "rat", "role": "Entscheidung"}},
        "raete": {"parallel": {"bodies": ["rat", "ausschuss"], "role": "Anhörung", "join": {"quorum": 1},
                               "on_success": "fertig", "on_failure": "fertig"}},
        "fertig": {"label": "Fertig", "final": True},
    },
    "transitions": [
        {"trigger": "einbringen", "source": "entwurf", "dest": "beratung", "roles": ["amt"],
         "requires": ["titel", "signoffs"], "sets": ["frist"], "internal": False,
         "not_before": {"after": "entered", "days": 1}},
        {"trigger": "weiter", "source": ["beratung"], "dest": "raete", "roles": ["amt", "body"]},
        {"trigger": "annehmen", "source": "raete", "branch": "adopted", "roles": ["body"]},
        {"trigger": "ablehnen", "source": "raete", "branch": "rejected", "roles": ["body"]},
    ],
    "deadlines": [
        {"name": "vorlage", "label": "Vorlage", "description": "Bitte freigeben", "states": ["beratung"],
         "due": {"before": "meeting", "working_days": 3}, "remind": [{"days": 1}], "notify": ["amt"],
         "escalate": {"after": {"days": 1}, "notify": ["amt"]}, "done_by": ["weiter"]},
    ],
    "follow_up": [
        {"name": "bericht", "when": "fertig", "workflow": "probe", "every": {"months": 6}, "count": 2,
         "reference": "{reference}-B{n}", "fields": {"titel": "Bericht {n}: {titel}"}, "actor": "amt",
         "attach": [{"report": "decisions", "body": "rat", "status": "offen", "warn_days": 10, "format": "pdf"}]},
    ],
}

#: Where each mapping of language.py occurs in BASE.
WHERE: dict[str, tuple[str | int, ...]] = {
    "definition": (),
    "calendar": ("calendar",),
    "roles": ("roles",),
    "body": ("bodies", "rat"),
    "field": ("fields", "titel"),
    "state": ("states", "entwurf"),
    "consultation": ("states", "beratung", "consultation"),
    "parallel": ("states", "raete", "parallel"),
    "join": ("states", "raete", "parallel", "join"),
    "signoff": ("states", "entwurf", "signoff"),
    "transition": ("transitions", 0),
    "not_before": ("transitions", 0, "not_before"),
    "deadline": ("deadlines", 0),
    "due": ("deadlines", 0, "due"),
    "offset": ("deadlines", 0, "remind", 0),
    "escalate": ("deadlines", 0, "escalate"),
    "follow_up": ("follow_up", 0),
    "attach": ("follow_up", 0, "attach", 0),
}
MAPPING = {m.id: m for m in MAPPINGS}
OFFSETS = {"offset", "due", "not_before"}


def _verdicts(doc: Any) -> tuple[list[str], list[str]]:
    """(loader problems, schema errors) for ``doc`` written as YAML; the schema sees what the loader parses."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        load_definition(text, "probe.yaml")
        loader: list[str] = []
    except DefinitionError as exc:
        loader = [str(p) for p in exc.problems]
    parsed = load_located(text, "probe.yaml").value
    return loader, [e.message for e in VALIDATOR.iter_errors(parsed)]


def _at(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _positions(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every value's place in ``doc`` (keys of mappings, entries of lists), the root left out."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield (*path, k)
        yield from _positions(v, (*path, k))


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def test_base_is_valid_for_both_and_holds_every_mapping() -> None:
    assert _verdicts(BASE) == ([], [])
    assert set(WHERE) == set(MAPPING)


def test_the_shipped_schema_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["definitions", "schema"]) == 0
    out = capsys.readouterr().out
    assert out == SHIPPED.read_text(encoding="utf-8"), "regenerate: councilflow definitions schema > " \
                                                       "definitions/councilflow.schema.json"
    jsonschema.Draft202012Validator.check_schema(definition_schema())
    for name in ("kreisstrategie", "sachstandsbericht", "haushaltssatzung", "karlsruhe"):
        first = (ROOT / "definitions" / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=councilflow.schema.json"


def test_every_definition_the_loader_accepts_validates() -> None:
    files = sorted((ROOT / "definitions").glob("*.yaml")) + sorted((ROOT / "tests").rglob("*.yaml"))
    accepted = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        try:
            load_definition(text, str(f))
        except DefinitionError:
            continue
        accepted.append(f.relative_to(ROOT).as_posix())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(load_located(text, "").value)]
        assert errors == [], f.relative_to(ROOT)
    # the 5 shipped, tests/good_definitions (2), tests/data/process-owner (2), workflow_id_mismatch (the file
    # name is not checked here)
    assert len(accepted) == 10, accepted


@pytest.mark.parametrize("mapping", sorted(WHERE))
def test_an_unknown_key_is_rejected_by_both(mapping: str) -> None:
    doc = copy.deepcopy(BASE)
    target = _at(doc, WHERE[mapping])
    # in a mapping of names (roles): an invalid name and the built-in role
    bad = ["Amt-Leitung", "body"] if MAPPING[mapping].named is not None else ["unbekannt"]
    for key in bad:
        target[key] = ["x@kreis.example"]
        loader, schema = _verdicts(doc)
        assert loader and schema, (mapping, key, loader, schema)
        del target[key]


@pytest.mark.parametrize(("path", "value"), [
    (("workflow",), "Probe-Ablauf"),
    (("version",), "eins"),
    (("version",), 0),
    (("calendar", "closed"), "12-24"),
    (("roles", "amt"), "amt@kreis.example"),
    (("bodies", "rat", "invitation_days"), 7.5),
    (("bodies", "rat", "meeting_hours"), "zwei"),
    (("fields", "frist", "type"), "string"),
    (("fields", "titel", "default"), 3),
    (("states", "entwurf", "initial"), "yes"),
    (("states", "raete", "parallel", "join"), "alle"),
    (("states", "raete", "parallel", "bodies"), []),
    (("transitions", 0, "roles"), "amt"),
    (("transitions", 0, "trigger"), "create"),
    (("transitions", 2, "branch"), "adoptd"),
    (("transitions", 0, "not_before", "days"), "eins"),
    (("deadlines", 0, "due", "working_days"), -1),
    (("deadlines", 0, "remind"), {"days": 1}),
    (("deadlines", 0, "escalate", "notify"), "amt"),
])
def test_a_wrong_value_is_rejected_by_both(path: tuple[str | int, ...], value: Any) -> None:
    doc = copy.deepcopy(BASE)
    _at(doc, path[:-1])[path[-1]] = value
    loader, schema = _verdicts(doc)
    assert loader and schema, (loader, schema)


FIXED = sorted(m for m in WHERE if MAPPING[m].named is None)
WRONG = [12, 7.5, True, "Text mit Leerzeichen", [1], {"x": 1}]


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[str, tuple[str | int, ...], Any, Any]:
    """('key', place of a mapping, unknown key, value) or ('value', place, None, value of another kind)."""
    if draw(st.booleans()):
        mapping = draw(st.sampled_from(FIXED))
        known = set(MAPPING[mapping].required + MAPPING[mapping].optional)
        if mapping in OFFSETS:
            known |= {"before", "after"}
        key = draw(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(lambda k: k not in known))
        return "key", WHERE[mapping], key, draw(st.sampled_from(WRONG))
    place = draw(st.sampled_from(list(_positions(BASE))))
    current = _kind(_at(BASE, place))
    return "value", place, None, draw(st.sampled_from([w for w in WRONG if _kind(w) != current]))


@settings(max_examples=80, deadline=None)
@given(st.lists(_mutation(), min_size=1, max_size=3))
def test_loader_and_schema_agree_on_mutated_definitions(mutations: list[tuple[str, Any, Any, Any]]) -> None:
    doc = copy.deepcopy(BASE)
    applied = 0
    for kind, place, key, value in mutations:
        try:
            target = _at(doc, place if kind == "key" else place[:-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the surrounding mapping
        if kind == "key":
            if not isinstance(target, dict):
                continue
            target[key] = copy.deepcopy(value)
        else:
            if not isinstance(target, dict | list):
                continue
            target[place[-1]] = copy.deepcopy(value)
        applied += 1
    loader, schema = _verdicts(doc)
    assert applied
    assert loader and schema, (mutations, loader, schema)
