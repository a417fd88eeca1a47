"""OParl import: export -> import round trip, idempotent re-runs, malformed input, real Karlsruhe files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.cli import run

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, contact

BODY_NAMES = {
    "bmk": "Bürgermeisterkonferenz", "kreisausschuss": "Kreisausschuss", "kreistag": "Kreistag",
    "rat_ascheberg": "Rat der Gemeinde Ascheberg", "rat_billerbeck": "Rat der Stadt Billerbeck",
    "rat_coesfeld": "Rat der Stadt Coesfeld", "rat_duelmen": "Rat der Stadt Dülmen",
    "rat_havixbeck": "Rat der Gemeinde Havixbeck", "rat_luedinghausen": "Rat der Stadt Lüdinghausen",
    "rat_nordkirchen": "Rat der Gemeinde Nordkirchen", "rat_nottuln": "Rat der Gemeinde Nottuln",
    "rat_olfen": "Rat der Stadt Olfen", "rat_rosendahl": "Rat der Gemeinde Rosendahl",
    "rat_senden": "Rat der Gemeinde Senden",
}
KS_MAPPING = """workflow: kreisstrategie
paper_types: ["Kreisweite Strategie (Beschluss durch Kreis und Kommunen)"]
organizations:
""" + "".join(f'  "{name}": {body}\n' for body, name in BODY_NAMES.items()) + """results:
  - {match: "^vertagt", trigger: vertagen}
  - {match: "empfohlen", trigger: beraten}
  - {match: "abgelehnt", trigger: ablehnen}
  - {match: "beschlossen|zugestimmt", trigger: beschliessen}
"""
SB_MAPPING = """workflow: sachstandsbericht
paper_types: ["Sachstandsbericht zur Kenntnisnahme"]
organizations:
  "Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung": afwk
results:
  - {match: "^vertagt", trigger: vertagen}
  - {match: "kenntnis", trigger: kenntnis_nehmen}
"""


def _decisions(engine: Engine, reference: str) -> list[tuple[Any, ...]]:
    return [(r.trigger, r.branch, r.payload.get("result"), r.payload.get("meeting"), r.at.isoformat())
            for r in engine.history(reference) if (r.kind in ("transition", "branch", "join") and "result" in r.payload)
            or r.kind == "join"]


def _source(engine: Engine, clock: FixedClock) -> None:
    """Papers whose every decision was taken in a meeting (OParl keeps results on agenda items)."""
    from datetime import timedelta

    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {"title": "Sachstandsbericht Digitalisierung",
                                                               "references": "SV-9-1334\nBeschluss 12, Anlage 3"})
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2020-08-20T17:00"})
    clock.set(clock.now() + timedelta(days=16))
    engine.fire("SV-9-1809", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-08-27T17:00"})
    clock.set(clock.now() + timedelta(days=7))
    engine.fire("SV-9-1809", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Strategie", "department": "01 - Büro des Landrats"})
    engine.fire("KS-1", "einbringen", FEDER)
    for meeting, trigger, result in (("2020-09-15T10:00", "beraten", "einstimmig empfohlen"),
                                     ("2020-09-29T16:00", "beraten", "empfohlen"),
                                     ("2020-10-07T17:00", "beschliessen", "mehrheitlich beschlossen")):
        engine.set_meeting("KS-1", meeting, SITZ)
        clock.set(clock.now() + timedelta(days=14))
        engine.fire("KS-1", trigger, SITZ, values={"result": result})
    for i, body in enumerate(COUNCILS[:4]):
        engine.set_meeting("KS-1", f"2020-11-{2 + i:02d}T18:00", contact(body), branch=body)
    for body in COUNCILS[:2]:
        clock.set(clock.now() + timedelta(days=30))
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"})
    clock.set(clock.now() + timedelta(days=1))
    engine.fire("KS-1", "vertagen", contact(COUNCILS[3]), branch=COUNCILS[3],
                values={"result": "vertagt", "meeting": "2020-12-10T18:00"})


def _export(db_url: str, defs: Path, out: Path) -> None:
    assert run(["export", "oparl", "--out", str(out), "--db", db_url, "--definitions", str(defs)]) == 0


def _import(db_url: str, defs: Path, mapping: Path, *paths: Path) -> dict[str, Any]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = run(["import", "oparl", *map(str, paths), "--mapping", str(mapping), "--json", "--db", db_url,
                    "--definitions", str(defs), "--now", "2021-06-01T12:00"])
    assert code == 0, buffer.getvalue()
    report: dict[str, Any] = json.loads(buffer.getvalue())
    return report


@pytest.fixture
def mappings(tmp_path: Path) -> tuple[Path, Path]:
    sb, ks = tmp_path / "sb.yaml", tmp_path / "ks.yaml"
    sb.write_text(SB_MAPPING, encoding="utf-8")
    ks.write_text(KS_MAPPING, encoding="utf-8")
    return sb, ks


def test_round_trip_reproduces_papers_and_trails(engine: Engine, clock: FixedClock, db_url: str, defs_dir: Path,
                                                 tmp_path: Path, mappings: tuple[Path, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Exported papers imported into an empty database reach the same states with the same decisions."""
    _source(engine, clock)
    out = tmp_path / "oparl"
    _export(db_url, defs_dir, out)
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    sb, ks = mappings
    first = _import(target_url, defs_dir, sb, out)
    assert (first["imported"], [s["reference"] for s in first["skipped"]]) == (["SV-9-1809"], ["KS-1"])
    assert "paperType 'Kreisweite Strategie" in first["skipped"][0]["reason"]
    second = _import(target_url, defs_dir, ks, out)
    assert second["imported"] == ["KS-1"]
    target = Engine(SqlStore(target_url), DefinitionLibrary(defs_dir), clock)
    for ref in ("SV-9-1809", "KS-1"):
        original, copy = engine.status(ref), target.status(ref)
        assert (copy.state, copy.meeting, copy.result, copy.fields) == (original.state, original.meeting,
                                                                        original.result, original.fields)
        assert [b.to_json() for b in copy.branches] == [b.to_json() for b in original.branches]
        assert _decisions(target, ref) == _decisions(engine, ref)
        assert {r.actor for r in target.history(ref)} == {"import"}
    assert target.verify().ok
    again = _import(target_url, defs_dir, ks, out)
    assert (again["imported"], again["updated"], again["unchanged"]) == ([], [], ["KS-1"])


