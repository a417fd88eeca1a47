"""The Prüfbericht: `audit report` writes a PDF (WeasyPrint), HTML or the hashed JSON content of the entries in
scope, with the verify result of the whole chain and the SHA-256 of its content; the audit page offers it
to auditors. The PDFs are opened with pypdf and their text and attachment checked."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import text

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.cli import run
from workflow.config import Settings
from workflow.errors import InputError
from workflow.report import Report, Row, _Labels, build_report, render_html
from workflow.store import AuditRecord, Store
from workflow.web import create_app

from .conftest import COUNCILS, DEFINITIONS, FEDER, KAEMMEREI, LANDRAT, SITZ, contact, to_councils

AUDITOR = "pruefung@kreis-coesfeld.example"
AUDITED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1", auditors=AUDITOR)
NOW = "2020-11-02T10:30"  # the report's moment (local time), after every entry
Cli = pytest.CaptureFixture[str]


@pytest.fixture
def corpus(store: Store, db_url: str, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The shipped definitions; the Digitalisierungsstrategie (KS-1) into the 11 councils, two of them decided
    (Nottuln after a deferral), and a Sachstandsbericht (SV-1) taken note of."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml", "umsetzung.yaml"):
        shutil.copy(DEFINITIONS / name, folder / name)
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(folder))
    monkeypatch.delenv("COUNCILFLOW_NOW", raising=False)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Sachstandsbericht"})
    engine.sign("SV-1", KAEMMEREI)
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    to_councils(engine)
    clock.advance(timedelta(days=30))
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    engine.fire("KS-1", "beschliessen", contact("rat_ascheberg"), branch="rat_ascheberg",
                values={"result": "einstimmig beschlossen"})
    engine.fire("KS-1", "vertagen", contact("rat_nottuln"), branch="rat_nottuln",
                values={"result": "vertagt", "meeting": "2020-10-15T18:00"})
    engine.fire("KS-1", "beschliessen", contact("rat_nottuln"), branch="rat_nottuln", values={"result": "beschlossen"})
    return engine


def _pdf(path: Path | bytes) -> tuple[str, bytes, int]:
    """The PDF's text (whitespace squeezed, so a hash broken over lines reads whole), its attachment, pages."""
    reader = PdfReader(io.BytesIO(path) if isinstance(path, bytes) else path)
    raw = "\n".join(page.extract_text() for page in reader.pages)
    attachment = reader.attachments["pruefbericht.json"][0]
    return raw, attachment, len(reader.pages)


def _squeezed(raw: str) -> str:
    return re.sub(r"\s+", "", raw)


def test_pdf_report_of_a_paper(corpus: Engine, tmp_path: Path, capsys: Cli) -> None:
    """Title, scope, period, producer and moment, the entries with labels, the verify result with the head, the
    content hash — and the hash printed is the SHA-256 of the attached content, which holds exactly the entries
    `audit query` gives."""
    out = tmp_path / "bericht.pdf"
    capsys.readouterr()
    assert run(["audit", "report", "--reference", "KS-1", "--actor", AUDITOR.upper(), "--out", str(out),
                "--now", NOW]) == 0
    said = capsys.readouterr().out
    raw, attachment, pages = _pdf(out)
    digest = hashlib.sha256(attachment).hexdigest()
    assert f"Inhalt SHA-256 {digest}" in said
    flat = _squeezed(raw)
    assert raw.lstrip().startswith("Prüfbericht") and "Seite 1 von" in raw
    assert f"Seite {pages} von {pages}" in raw
    assert "Vorlage KS-1" in raw and "Erstellt von " + AUDITOR in raw
    assert "02.11.2020 10:30 (Europe/Berlin)" in raw  # the engine's clock, local time
    seq, head = corpus.head()
    assert f"Prüfpfad intakt: alle {seq} Einträge" in raw and head in flat
    assert flat.count(digest) >= 2  # at the top and in the closing section
    for label in ("Entwurf", "Beratung in der Bürgermeisterkonferenz", "Rat der Gemeinde Nottuln",
                  "„einstimmig beschlossen“", "vertagt", "Sitzung 15.10.2020 18:00", "Beschließen", "Angelegt",
                  "In die Bürgermeisterkonferenz einbringen", FEDER):
        assert _squeezed(label) in flat, label
    content = json.loads(attachment)
    capsys.readouterr()
    assert run(["audit", "query", "--reference", "KS-1", "--format", "json"]) == 0
    assert content["entries"] == json.loads(capsys.readouterr().out)
    assert content["verify"] == corpus.verify().to_json() and content["verify"]["head_hash"] == head
    assert content["produced_by"] == AUDITOR and content["produced_at"] == "2020-11-02T09:30:00+00:00"
    assert content["scope"]["references"] == ["KS-1"] and content["scope"]["up_to_seq"] == seq
    # The JSON form is the hashed content, byte for byte: the auditor's `sha256sum` gives the printed hash.
    again = tmp_path / "inhalt.json"
    assert run(["audit", "report", "--reference", "KS-1", "--actor", AUDITOR, "--out", str(again), "--now", NOW]) == 0
    assert again.read_bytes() == attachment and hashlib.sha256(again.read_bytes()).hexdigest() == digest


