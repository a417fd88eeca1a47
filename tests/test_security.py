"""Attacks a probe found, each reproduced: workflow names as paths, a trusted header from anyone, fields
set by any trigger, forms without a session, the Host header in OParl ids, references that look like
sub-resources, a login over plain SMTP, and a trail that did not cover the rules it ran on."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import Definition, DefinitionLibrary, Engine, FixedClock, InputError, NotFoundError
from workflow.config import Settings, load_settings
from workflow.web import create_app

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, SPEC, contact, to_councils
from .smtp import smtp_server

PROXY = ("127.0.0.1", 40000)
PROXIED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1/32",
                   oparl_base_url="https://ris.kreis-coesfeld.example/oparl/v1.1", auditors="pruefung@kreis.example")
EVIL = """workflow: evil
version: 1
title: Fremde Regeln
roles: {alle: [angreifer@evil.example]}
states:
  a: {label: A, initial: true}
  b: {label: B, final: true}
transitions:
  - {trigger: go, source: a, dest: b, roles: [alle]}
"""


def _client(engine: Engine, settings: Settings = PROXIED, client: tuple[str, int] = PROXY) -> TestClient:
    return TestClient(create_app(engine, settings), client=client)


def _cli(*args: str) -> int:
    from workflow.cli import run

    with contextlib.redirect_stdout(io.StringIO()):
        return run(list(args))


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil", "/ABS/evil", "evil/../evil", "Evil", "evil.yaml", "", "e" * 200])
def test_a_workflow_is_a_name_never_a_path(engine: Engine, tmp_path: Path, name: str) -> None:
    """A definition placed anywhere else on the machine cannot be used, and its content is not revealed."""
    (tmp_path / "evil.yaml").write_text(EVIL, encoding="utf-8")
    workflow = name.replace("/ABS", str(tmp_path))
    with _client(engine) as client:
        response = client.post("/api/papers", headers={"X-Remote-User": FEDER},
                               json={"workflow": workflow, "reference": "X-1", "fields": {"title": "x"}})
        assert response.status_code == 404 and "unbekannter Ablauf" in response.json()["detail"]
        assert "angreifer" not in response.text and "Fremde" not in response.text
        if workflow.strip("/"):
            assert client.get(f"/api/definitions/{workflow.lstrip('/')}",
                              headers={"X-Remote-User": FEDER}).status_code == 404
    with pytest.raises(NotFoundError, match="unbekannter Ablauf"):
        engine.create(workflow, "X-2", FEDER, {"title": "x"})


def test_the_cli_refuses_paths_as_workflows(db_url: str, defs_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text(EVIL, encoding="utf-8")
    base = ["--db", db_url, "--definitions", str(defs_dir)]
    assert _cli("documents", "create", f"{tmp_path}/evil", "X-1", "--actor", FEDER, *base) == 8
    assert _cli("definitions", "show", "../evil", *base) == 8


def test_the_trusted_header_is_off_by_default(engine: Engine) -> None:
    """With default settings nobody becomes the Landrat by sending a header."""
    with _client(engine, Settings(secret="s")) as client:
        response = client.get("/api/papers", headers={"X-Remote-User": LANDRAT})
    assert response.status_code == 401


def test_the_trusted_header_counts_only_from_the_proxy(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """From any other address (or sent twice) it is refused and logged; from the proxy it signs in."""
    with _client(engine, client=("10.1.2.3", 5000)) as client:
        response = client.get("/api/papers", headers={"X-Remote-User": "pruefung@kreis.example"})
    assert response.status_code == 401 and "vertrauenswürdigen Proxys" in response.json()["detail"]
    assert any("10.1.2.3" in r.getMessage() for r in caplog.records)
    with _client(engine) as client:
        assert client.get("/api/papers", headers={"X-Remote-User": LANDRAT}).status_code == 200
        twice = client.get("/api/papers", headers=[("X-Remote-User", "a@kreis.example"),
                                                   ("X-Remote-User", LANDRAT)])
        assert twice.status_code == 401 and "mehr als einmal" in twice.json()["detail"]
        assert client.get("/api/papers", headers={"X-Remote-User": "kein-mensch"}).status_code == 401


def test_identity_settings_are_checked_at_start() -> None:
    with pytest.raises(InputError, match="braucht trusted_proxies"):
        load_settings(env={"COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User"})
    with pytest.raises(InputError, match=r"'proxy\.local' ist keine IP-Adresse"):
        load_settings(env={"COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "proxy.local"})
    from workflow.web.identity import Identity

    assert "Kopfzeile X-Remote-User von 127.0.0.1/32" in Identity(object(), PROXIED).modes()  # type: ignore[arg-type]


def test_a_trigger_sets_only_its_fields(engine: Engine) -> None:
    """A town's contact recording its council's decision cannot publish a confidential paper or retitle it."""
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Vertraulich", "public": "false"})
    engine.fire("KS-1", "einbringen", FEDER)
    engine.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire("KS-1", "beschliessen", SITZ, values={"result": "beschlossen"})
    town = contact(COUNCILS[0])
    with _client(engine) as client:
        response = client.post("/api/papers/KS-1/fire", headers={"X-Remote-User": town}, json={
            "trigger": "beschliessen", "branch": COUNCILS[0],
            "values": {"result": "beschlossen", "public": "true", "title": "Öffentlich"}})
        assert response.status_code == 400
        assert "setzt das Feld 'public' nicht; er setzt: result" in response.json()["detail"]
        assert client.get("/oparl/v1.1/bodies/1/papers").json()["data"] == []
    status = engine.status("KS-1")
    assert status.fields["public"] is False and status.fields["title"] == "Vertraulich"
    assert all(b.status == "open" for b in status.branches)


def test_sets_declares_what_a_trigger_may_change(tmp_path: Path) -> None:
    """`sets` names document fields; unknown fields and the built-ins are refused at load."""
    from workflow import DefinitionError, load_definition
    from workflow.paper import decide_fire


    text = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8")
    ok = load_definition(text.replace("roles: [verfasser], requires: [meeting]}",
                                      "roles: [verfasser], requires: [meeting], sets: [public, references]}"),
                         "sachstandsbericht.yaml")
    [t] = [t for t in ok.transitions if t.trigger == "einbringen"]
    assert t.settable() == ("public", "references")
    with pytest.raises(DefinitionError) as caught:
        load_definition(text.replace("requires: [meeting]}", "requires: [meeting], sets: [publik, result]}"),
                        "sachstandsbericht.yaml")
    assert "unbekanntes Feld 'publik' (gemeint: 'public'?)" in str(caught.value)
    assert "'result' ist eingebaut" in str(caught.value)
    from datetime import UTC, datetime

    from workflow.machine import compile_machine
    from workflow.paper import Change as C
    from workflow.paper import fold

    at = datetime(2020, 8, 4, tzinfo=UTC)
    state = fold(ok, None, [C("create", "create", None, "entwurf", LANDRAT, at, payload={"fields": {"title": "x"}})])
    [change] = decide_fire(ok, compile_machine(ok), "SV-1", state, "einbringen", LANDRAT, None,
                           {"meeting": "2020-08-27T17:00", "public": "false"}, at)
    assert change.payload["fields"] == {"public": False}


def test_forms_need_a_fresh_token_of_this_session(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token from another browser session, an expired one, or garbage (non-ASCII too) is refused."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    with _client(engine) as client:
        page = client.get("/vorlagen/SV-1", headers={"X-Remote-User": LANDRAT})
        assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in \
            page.headers["content-security-policy"] and page.headers["referrer-policy"] == "same-origin"
        assert "httponly" in page.headers["set-cookie"].lower() and "samesite=strict" in \
            page.headers["set-cookie"].lower()
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"when": "2020-08-27T17:00", "csrf": token}
        with _client(engine) as other:  # another browser: no session cookie
            assert other.post("/vorlagen/SV-1/meeting", headers={"X-Remote-User": LANDRAT}, data=form,
                              follow_redirects=False).status_code == 403
        for bad in ("ä" * 10, "1.2", "", token + "0"):
            response = client.post("/vorlagen/SV-1/meeting", headers={"X-Remote-User": LANDRAT},
                                   data={**form, "csrf": bad}, follow_redirects=False)
            assert response.status_code in (403, 422), bad
        later = time.time() + 9 * 3600
        monkeypatch.setattr(time, "time", lambda: later)
        assert client.post("/vorlagen/SV-1/meeting", headers={"X-Remote-User": LANDRAT}, data=form,
                           follow_redirects=False).status_code == 403
        assert engine.status("SV-1").state == "entwurf"
        assert client.get("/api/papers", headers={"X-Remote-User": LANDRAT}).headers["x-frame-options"] == "DENY"


def test_oparl_ids_come_from_the_setting_not_the_host_header(engine: Engine) -> None:
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "öffentlich"})
    with _client(engine) as client:
        body = client.get("/oparl/v1.1/bodies/1/papers", headers={"Host": "evil.example"}).json()
    assert body["data"][0]["id"] == "https://ris.kreis-coesfeld.example/oparl/v1.1/papers/SV-1"
    assert all(link.startswith("https://ris.kreis-coesfeld.example/oparl/v1.1/bodies/1/papers")
               for link in body["links"].values())
    assert "evil" not in json.dumps(body)


def test_every_reference_has_its_status(engine: Engine) -> None:
    """References ending in /history or /deadlines are papers too; encoded slashes are unambiguous."""
    for ref in ("A", "A/history", "B/deadlines", "C/fire"):
        engine.create("sachstandsbericht", ref, LANDRAT, {"title": ref})
    who = {"X-Remote-User": LANDRAT}
    with _client(engine) as client:
        assert client.get("/api/papers/A%2Fhistory", headers=who).json()["reference"] == "A/history"
        assert isinstance(client.get("/api/papers/A/history", headers=who).json(), list)  # A's trail
        assert client.get("/api/papers/B/deadlines", headers=who).json()["reference"] == "B/deadlines"
        assert client.get("/api/papers/C/fire", headers=who).json()["reference"] == "C/fire"
        fired = client.post("/api/papers/C%2Ffire/fire", headers=who, json={"trigger": "zurueckziehen"})
        assert fired.status_code == 200 and fired.json()["state"] == "zurueckgezogen"


def test_a_login_never_goes_over_plain_smtp(engine: Engine) -> None:
    """A server without STARTTLS gets no password, unless the URL says smtp+insecure:// explicitly."""
    from email.message import EmailMessage

    from notifier.transports import SendError, transport_from_url

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = LANDRAT, SITZ, "x"
    with smtp_server() as (sink, port):
        plain = transport_from_url(f"smtp://fristen:geheim@127.0.0.1:{port}", default_folder=Path("."))
        with pytest.raises(SendError, match="bietet kein STARTTLS an") as caught:
            plain.send(message)
        assert caught.value.temporary is False
        insecure = transport_from_url(f"smtp+insecure://fristen:geheim@127.0.0.1:{port}", default_folder=Path("."))
        with pytest.raises(SendError) as tried:
            insecure.send(message)  # the test server offers no AUTH: the login was attempted
        assert "STARTTLS" not in str(tried.value)
        transport_from_url(f"smtp://127.0.0.1:{port}", default_folder=Path(".")).send(message)  # no login: fine
        assert len(sink.wait_for(1)) == 1