def test_reimport_appends_what_the_ris_recorded_since(engine: Engine, clock: FixedClock, db_url: str,
                                                      defs_dir: Path, tmp_path: Path,
                                                      mappings: tuple[Path, Path]) -> None:
    """A second import after new decisions updates the paper; a paper changed here is not overwritten."""
    from datetime import timedelta

    _source(engine, clock)
    out = tmp_path / "oparl"
    _export(db_url, defs_dir, out)
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    _import(target_url, defs_dir, mappings[1], out)
    clock.set(clock.now() + timedelta(days=1))
    engine.fire("KS-1", "beschliessen", contact(COUNCILS[2]), branch=COUNCILS[2], values={"result": "beschlossen"})
    _export(db_url, defs_dir, out)
    report = _import(target_url, defs_dir, mappings[1], out)
    assert report["updated"] == ["KS-1"], report
    target = Engine(SqlStore(target_url), DefinitionLibrary(defs_dir), clock)
    assert _decisions(target, "KS-1") == _decisions(engine, "KS-1")
    target.fire("KS-1", "ablehnen", contact(COUNCILS[4]), branch=COUNCILS[4], values={"result": "abgelehnt"})
    engine.fire("KS-1", "beschliessen", contact(COUNCILS[5]), branch=COUNCILS[5], values={"result": "beschlossen"})
    _export(db_url, defs_dir, out)
    clash = _import(target_url, defs_dir, mappings[1], out)
    reasons = {s["reference"]: s["reason"] for s in clash["skipped"]}
    assert reasons["KS-1"] == ("ihr aufgezeichneter Verlauf weicht vom gespeicherten ab (hier oder im "
                               "Ratsinformationssystem geändert)")