def test_scope_of_several_papers_and_filters_in_words(corpus: Engine, tmp_path: Path, capsys: Cli) -> None:
    """Several references: the entries of any of them, in chain order; filters by label are named in words."""
    out = tmp_path / "r.json"
    assert run(["audit", "report", "--reference", "SV-1", "--reference", "KS-1", "--reference", "SV-1",
                "--actor", AUDITOR, "--out", str(out)]) == 0
    content = json.loads(out.read_bytes())
    seqs = [e["seq"] for e in content["entries"]]
    assert seqs == sorted(seqs) and {e["reference"] for e in content["entries"]} == {"SV-1", "KS-1"}
    assert len(seqs) == len(corpus.history("SV-1")) + len(corpus.history("KS-1"))
    html = tmp_path / "r.html"
    assert run(["audit", "report", "--body", "Rat der Gemeinde Nottuln", "--since", "2020-09-01",
                "--actor", AUDITOR, "--out", str(html)]) == 0
    page = html.read_text(encoding="utf-8")
    assert "<dt>Gremium</dt><dd>Rat der Gemeinde Nottuln (rat_nottuln)</dd>" in page
    assert "01.09.2020 00:00 bis Erstellung des Berichts" in page
    assert page.count("<tr><td>") == 3  # the deferral and the decision of Nottuln, the reminder they made moot
    assert "thead { display: table-header-group; }" in page and 'counter(page) " von " counter(pages)' in page


