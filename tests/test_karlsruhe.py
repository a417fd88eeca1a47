"""Replay of real Karlsruhe council data (OParl) through definitions/karlsruhe.yaml.

The data is the trimmed sample in tests/data/karlsruhe-oparl/ (see its SOURCE.md; trim.py rebuilds it)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.cli import run

from .conftest import DEFINITIONS

DATA = Path(__file__).resolve().parent / "data" / "karlsruhe-oparl"
MAPPING = DEFINITIONS / "mappings" / "karlsruhe.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
# One paper per kind of reason for not importing (trim.py's SKIP_EXAMPLES), with the reason given.
SKIP_EXAMPLES = {
    "2020/0030": "'verwiesen in Fachausschuss' von gemeinderat verweist die Vorlage weiter, aber die Beratung, an "
                 "die sie verwiesen wurde, ist nicht aufgezeichnet",
    "2019/0378": "Beratung 1: Organisation None ist keinem Gremium zugeordnet",
    "2022/2424": "die Beratung von sozial (Kenntnisnahme) in Zustand 'vorberatung_sozial' kann nicht auf Zustand "
                 "'erledigt' folgen: der Weg passt nicht zum Ablauf",
    "2024/0042": "Gremium or_wettersbach berät in 18 Zuständen, und der aufgezeichnete Weg sagt nicht, in welchem; "
                 "ordnen Sie die Rolle 'Anhörung' einem zu",
    "2026/0061": "or_wettersbach hat schon entschieden, hat aber eine weitere Beratung",
}


def _import(db_url: str, defs: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(["import", "oparl", str(DATA), "--mapping", str(MAPPING), "--json", "--db", db_url,
                    "--definitions", str(defs), "--now", "2026-08-22T12:00"]) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@pytest.fixture
def karlsruhe(db_url: str, tmp_path: Path, clock: FixedClock) -> tuple[Engine, dict[str, Any], Path]:
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(DEFINITIONS / "karlsruhe.yaml", defs)
    report = _import(db_url, defs)
    return Engine(SqlStore(db_url), DefinitionLibrary(defs), clock), report, defs


def _steps(engine: Engine, reference: str) -> list[tuple[str, str | None, str | None, str]]:
    return [(r.trigger, r.branch, r.payload.get("result"), f"{r.at.astimezone(BERLIN):%d.%m.%Y %H:%M}")
            for r in engine.history(reference) if r.kind in ("transition", "branch") and "result" in r.payload]


def test_named_papers_end_in_their_recorded_outcome(karlsruhe: tuple[Engine, dict[str, Any], Path]) -> None:
    """51585, 52415 and 52596 replay hearings, Vorberatung, deferral and decision on their recorded dates."""
    engine, report, _ = karlsruhe
    for reference in ("2025/0161", "2025/0916", "2025/1069"):
        assert reference in report["imported"]
    assert _steps(engine, "2025/0161") == [  # paper 51585
        ("anhoeren", "or_wettersbach", "mehrheitlich beschlossen", "08.04.2025 19:00"),
        ("vorberaten", None, "vorberaten ohne Änderungen", "10.04.2025 16:30"),
        ("anhoeren", "or_durlach", "mehrheitlich beschlossen", "23.04.2025 17:00"),
        ("beschliessen", None, "Zugestimmt zu geändertem Beschlusstext", "29.04.2025 15:30"),
    ]
    assert _steps(engine, "2025/0916")[-2:] == [  # paper 52415
        ("vorberaten", None, "vorberaten ohne Änderungen", "22.01.2026 16:30"),
        ("beschliessen", None, "mehrheitlich beschlossen", "27.01.2026 15:30"),
    ]
    steps = _steps(engine, "2025/1069")  # paper 52596: deferred by the Gemeinderat, heard meanwhile
    assert ("vertagen", None, "vertagt", "16.12.2025 09:00") in steps
    assert steps[-1] == ("beschliessen", None, "Zugestimmt zu geändertem Beschlusstext", "27.01.2026 15:30")
    assert steps.index(("anhoeren", "or_groetzingen", "mehrheitlich abgelehnt", "17.12.2025 19:00")) > \
        steps.index(("vertagen", None, "vertagt", "16.12.2025 09:00"))
    for reference in ("2025/0161", "2025/0916", "2025/1069"):
        status = engine.status(reference)
        assert status.state == "beschlossen" and status.final
    deferral = next(r for r in engine.history("2025/1069") if r.trigger == "vertagen")
    assert datetime.fromisoformat(deferral.payload["meeting"]).astimezone(BERLIN).isoformat()[:16] == \
        "2026-01-27T15:30"


def test_the_sample_mostly_fits_and_the_rest_is_reported(karlsruhe: tuple[Engine, dict[str, Any], Path]) -> None:
    """Most papers fit; each that does not has a reason and left nothing behind; the trail verifies."""
    engine, report, _ = karlsruhe
    assert (len(report["imported"]), len(report["skipped"])) == (44, 15)  # of the sample's 59 papers
    assert all(s["reason"] and not s["reason"].startswith("unerwartete Daten") for s in report["skipped"])
    reasons = {s["reference"]: s["reason"] for s in report["skipped"]}
    assert {ref: reasons[ref] for ref in SKIP_EXAMPLES} == SKIP_EXAMPLES
    stored = set(engine.store.references())
    assert stored == set(report["imported"])
    assert not stored & {s["reference"] for s in report["skipped"]}
    assert all(r.actor == "import" for r in engine.history("2025/0161"))
    assert engine.verify().ok


def test_reimport_is_idempotent(karlsruhe: tuple[Engine, dict[str, Any], Path], db_url: str) -> None:
    """Importing the same files again changes nothing and writes no entry."""
    engine, report, defs = karlsruhe
    before = engine.store.count_audit()
    again = _import(db_url, defs)
    assert sorted(again["unchanged"]) == sorted(report["imported"]) and again["imported"] == again["updated"] == []
    assert engine.store.count_audit() == before