def test_malformed_oparl_is_reported_per_object(tmp_path: Path, db_url: str, defs_dir: Path,
                                                mappings: tuple[Path, Path]) -> None:
    """Bad objects get one clear line each; the good ones are imported."""
    base = "https://ris.example/oparl"
    good = {"id": f"{base}/papers/1", "type": "https://schema.oparl.org/1.1/Paper", "reference": "SV-1",
            "name": "Gut", "created": "2020-08-04T09:00:00+02:00", "paperType": "Sachstandsbericht zur Kenntnisnahme"}
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "papers.json").write_text(json.dumps({"data": [
        good,
        {"type": "https://schema.oparl.org/1.1/Paper", "name": "ohne id"},
        {"id": f"{base}/papers/3", "type": "https://schema.oparl.org/1.1/Paper", "reference": 17},
        {"id": f"{base}/papers/4", "type": "https://schema.oparl.org/1.1/Paper", "consultation": {"x": 1}},
        {**good, "id": f"{base}/papers/5", "reference": "SV-5", "consultation": [
            {"organization": [f"{base}/organizations/unbekannt"], "meeting": f"{base}/meetings/1"}]},
        {**good, "id": f"{base}/papers/6", "reference": "SV-6", "created": "2020-08-04T09:00:00"},
        "kein Objekt",
    ], "links": {}}), encoding="utf-8")
    (folder / "meetings.json").write_text(json.dumps([{"id": f"{base}/meetings/1", "type":
                                                       "https://schema.oparl.org/1.1/Meeting", "start": "morgen"}]))
    (folder / "broken.json").write_text("{not json")
    report = _import(db_url, defs_dir, mappings[0], folder)
    assert report["imported"] == ["SV-1"]
    unreadable = "\n".join(report["unreadable"])
    assert "papers.json Objekt 2: 'id' fehlt" in unreadable
    assert f"Paper {base}/papers/3: 'reference' muss ein Text sein, nicht 17" in unreadable
    assert f"Paper {base}/papers/4: 'consultation' muss eine Liste sein" in unreadable
    assert "Objekt 7: ein Objekt erwartet, str gefunden" in unreadable
    assert f"Meeting {base}/meetings/1: 'start' 'morgen' ist kein Zeitpunkt nach ISO 8601" in unreadable
    assert "broken.json:1:2: kein JSON" in unreadable
    skipped = {s["reference"]: s["reason"] for s in report["skipped"]}
    assert skipped == {
        "SV-5": "Beratung 1: Organisation 'https://ris.example/oparl/organizations/unbekannt' ist keinem Gremium "
                "zugeordnet",
        "SV-6": "Anlage der Vorlage '2020-08-04T09:00:00' hat keinen Zeitzonen-Versatz",
    }


def test_bad_mapping_names_file_line_and_column(tmp_path: Path, db_url: str, defs_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A mapping with an unknown body or trigger is refused with its position."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text("workflow: sachstandsbericht\norganizations:\n  Ausschuss: afwc\nresults:\n"
                       "  - {match: vertagt, trigger: vertagn}\n", encoding="utf-8")
    assert run(["import", "oparl", str(tmp_path), "--mapping", str(mapping), "--db", db_url,
                "--definitions", str(defs_dir)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{mapping}:3:14: unbekanntes Gremium 'afwc' (gemeint: 'afwk'?)",
                   f"{mapping}:5:31: unbekannter Trigger 'vertagn' (gemeint: 'vertagen'?)"]


def test_karlsruhe_files_are_read_completely() -> None:
    """The real OParl files of Karlsruhe (lists of objects; the sample in tests/data) are read without a problem."""
    from workflow.oparl_read import read_oparl

    data = read_oparl([Path(__file__).resolve().parent / "data" / "karlsruhe-oparl"])
    assert (len(data.papers), len(data.meetings), len(data.organizations), data.problems) == (59, 122, 40, [])
    assert data.agenda_items and all("meeting" in item for item in data.agenda_items.values())


def test_meetings_alone_schedule_waiting_papers(engine: Engine, clock: FixedClock, db_url: str, defs_dir: Path,
                                                tmp_path: Path, mappings: tuple[Path, Path]) -> None:
    """Imported body calendars give waiting papers their body's next meeting, and deadlines follow."""

    engine.create("kreisstrategie", "KS-9", FEDER, {"title": "Strategie"})
    engine.fire("KS-9", "einbringen", FEDER)
    base = "https://ris.example/oparl"
    meetings = [{"id": f"{base}/meetings/{n}", "type": "https://schema.oparl.org/1.1/Meeting", "start": start,
                 "organization": [f"{base}/organizations/bmk"]}
                for n, start in enumerate(["2020-07-01T10:00:00+02:00", "2020-09-29T10:00:00+02:00",
                                           "2020-10-27T10:00:00+01:00"])]
    orgs = [{"id": f"{base}/organizations/bmk", "type": "https://schema.oparl.org/1.1/Organization",
             "name": "Bürgermeisterkonferenz"}]
    folder = tmp_path / "calendar"
    folder.mkdir()
    (folder / "meetings.json").write_text(json.dumps(meetings), encoding="utf-8")
    (folder / "organizations.json").write_text(json.dumps({"data": orgs, "links": {}}), encoding="utf-8")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(["import", "oparl", str(folder), "--mapping", str(mappings[1]), "--meetings", "--json",
                    "--db", db_url, "--definitions", str(defs_dir), "--now", "2020-08-04T12:00"]) == 0
    assert json.loads(out.getvalue()) == [{"reference": "KS-9", "body": "bmk",
                                           "meeting": "2020-09-29T08:00:00+00:00"}]
    assert engine.status("KS-9").meeting is not None
    assert {d.name for d in engine.store.outbox.deadlines("KS-9")} == {"vorlage_fertig", "ladung"}
    assert engine.history("KS-9")[-1].actor == "import"