def test_broken_chain_is_stated_and_exits_10(corpus: Engine, tmp_path: Path, capsys: Cli) -> None:
    """An edited entry: the report is written all the same and states the break; the command exits 10."""
    victim = corpus.history("KS-1")[3].seq
    with corpus.store.engine.begin() as conn:  # type: ignore[attr-defined]
        if corpus.store.dialect == "postgresql":  # type: ignore[attr-defined]
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit SET actor = 'jemand@example.org' WHERE seq = :s"), {"s": victim})
    out = tmp_path / "gebrochen.pdf"
    capsys.readouterr()
    assert run(["audit", "report", "--actor", AUDITOR, "--out", str(out)]) == 10
    err = capsys.readouterr().err
    assert err.startswith("councilflow: Fehler: Prüfpfad gebrochen:") and err.count("\n") == 1
    raw, attachment, _ = _pdf(out)
    assert f"Prüfpfad GEBROCHEN bei Eintrag {victim}" in raw and "jemand@example.org" in _squeezed(raw)
    assert json.loads(attachment)["verify"]["broken_seq"] == victim


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--body", "Nottuln"], 4, "kein Gremium 'Nottuln' – gemeint: Rat der Gemeinde Nottuln (rat_nottuln)?"),
    (["--workflow", "haushalt"], 4, "kein Ablauf 'haushalt'"),
    (["--since", "2020-13-01"], 4, "--since"),
    (["--since", "2020-10-01", "--until", "2020-09-01"], 4, "Zeitraum: der Beginn 01.10.2020 00:00 liegt nach"),
    (["--reference", "KS-404"], 8, "KS-404"),
    (["--actor", "nicht-erkennbar"], 4, "ist keine E-Mail-Adresse"),
])
def test_bad_input_is_one_line_and_no_file(corpus: Engine, tmp_path: Path, capsys: Cli, args: list[str], code: int,
                                           message: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    capsys.readouterr()
    actor = [] if "--actor" in args else ["--actor", AUDITOR]
    assert run(["audit", "report", *actor, *args, "--out", str(folder / "r.pdf")]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(folder.iterdir()) == []  # nothing written, no temporary file left


def test_unwritable_out_leaves_nothing(corpus: Engine, tmp_path: Path, capsys: Cli) -> None:
    tmp_path = tmp_path / "out"
    (tmp_path / "shipped").mkdir(parents=True)
    kept = tmp_path / "kept.pdf"
    kept.write_bytes(b"old")
    for out, message in ((tmp_path / "fehlt" / "r.pdf", "das Verzeichnis"), (tmp_path / "shipped", "Verzeichnis"),
                         (tmp_path / "r.docx", "Endung")):
        capsys.readouterr()
        assert run(["audit", "report", "--actor", AUDITOR, "--out", str(out)]) == 4
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert run(["audit", "report", "--actor", AUDITOR]) == 2  # --out is required
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.pdf", "shipped"] and kept.read_bytes() == b"old"
    assert run(["audit", "report", "--actor", AUDITOR, "--out", str(kept)]) == 0  # replaced whole
    assert kept.read_bytes().startswith(b"%PDF-") and sorted(p.name for p in tmp_path.iterdir()) == ["kept.pdf",
                                                                                                      "shipped"]


def test_a_scope_over_the_limit_is_refused(corpus: Engine) -> None:
    """A report holds at most `limit` entries; a larger scope is refused with how to narrow it."""
    entries = corpus.verify().entries
    assert len(build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", limit=entries).rows) == entries
    with pytest.raises(InputError, match=f"mehr als {entries - 1} Einträge.*grenzen Sie den Umfang ein "
                                         r"\(Zeitraum, Vorlage\) oder erstellen Sie ihn mit `councilflow audit"):
        build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", limit=entries - 1)


def test_mail_admin_and_unknown_entries(corpus: Engine) -> None:
    """Mail and admin entries (also without paper or workflow) read as the trail's one German rendering says;
    an entry of a kind this version does not know is shown by its ids, never a crash."""
    report = build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", references=("SV-1",))
    at = datetime(2020, 9, 3, 8, 0, tzinfo=UTC)
    odd = [AuditRecord(90, "", "", 0, "admin", "token_create", None, "", None, None, "admin@kreis.example", at,
                       json.dumps({"email": "x@kreis.example", "scope": "api", "token_id": 7}), "0" * 64, "1" * 64),
           AuditRecord(91, "SV-1", "sachstandsbericht", 99, "mail", "remind", "ausschuss", "ausschuss", None, "afwk",
                       "system", at, json.dumps({"recipients": ["a@b.example"], "outcome": "sent",
                                                 "message_id": "<m@x>"}), "1" * 64, "2" * 64),
           AuditRecord(92, "", "", 0, "future", "something_new", None, "", None, None, "admin@kreis.example", at,
                       "{}", "2" * 64, "3" * 64)]
    labels = _Labels(corpus, "Europe/Berlin")
    rows = [labels.row(r) for r in odd]
    assert rows[0].what == "API-Token Nr. 7 für x@kreis.example erstellt" and rows[0].to_label == ""
    assert rows[1].what == "Erinnerung gesendet an a@b.example" and rows[1].to_label == "ausschuss"
    assert rows[2].what == "Something new"
    html = render_html(replace(report, rows=(*report.rows, *rows)))
    assert "API-Token Nr. 7 für x@kreis.example erstellt" in html and "Erinnerung gesendet an" in html


def test_web_report_for_auditors_only(corpus: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit page offers the report for its filters; the download is the signed-in auditor's, named with
    the moment and the paper; a clerk is refused; a scope over the web's limit is refused with the way out."""
    with TestClient(create_app(corpus, AUDITED), client=("127.0.0.1", 1)) as client:
        page = client.get("/pruefpfad", params={"reference": "KS-1", "body": "rat_nottuln"},
                          headers={"X-Remote-User": AUDITOR}).text
        assert "/pruefpfad/bericht?format=pdf&amp;reference=KS-1&amp;" in page and "Prüfbericht (HTML)" in page
        href = page.split('href="/pruefpfad/bericht?format=pdf&amp;')[1].split('"')[0].replace("&amp;", "&")
        pdf = client.get(f"/pruefpfad/bericht?format=pdf&{href}", headers={"X-Remote-User": AUDITOR})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == 'attachment; filename="pruefbericht-2020-09-03-0900-KS-1.pdf"'
        raw, attachment, _ = _pdf(pdf.content)
        assert "Erstellt von " + AUDITOR in raw and "Gremium Rat der Gemeinde Nottuln (rat_nottuln)" in raw
        assert [(e["kind"], e["branch"]) for e in json.loads(attachment)["entries"]] == [
            ("branch", "rat_nottuln"), ("branch", "rat_nottuln"), ("mail", "rat_nottuln")]
        html = client.get("/pruefpfad/bericht", params={"format": "html", "reference": "SV-1"},
                          headers={"X-Remote-User": AUDITOR})
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert html.headers["content-disposition"].endswith('-SV-1.html"') and "<h1>Prüfbericht</h1>" in html.text
        assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
        clerk = client.get("/pruefpfad/bericht?format=pdf", headers={"X-Remote-User": SITZ})
        assert clerk.status_code == 403 and b"%PDF" not in clerk.content
        wrong = client.get("/pruefpfad/bericht", params={"format": "pdf", "body": "Nottuln"},
                           headers={"X-Remote-User": AUDITOR})
        assert wrong.status_code == 400 and "kein Gremium" in wrong.text
        monkeypatch.setattr("workflow.web.pages.WEB_MAX_ENTRIES", 3)
        large = client.get("/pruefpfad/bericht", params={"format": "pdf", "reference": "KS-1"},
                           headers={"X-Remote-User": AUDITOR})
        assert large.status_code == 400 and "erstellen Sie ihn mit `councilflow audit report`" in large.text
        assert b"%PDF" not in large.content
    assert len(COUNCILS) == 11


def test_report_hash_is_over_the_content(corpus: Engine) -> None:
    """The printed hash is SHA-256 of the canonical content; the same scope at the same moment gives it again,
    and one more entry changes it."""
    first = build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", references=("KS-1",))
    assert isinstance(first, Report) and hashlib.sha256(first.content).hexdigest() == first.content_hash
    assert build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", references=("KS-1",)).content_hash \
        == first.content_hash
    corpus.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "ja"})
    assert build_report(corpus, producer=AUDITOR, zone="Europe/Berlin", references=("KS-1",)).content_hash \
        != first.content_hash
    assert isinstance(first.rows[0], Row)
