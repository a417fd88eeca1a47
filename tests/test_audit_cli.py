"""Auditors' commands: query with filters, export, head, timeline, verify --head against a cut tail."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from workflow import Engine
from workflow.cli import run
from workflow.config import Settings
from workflow.paper import fold
from workflow.web import create_app

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, contact, to_councils

Cli = pytest.CaptureFixture[str]


@pytest.fixture
def trail(engine: Engine, db_url: str, defs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Two papers with a history: SV-1 through its committee, KS-1 into the councils, two decided."""
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(defs_dir))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    from datetime import timedelta

    engine.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    to_councils(engine)
    for body in COUNCILS[:2]:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"})
    return engine


def _out(capsys: Cli, *args: str) -> str:
    capsys.readouterr()
    assert run(list(args)) == 0
    return capsys.readouterr().out


def test_query_filters(trail: Engine, capsys: Cli) -> None:
    """Each filter narrows the stream; the JSON output is one array of entries in order."""
    every = json.loads(_out(capsys, "audit", "query", "--format", "json"))
    assert [e["seq"] for e in every] == list(range(1, len(every) + 1))
    by_ref = json.loads(_out(capsys, "audit", "query", "--reference", "SV-1", "--format", "json"))
    # the Ladungsfrist reminder fell due while nobody sent mail: skipped when the decision ended its deadline
    assert [e["trigger"] for e in by_ref] == ["create", "einbringen", "kenntnis_nehmen", "remind"]
    assert by_ref[-1]["kind"] == "mail" and by_ref[-1]["payload"]["outcome"] == "skipped"
    by_actor = json.loads(_out(capsys, "audit", "query", "--actor", SITZ.upper(), "--format", "json"))
    assert {e["actor"] for e in by_actor} == {SITZ} and len(by_actor) == 4
    by_body = json.loads(_out(capsys, "audit", "query", "--body", "rat_ascheberg", "--format", "json"))
    assert [(e["trigger"], e["branch"]) for e in by_body] == [("beschliessen", "rat_ascheberg")]
    committee = json.loads(_out(capsys, "audit", "query", "--body", "afwk", "--format", "json"))
    assert [e["trigger"] for e in committee] == ["einbringen", "kenntnis_nehmen", "remind"]
    by_trigger = json.loads(_out(capsys, "audit", "query", "--trigger", "beraten", "--format", "json"))
    assert [e["from"] for e in by_trigger] == ["bmk", "kreisausschuss"]
    late = json.loads(_out(capsys, "audit", "query", "--since", "2020-09-01", "--format", "json"))
    assert late and all(e["at"] >= "2020-09-01" for e in late)
    early = json.loads(_out(capsys, "audit", "query", "--until", "2020-08-05", "--reference", "SV-1",
                            "--format", "json"))
    assert [e["trigger"] for e in early] == ["create", "einbringen"]
    assert json.loads(_out(capsys, "audit", "query", "--actor", "nobody@example.org", "--format", "json")) == []


def test_export_csv_is_the_whole_trail(trail: Engine, capsys: Cli) -> None:
    """The CSV export has a header and one row per entry, with the hashes an auditor can recompute."""
    rows = list(csv.DictReader(io.StringIO(_out(capsys, "audit", "export", "--format", "csv"))))
    assert len(rows) == trail.verify().entries
    assert rows[0]["trigger"] == "definition" and rows[0]["reference"] == ""  # the first use of sachstandsbericht
    assert rows[1]["trigger"] == "create" and rows[-1]["hash"] == trail.verify().head_hash
    assert json.loads(rows[2]["payload"]) == {"meeting": "2020-08-27T15:00:00+00:00"}
    table = _out(capsys, "audit", "query", "--reference", "SV-1")
    assert table.count("\n") == 4 and "kenntnis_nehmen" in table and "Erinnerung nicht gesendet an" in table


