"""Every input gets a clear answer: a corpus of edge inputs to the CLI, the web and the OParl reader, each
answered with a documented exit code or a 4xx problem, never a traceback, an internal error or a 500."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow import Engine, InputError
from workflow.cli import run
from workflow.config import Settings
from workflow.oparl_read import read_oparl
from workflow.web import create_app

from .conftest import LANDRAT, SITZ

EDGE_INSTANTS = ["0001-01-01T00:00", "9999-12-31T23:59-10:00", "0001-01-01T00:00+14:00", "2020-02-30T10:00",
                 "99999-01-01", "1899-12-31T23:00", "2200-01-01T00:00", "ja", " ", "\x00"]
HIDDEN = ["PUB-1\u200b", "PUB-1\u202e", "PUB\u00a01", "PUB-1\x85", "PUB-1\n", "\ud800", "a" * 121]


def _cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, err.getvalue()


@pytest.fixture
def base(db_url: str, defs_dir: Path) -> list[str]:
    args = ["--db", db_url, "--definitions", str(defs_dir)]
    assert _cli("documents", "create", "sachstandsbericht", "SV-1", "--actor", LANDRAT, "--set", "title=x",
                "--now", "2020-08-04T09:00", *args)[0] == 0
    return args


@pytest.mark.parametrize("instant", EDGE_INSTANTS)
def test_instants_at_the_edges_are_bad_input(base: list[str], instant: str) -> None:
    """In --now, --as-of, --set meeting, meeting, --due-before, --since/--until: exit 4 with the option."""
    commands = [
        ["status", "SV-1", "--now", instant], ["status", "SV-1", "--as-of", instant],
        ["fire", "SV-1", "einbringen", "--actor", LANDRAT, "--set", f"meeting={instant}"],
        ["meeting", "SV-1", instant, "--actor", LANDRAT], ["reminders", "list", "--due-before", instant],
        ["audit", "query", "--since", instant], ["audit", "query", "--until", instant],
    ]
    for command in commands:
        code, err = _cli(*command, *base)
        assert code in (4, 5), (command, code, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("value", HIDDEN)
def test_references_with_hidden_characters_are_refused(base: list[str], value: str) -> None:
    """`PUB-1` and `PUB-1<zero-width space>` cannot both exist; nothing is written."""
    code, err = _cli("documents", "create", "sachstandsbericht", value, "--actor", LANDRAT, "--set", "title=x", *base)
    assert code == 4 and "Vorlagennummer" in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [
    ["tokens", "revoke", "99999999999999999999999"], ["tokens", "revoke", "-1"],
    ["documents", "create", "sachstandsbericht", "SV-2", "--actor", LANDRAT, "--set", "title=a\nb"],
    ["documents", "create", "sachstandsbericht", "SV-2", "--actor", LANDRAT, "--set", "title=" + "x" * 10_001],
    ["documents", "create", "sachstandsbericht", "SV-2", "--actor", LANDRAT,
     "--set", "title==?UTF-8?Q?=0A?=Bcc: evil@example.org"],
    ["documents", "create", "sachstandsbericht", "SV-2", "--actor", "a\u200b@kreis.example", "--set", "title=x"],
    ["documents", "create", "sachstandsbericht", "SV-2", "--actor", "x" * 400 + "@kreis.example", "--set", "title=x"],
    ["documents", "create", "sachstandsbericht", "\ud800", "--actor", LANDRAT, "--set", "title=x"],
    ["fire", "SV-1", "einbringen", "--actor", LANDRAT, "--set", "meeting=2020-08-27T17:00", "--set", "result=\x85"],
    ["audit", "verify", "--head", "g" * 64], ["status", "SV-1", "--as-of", "2020-08-04T09:00+99:00"],
])
def test_bad_cli_input_is_one_line(base: list[str], args: list[str]) -> None:
    code, err = _cli(*args, *base)
    assert code in (2, 4, 5, 8), (code, err)
    assert "Traceback" not in err and "internal error" not in err
    assert _cli("status", "SV-2", *base)[0] == 8  # nothing half-written


def test_values_that_cannot_be_mailed_are_refused_at_input(engine: Engine) -> None:
    """A title hiding a line break in an encoded word would fail every reminder of its paper later."""
    with pytest.raises(InputError, match="verbirgt einen Zeilenumbruch"):
        engine.create("sachstandsbericht", "SV-X", LANDRAT, {"title": "=?UTF-8?Q?=0A?=Bcc: evil@example.org"})
    with pytest.raises(InputError, match=r"höchstens 10\.000"):
        engine.create("sachstandsbericht", "SV-X", LANDRAT, {"title": "x" * 20_000})


def test_references_are_nfc(engine: Engine) -> None:
    """A reference typed with a combining accent is the same paper as the composed one."""
    engine.create("sachstandsbericht", "Vorlage-Gru\u0308n", LANDRAT, {"title": "x"})
    assert engine.load("Vorlage-Grün").reference == "Vorlage-Grün"


# --- the web --------------------------------------------------------------------------------------

PROXIED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1", auditors=SITZ)
BODIES: list[tuple[str, str, Any]] = [
    ("POST", "/api/papers", {"workflow": "sachstandsbericht", "reference": "\ud800", "fields": {"title": "x"}}),
    ("POST", "/api/papers", {"workflow": "sachstandsbericht", "reference": "A", "fields": {"title": None}}),
    ("POST", "/api/papers", {"workflow": "sachstandsbericht", "reference": "A", "fields": [1, 2]}),
    ("POST", "/api/papers", {"workflow": ["x"], "reference": "A"}),
    ("POST", "/api/papers", {"workflow": "sachstandsbericht", "reference": "A",
                             "fields": {"title": "x" * 20_000}}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": "einbringen", "values": [1, 2]}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": "einbringen", "values": "x"}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": "einbringen", "values": {"meeting": "0001-01-01T00:00"}}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": "einbringen", "version": "7"}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": "einbringen", "branch": ["a"]}),
    ("POST", "/api/papers/SV-1/fire", {"trigger": 5}),
    ("POST", "/api/papers/SV-1/meeting", {"when": "9999-12-31T23:59-10:00"}),
    ("POST", "/api/papers/SV-1/meeting", {"when": 1}),
    ("GET", "/api/papers/SV-1?as_of=0001-01-01T00:00", None),
    ("GET", "/api/reminders?due_before=9999-12-31T23:59-10:00", None),
    ("GET", "/api/audit?since=0001-01-01T00:00", None),
    ("GET", "/api/audit/verify?head=xyz", None),
    ("GET", "/oparl/v1.1/bodies/1/papers?modified_since=0001-01-01T00:00%2B14:00", None),
    ("GET", "/oparl/v1.1/bodies/1/papers?page=99999999999999999999999", None),
    ("GET", "/vorlagen?overdue=vielleicht", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BODIES, ids=[f"{m} {p}" for m, p, _ in BODIES])
def test_malformed_requests_are_4xx(engine: Engine, method: str, path: str, body: Any) -> None:
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        who = SITZ if "/audit" in path else LANDRAT
        response = client.request(method, path, headers={"X-Remote-User": who},
                                  content=None if body is None else json.dumps(body, ensure_ascii=True))
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert [r.trigger for r in engine.history("SV-1")] == ["create"]


def test_a_huge_body_is_refused(engine: Engine) -> None:
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        response = client.post("/api/papers", headers={"X-Remote-User": LANDRAT, "content-type": "application/json"},
                               content=b'{"workflow": "' + b"x" * 3_000_000 + b'"}')
    assert response.status_code == 413


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON = st.recursive(SCALARS,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/papers", "/api/papers/SV-1/fire", "/api/papers/SV-1/meeting"]),
       body=st.fixed_dictionaries({}, optional={"workflow": JSON, "reference": JSON, "fields": JSON,
                                                "trigger": JSON, "values": JSON, "branch": JSON, "version": JSON,
                                                "when": JSON}))
def test_random_json_bodies_never_500(engine: Engine, path: str, body: dict[str, Any]) -> None:
    if not engine.store.references():
        engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        response = client.post(path, headers={"X-Remote-User": LANDRAT}, json=body)
    assert response.status_code < 500, response.text[:300]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["workflow", "state", "body", "overdue", "as_of", "due_before",
                                              "since", "until", "format", "page", "modified_since"]),
                             st.text(max_size=30), max_size=4),
       path=st.sampled_from(["/api/papers", "/api/papers/SV-1", "/api/reminders", "/api/audit", "/vorlagen",
                             "/oparl/v1.1/bodies/1/papers", "/pruefpfad"]))
def test_random_query_strings_never_500(engine: Engine, query: dict[str, str], path: str) -> None:
    if not engine.store.references():
        engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        response = client.get(path, params=query, headers={"X-Remote-User": SITZ})
    assert response.status_code < 500, response.text[:300]


# --- the OParl reader and importer --------------------------------------------------------------


@pytest.mark.parametrize("content", [
    "[" * 100_000 + "]" * 100_000,
    '[{"id": "p", "type": "https://schema.oparl.org/1.1/Paper", "reference": ' + "9" * 5000 + "}]",
])
def test_hostile_oparl_files_are_one_problem_each(tmp_path: Path, content: str) -> None:
    (tmp_path / "papers.json").write_text(content, encoding="utf-8")
    (tmp_path / "good.json").write_text(json.dumps([{"id": "o", "type": "https://schema.oparl.org/1.1/Organization",
                                                     "name": "Rat"}]), encoding="utf-8")
    data = read_oparl([tmp_path])
    assert len(data.problems) == 1 and "papers.json" in str(data.problems[0]) and "o" in data.organizations


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:00-10:00"])
def test_oparl_instants_at_the_edges_are_reported(tmp_path: Path, start: str) -> None:
    (tmp_path / "meetings.json").write_text(json.dumps([{"id": "m", "type": "https://schema.oparl.org/1.1/Meeting",
                                                         "start": start}]), encoding="utf-8")
    data = read_oparl([tmp_path])
    assert len(data.problems) == 1 and "außerhalb der Jahre" in str(data.problems[0])


def test_hostile_papers_are_skipped_with_their_reason(db_url: str, defs_dir: Path, tmp_path: Path) -> None:
    """References over the column size or with NUL, and agenda results that are not text, are reported per
    paper (on SQLite and PostgreSQL); the other papers import."""
    base = "https://ris.example/oparl"
    org = {"id": f"{base}/organizations/a", "type": "https://schema.oparl.org/1.1/Organization",
           "name": "Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung"}

    def paper(n: int, reference: str, result: Any = "zur Kenntnis genommen") -> tuple[dict[str, Any], dict[str, Any]]:
        meeting = {"id": f"{base}/meetings/{n}", "type": "https://schema.oparl.org/1.1/Meeting",
                   "start": "2020-08-27T17:00:00+02:00", "organization": [org["id"]],
                   "agendaItem": [{"id": f"{base}/items/{n}", "result": result}]}
        return ({"id": f"{base}/papers/{n}", "type": "https://schema.oparl.org/1.1/Paper", "reference": reference,
                 "name": f"Vorlage {n}", "created": "2020-08-04T09:00:00+02:00",
                 "consultation": [{"organization": [org["id"]], "meeting": meeting["id"],
                                   "agendaItem": f"{base}/items/{n}", "role": "Kenntnisnahme"}]}, meeting)

    made = [paper(1, "SV-OK"), paper(2, "X" * 200), paper(3, "SV\x00NUL"), paper(4, "SV-LIST", ["a", "b"]),
            paper(5, "SV-NUM", 42)]
    (tmp_path / "papers.json").write_text(json.dumps([p for p, _ in made]), encoding="utf-8")
    (tmp_path / "meetings.json").write_text(json.dumps([m for _, m in made]), encoding="utf-8")
    (tmp_path / "organizations.json").write_text(json.dumps([org]), encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("workflow: sachstandsbericht\norganizations:\n  \"" + org["name"] + "\": afwk\nresults:\n"
                       "  - {match: kenntnis, trigger: kenntnis_nehmen}\n", encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run(["import", "oparl", str(tmp_path), "--mapping", str(mapping), "--json", "--db", db_url,
                    "--definitions", str(defs_dir), "--now", "2020-09-01T12:00"])
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["imported"] == ["SV-OK"]
    reasons = {s["reference"][:10]: s["reason"] for s in report["skipped"]}
    assert "1 bis 120 Zeichen" in reasons["X" * 10]
    assert "unsichtbares Zeichen oder Steuerzeichen" in reasons["SV\x00NUL"]
    assert "muss Text sein, nicht list" in reasons["SV-LIST"] and "nicht int" in reasons["SV-NUM"]


def test_templates_are_bounded(tmp_path: Path) -> None:
    """Two nested range(100000) loops in a process owner's template are refused at once, with the place."""
    from notifier.render import Renderer
    from workflow import DefinitionError

    (tmp_path / "reminder.subject.txt").write_text(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"reminder\.subject\.txt:1:1: Mailvorlage: SecurityError: die "
                                              r"Mailvorlage braucht mehr als 100\.000 Schleifenschritte"):
        Renderer(override=tmp_path).render("remind", {})
    (tmp_path / "reminder.subject.txt").write_text("{{ 'x' * 100000000 }}", encoding="utf-8")
    with pytest.raises(DefinitionError, match="baut einen Wert aus mehr als"):
        Renderer(override=tmp_path).render("remind", {})


@pytest.mark.parametrize(("text", "message"), [
    ("workflow: x\nversion: " + "9" * 5000 + "\n", "x.yaml:2:10: die Zahl 99999999999999999999… hat 5000 Ziffern"),
    ("workflow: x\ntitle: " + "[" * 1000 + "]" * 1000 + "\n", "die Datei ist mehr als 32 Ebenen tief verschachtelt"),
    ("workflow: x\ntitle: '" + "x" * 1_000_001 + "'\n",
     "x.yaml:1:1: die Datei hat 1.000.023 Zeichen; erlaubt sind höchstens 1.000.000"),
    ("workflow: x\nversion: 1\ntitle: t\ntimezone: Europe/Berlin\nstates: {}\ntransitions: []\n",
     "x.yaml:5:1: states ist leer"),
])
def test_hostile_definitions_are_located_problems(text: str, message: str) -> None:
    from workflow import DefinitionError, load_definition

    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "x.yaml")
    assert message in str(caught.value)
