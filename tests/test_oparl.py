"""OParl 1.1 export: the objects validate against the OParl schemas and carry the papers' paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from workflow import Engine
from workflow.cli import run

from .conftest import LANDRAT, SITZ, contact, to_councils

SCHEMAS = Path(__file__).resolve().parent / "data" / "oparl-1.1-schema"  # see its SOURCE.md


def validator(name: str) -> Draft7Validator:
    # "format": "url" and OParl's reference annotations are not JSON Schema keywords: ignored here.
    return Draft7Validator(json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8")))


def assert_valid(name: str, obj: dict[str, Any]) -> None:
    errors = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{name} {obj.get('id')}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture
def exported(engine: Engine, db_url: str, defs_dir: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(defs_dir))
    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {
        "title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht",
        "department": "01 - Büro des Landrats", "references": "SV-9-1334,SV-9-1390"})
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2020-08-20T17:00"})
    engine.fire("SV-9-1809", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-08-27T17:00"})
    engine.fire("SV-9-1809", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    to_councils(engine)
    engine.set_meeting("KS-1", "2020-11-02T18:00", contact("rat_olfen"), branch="rat_olfen")
    engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "einstimmig"})
    out = tmp_path / "oparl"
    assert run(["export", "oparl", "--out", str(out), "--base-url", "https://ris.kreis-coesfeld.example/oparl"]) == 0
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")}


def test_every_object_validates(exported: dict[str, Any]) -> None:
    """System, Body, Organizations, Papers (with Consultations) and Meetings (with AgendaItems) validate."""
    assert_valid("System", exported["system"])
    assert_valid("Body", exported["body"])
    for org in exported["organizations"]:
        assert_valid("Organization", org)
    for paper in exported["papers"]:
        assert_valid("Paper", paper)
        for consultation in paper.get("consultation", []):
            assert_valid("Consultation", consultation)
    for meeting in exported["meetings"]:
        assert_valid("Meeting", meeting)
        for item in meeting["agendaItem"]:
            assert_valid("AgendaItem", item)


def test_paper_path_becomes_consultations(exported: dict[str, Any]) -> None:
    """The deferral and the decision are two agenda items with results; references and department link."""
    base = "https://ris.kreis-coesfeld.example/oparl"
    sv = next(p for p in exported["papers"] if p["reference"] == "SV-9-1809")
    assert sv["id"] == f"{base}/papers/SV-9-1809" and sv["date"] == "2020-08-04"
    assert sv["relatedPaper"] == [f"{base}/papers/SV-9-1334", f"{base}/papers/SV-9-1390"]
    assert sv["underDirectionOf"] == [f"{base}/organizations/dept-01-buero-des-landrats"]
    meetings = {m["id"]: m for m in exported["meetings"]}
    results = []
    for consultation in sv["consultation"]:
        assert consultation["organization"] == [f"{base}/organizations/afwk"]
        assert consultation["role"] == "Kenntnisnahme"
        item = next(i for i in meetings[consultation["meeting"]]["agendaItem"] if i["id"] == consultation["agendaItem"])
        results.append((meetings[consultation["meeting"]]["start"], item["result"]))
    assert results == [("2020-08-20T15:00:00+00:00", "vertagt"), ("2020-08-27T15:00:00+00:00", "zur Kenntnis genommen")]
    ks = next(p for p in exported["papers"] if p["reference"] == "KS-1")
    roles = [(c["organization"][0].rsplit("/", 1)[1], c["role"], c["authoritative"]) for c in ks["consultation"]]
    assert roles[:3] == [("bmk", "Vorberatung", False), ("kreisausschuss", "Vorberatung", False),
                         ("kreistag", "Entscheidung", True)]
    olfen = next(c for c in ks["consultation"] if c["organization"][0].endswith("/rat_olfen"))
    assert olfen["meeting"] == f"{base}/meetings/rat_olfen-202011021800"