def test_cut_tail_is_found_with_the_kept_head(trail: Engine, capsys: Cli) -> None:
    """Entries cut off the end, with the paper row patched to match, are found only with --head."""
    seq, head = _out(capsys, "audit", "head").split()
    assert _out(capsys, "audit", "verify", "--head", head).startswith(f"ok: {seq} Einträge")
    # A thorough forger: cut the last entry, then make the paper row agree with the shortened trail.
    kept = trail.history("KS-1")[:-1]
    definition = trail.definition_of(trail.store.load("KS-1"))
    state = fold(definition, None, (r.to_change() for r in kept))
    assert state is not None
    columns = trail.store._state_params(state)
    with trail.store.engine.begin() as conn:
        if trail.store.dialect == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"DELETE FROM audit WHERE seq = {int(seq)}"))
        conn.execute(text("UPDATE papers SET last_seq = :s, last_hash = :h, state = :state, entered_at = :entered_at, "
                          "meeting = :meeting, branches = :branches, fields = :fields, result = :result "
                          "WHERE reference = 'KS-1'"), {"s": kept[-1].seq, "h": kept[-1].hash, **columns})
    assert trail.store.head()[0] == int(seq) - 1
    assert trail.verify().ok  # without the kept head the cut is invisible
    capsys.readouterr()
    assert run(["audit", "verify", "--head", head]) == 10
    assert f"der aufbewahrte Kopf-Hash {head} ist nicht in der Kette" in capsys.readouterr().err


def test_timeline_lists_every_period(trail: Engine, capsys: Cli) -> None:
    """The timeline shows where the paper stood from each entry until the next."""
    periods = json.loads(_out(capsys, "audit", "timeline", "SV-1", "--json"))
    assert [p["state"] for p in periods] == ["entwurf", "ausschuss", "zur_kenntnis_genommen"]
    assert periods[0]["until"] == periods[1]["since"] and periods[-1]["until"] is None
    assert periods[1]["meeting"] == "2020-08-27T15:00:00+00:00"
    human = _out(capsys, "audit", "timeline", "KS-1")
    assert "Beschlussfassung in den Räten der Städte und Gemeinden, 9 von 11 Gremien offen" in human
    assert FEDER in human


AUDITOR = "pruefung@kreis-coesfeld.example"
AUDITED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1", auditors=AUDITOR)


def test_csv_for_german_excel(engine: Engine, capfd: pytest.CaptureFixture[str], db_url: str, defs_dir: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`--format csv-excel`: semicolons, UTF-8 with BOM, CRLF, local time, German column names; plain csv
    stays for machines. The web gives the same bytes."""
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(defs_dir))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Übersicht; mit Semikolon"})
    capfd.readouterr()
    assert run(["audit", "export", "--format", "csv-excel", "--db", db_url]) == 0
    raw = capfd.readouterr().out.encode("utf-8")
    assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    header, _definition, first = raw.decode("utf-8-sig").split("\r\n")[:3]  # the definition's first use, then create
    assert header.startswith("Nr.;Zeitpunkt;Vorlage;Ablauf;") and header.endswith(
        ";Vorheriger Hash;Hash;Schritt;Von (Status);Nach (Status);Gremium (Name)")
    cells = next(csv.reader([first], delimiter=";"))
    assert cells[1] == "04.08.2020 09:00" and cells[2] == "SV-1"  # 07:00 UTC in Berlin (summer time)
    assert cells[6] == "create" and cells[15:] == ["Angelegt", "", "Entwurf", ""]  # labels for people at the end
    assert "Übersicht; mit Semikolon" in cells[12]
    assert run(["audit", "export", "--format", "csv", "--db", db_url]) == 0
    plain = capfd.readouterr().out
    assert plain.startswith("seq,at,reference") and "\r" not in plain
    with TestClient(create_app(engine, AUDITED), client=("127.0.0.1", 1)) as client:
        response = client.get("/api/audit?format=csv-excel", headers={"X-Remote-User": AUDITOR})
    assert response.status_code == 200 and response.content.startswith("\ufeff".encode())
    assert 'filename="pruefpfad-excel.csv"' in response.headers["content-disposition"]