# --- integrity of the trail --------------------------------------------------------------------


def _sql(engine: Engine, statement: str) -> None:
    store = engine.store
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(statement)


@pytest.mark.parametrize("case", ["edited-roles", "swapped-version", "created", "modified"])
def test_verify_covers_the_rules_the_papers_ran_on(engine: Engine, db_url: str, clock: FixedClock,
                                                   case: str) -> None:
    """Edited definition texts, a version swapped in the paper row, edited created/modified instants."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    clock.advance(timedelta(hours=2))
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    assert engine.verify().ok
    statements = {
        "edited-roles": "UPDATE definitions SET source_text = replace(source_text, "
                        "'buero.landrat@kreis-coesfeld.example', 'angreifer@evil.example')",
        "swapped-version": "UPDATE papers SET workflow_version = 2",
        "created": "UPDATE papers SET created_at = updated_at",
        "modified": "UPDATE papers SET updated_at = created_at",
    }
    _sql(engine, statements[case])
    if case == "swapped-version":
        engine.store.remember_definition(*_version_2(engine))
    fresh = Engine(engine.store, DefinitionLibrary(engine.library.folder), engine.clock)  # another process
    report = fresh.verify()
    assert not report.ok
    expected = {"edited-roles": "der gespeicherte Text des Ablaufs 'sachstandsbericht' Version 1 wurde verändert",
                "swapped-version": "nennt den Ablauf 'sachstandsbericht' Version 2, ihre Einträge aber",
                "created": "Anlage- und Änderungszeitpunkt weichen",
                "modified": "Anlage- und Änderungszeitpunkt weichen"}
    assert expected[case] in (report.problem or "")
    if case == "edited-roles":
        from workflow import AuditIntegrityError

        with pytest.raises(AuditIntegrityError, match="wurde in der Datenbank geändert"):
            fresh.fire("SV-1", "zurueckziehen", "angreifer@evil.example")


def _version_2(engine: Engine) -> tuple[Definition, str, datetime]:
    from workflow import load_definition


    text = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8").replace("version: 1", "version: 2")
    return load_definition(text, "sachstandsbericht.yaml"), text, engine.clock.now()


@pytest.mark.postgres
def test_definition_texts_are_append_only_on_postgresql(engine: Engine, db_url: str) -> None:
    if engine.store.dialect != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    from sqlalchemy.exc import DBAPIError

    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    for statement in ("UPDATE definitions SET source_text = 'x'", "DELETE FROM definitions",
                      "TRUNCATE definitions CASCADE"):
        with pytest.raises(DBAPIError, match="append-only"), \
                engine.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql(statement)


def test_export_writes_public_papers_unless_asked(engine: Engine, db_url: str, defs_dir: Path,
                                                  tmp_path: Path) -> None:
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "öffentlich"})
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "vertraulich", "public": "false"})
    base = ["--db", db_url, "--definitions", str(defs_dir)]
    assert _cli("export", "oparl", "--out", str(tmp_path / "a"), *base) == 0
    assert _cli("export", "oparl", "--out", str(tmp_path / "b"), "--include-non-public", *base) == 0
    refs = [[p["reference"] for p in json.loads((tmp_path / d / "papers.json").read_text())] for d in "ab"]
    assert refs == [["SV-1"], ["SV-1", "KS-1"]]


def test_csv_cells_do_not_run_as_formulas(engine: Engine, db_url: str, defs_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A title or result starting with = + - @ is prefixed in CSV (OWASP), exact in JSON."""
    engine.create("sachstandsbericht", "=HYPERLINK(\"http://evil\")", LANDRAT, {"title": "+1"})
    from workflow.cli import run

    assert run(["audit", "export", "--format", "csv", "--db", db_url, "--definitions", str(defs_dir)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[2][2] == "'=HYPERLINK(\"http://evil\")"  # (row 1: the definition's first use)
    with _client(engine, Settings(**{**PROXIED.__dict__, "auditors": LANDRAT})) as client:
        web = list(csv.reader(io.StringIO(client.get("/api/audit?format=csv",
                                                     headers={"X-Remote-User": LANDRAT}).text)))
        assert web[2][2] == "'=HYPERLINK(\"http://evil\")"
        exact = client.get("/api/audit", headers={"X-Remote-User": LANDRAT}).json()
        assert exact[1]["reference"] == "=HYPERLINK(\"http://evil\")"


def test_a_malformed_head_is_bad_input(engine: Engine, db_url: str, defs_dir: Path) -> None:
    to_councils(engine)
    base = ["--db", db_url, "--definitions", str(defs_dir)]
    assert _cli("audit", "verify", "--head", "nicht-hex", *base) == 4
    assert _cli("audit", "verify", "--head", "0" * 63, *base) == 4
    assert _cli("audit", "verify", "--head", "a" * 64, *base) == 10  # well-formed, not in the chain
