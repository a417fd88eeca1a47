"""Auditors on the web: the audit page pages through the whole trail (no silent cap), filters by paper,
workflow, person, trigger, Gremium, from/to state and period (labels or ids), verifies a kept head; the
CLI takes the same names and says which were meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import Engine
from workflow.cli import run
from workflow.config import Settings
from workflow.web import create_app

from .conftest import COUNCILS, LANDRAT, SITZ, contact, to_councils

AUDITOR = "pruefung@kreis-coesfeld.example"
AUDITED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1", auditors=AUDITOR)
H = {"X-Remote-User": AUDITOR}


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return [row.split("<td>")[1].split("</td>")[0] for row in body.split("<tr>")[1:]]


def test_the_audit_page_pages_through_the_whole_trail(engine: Engine) -> None:
    for i in range(40):  # 40 papers × 3 entries = 120 entries
        engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Bericht {i}"})
        engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
        engine.fire(f"SV-{i}", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-09-24T17:00"})
    seen: list[int] = []
    with TestClient(create_app(engine, AUDITED), client=("127.0.0.1", 1)) as client:
        url: str | None = "/pruefpfad"
        while url is not None and len(seen) < 1000:  # bounded
            html = client.get(url, headers=H).text
            seen += [int(s) for s in _rows(html)]
            url = html.split('<a href="')[-1].split('"')[0].replace("&amp;", "&") \
                if "Ältere Einträge</a>" in html else None
    assert seen == list(range(120, 0, -1))  # every entry once, newest first


def test_filters_take_labels_and_name_the_close_ones(engine: Engine, tmp_path: Path, db_url: str,
                                                     defs_dir: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    to_councils(engine)
    engine.fire("KS-1", "beschliessen", contact("rat_nottuln"), branch="rat_nottuln", values={"result": "ja"})
    with TestClient(create_app(engine, AUDITED), client=("127.0.0.1", 1)) as client:
        by_name = client.get("/pruefpfad", headers=H, params={"body": "Rat der Gemeinde Nottuln"}).text
        by_id = client.get("/pruefpfad", headers=H, params={"body": "rat_nottuln"}).text
        assert _rows(by_name) == _rows(by_id) and len(_rows(by_id)) == 1
        moved = client.get("/pruefpfad", headers=H, params={"von": "Beschlussfassung im Kreistag"}).text
        assert [r for r in moved.split("<tbody>")[1].split("</tr>")
                if "<td>Beschlussfassung in den Räten der Städte und Gemeinden</td>" in r]  # the To column: a label
        wrong = client.get("/pruefpfad", headers=H, params={"body": "Nottuln"})
        assert wrong.status_code == 400
        assert "kein Gremium &#39;Nottuln&#39; – gemeint: Rat der Gemeinde Nottuln (rat_nottuln)?" in wrong.text \
            or "kein Gremium 'Nottuln' – gemeint: Rat der Gemeinde Nottuln (rat_nottuln)?" in wrong.text
        head = engine.head()[1]
        kept = client.get("/pruefpfad", headers=H, params={"kopf": head}).text
        assert "Prüfpfad intakt" in kept
        forged = client.get("/pruefpfad", headers=H, params={"kopf": "f" * 64}).text
        assert "Prüfpfad gebrochen" in forged
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(defs_dir))
    assert run(["audit", "query", "--db", db_url, "--body", "Nottuln"]) == 4
    assert "kein Gremium 'Nottuln' – gemeint: Rat der Gemeinde Nottuln (rat_nottuln)?" in capsys.readouterr().err
    assert run(["audit", "query", "--db", db_url, "--to", "Beschlussfassung in den Räten der Städte und Gemeinden",
                "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"to": "kommunale_raete"' in out and len(COUNCILS) == 11
