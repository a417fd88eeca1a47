"""Attachments of follow-up papers (``attach``): each Sachstandsbericht of the strategy comes with the Kreistag's
Bericht über offene Beschlüsse as it stood the moment the report was created (public papers only), kept with
its SHA-256 in the child's create entry; the trail check finds a changed, missing or smuggled-in attachment; the
command line, the page, the API and OParl offer it to those who may read the paper; the language checks ``attach``
with file:line:col."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.errors import DefinitionError, ToolMissingError
from workflow.loader import load_definition
from workflow.store import Store

from .conftest import ROOT
from .test_decisions import MASSNAHMEN, OUTSIDER, VERANTWORTLICH, as_user, at, begin, web
from .test_follow_up import ADOPTED, REF, adopt, shipped

LANDRAT = "buero.landrat@kreis-coesfeld.example"
SB1 = f"{REF}-SB1"
NAME_HTML = "beschlusskontrolle-kreistag-2026-03-01.html"


def strategy_with(folder: Path, extra: str = "") -> Path:
    """The shipped definitions, the strategy's attachment as HTML (readable in a test) plus ``extra`` keys."""
    shipped(folder)
    path = folder / "kreisstrategie.yaml"
    source = path.read_text(encoding="utf-8")
    assert "        body: kreistag\n" in source
    changed = source.replace("        body: kreistag\n", "        body: kreistag\n        format: html\n" + extra)
    path.write_text(changed, encoding="utf-8")
    return folder


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(ADOPTED)


@pytest.fixture
def strategy(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    return Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)


def first_report(engine: Engine, clock: FixedClock) -> None:
    """The strategy adopted on 1 September 2025 with three measures: M1 due on 10 March 2026, M2 delayed, M3 due
    at the end of June; then the first Sachstandsbericht is created on 1 March 2026, 09:00."""
    adopt(engine, massnahmen=MASSNAHMEN)
    begin(engine, f"{REF}-M1", "2026-03-10")
    begin(engine, f"{REF}-M2", "2026-12-31")
    begin(engine, f"{REF}-M3", "2026-06-30")
    engine.fire(f"{REF}-M2", "verzoegern", VERANTWORTLICH, values={"sachstand": "Ausschreibung verzögert",
                                                                    "zieltermin": "2027-03-31"})
    clock.set(at("01.03.2026"))
    assert SB1 in [r.child for r in engine.create_due_follow_ups()]


def cells(document: str) -> list[list[str]]:
    """The table rows of an HTML report, as text."""
    body = document.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_the_report_attached_to_the_sachstandsbericht_as_it_stood_then(strategy: Engine, clock: FixedClock) -> None:
    from .test_decisions import adopt_private

    adopt_private(strategy)  # a strategy marked not public: its measure must not show in an attachment
    first_report(strategy, clock)
    [record] = strategy.files(SB1)
    content = strategy.file_content(strategy.load(SB1), NAME_HTML)[1]
    assert (record.name, record.media_type, record.size, record.sha256) == (
        NAME_HTML, "text/html", len(content), hashlib.sha256(content).hexdigest())
    document = content.decode("utf-8")
    assert "Bericht über offene Beschlüsse" in document and "Kreistag" in document
    # red first (the delayed one), then yellow (due within ten working days of 1 March), then green
    assert [(c[0], c[5], c[7], c[9]) for c in cells(document)] == [
        ("rot", f"{REF}-M2", "Verzögert", "31.03.2027"),
        ("gelb", f"{REF}-M1", "In Arbeit", "10.03.2026"),
        ("grün", f"{REF}-M3", "In Arbeit", "30.06.2026"),
    ]
    assert "SV-9-2000" not in document and "Geheime Maßnahme" not in document
    assert "01.03.2026" in document  # "Stand": the moment of the child's creation, not the test machine's day

    # the child's create entry names the file with its SHA-256: the hash chain covers it
    created = strategy.history(SB1)[0]
    assert created.payload["files"] == [{"name": NAME_HTML, "media_type": "text/html", "size": len(content),
                                         "sha256": record.sha256}]
    assert strategy.follow_up_json(SB1)["files"] == [record.to_json()]
    assert strategy.files(REF) == []  # the parent has none

    # later changes do not change what was attached; the next report shows the state of its own day
    strategy.fire(f"{REF}-M1", "erledigen", VERANTWORTLICH, values={"sachstand": "E-Akte läuft"})
    assert strategy.file_content(strategy.load(SB1), NAME_HTML)[1] == content
    clock.set(at("01.09.2026"))
    strategy.create_due_follow_ups()
    [second] = strategy.files(f"{REF}-SB2")
    later = strategy.file_content(strategy.load(f"{REF}-SB2"), second.name)[1].decode("utf-8")
    assert second.name == "beschlusskontrolle-kreistag-2026-09-01.html"
    # the first report is a follow-up of the decision too (overdue by now); the second is not in its own
    assert [(c[0], c[5]) for c in cells(later)] == [("rot", f"{REF}-M2"), ("rot", SB1), ("rot", f"{REF}-M3")]
    assert strategy.verify().ok


def test_a_long_report_is_cut_with_a_note(strategy: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    import workflow.decision_report as decision_report

    monkeypatch.setattr(decision_report, "ATTACH_MAX_ROWS", 2)
    first_report(strategy, clock)
    document = strategy.file_content(strategy.load(SB1), NAME_HTML)[1].decode("utf-8")
    assert [c[5] for c in cells(document)] == [f"{REF}-M2", f"{REF}-M1"]
    assert ("Nur die ersten 2 Folgevorlagen sind aufgeführt; die Beschlusskontrolle des Gremiums zeigt alle."
            in html.unescape(document))


def test_the_shipped_strategy_attaches_a_pdf(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    engine = Engine(store, DefinitionLibrary(shipped(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    [record] = engine.files(SB1)
    content = engine.file_content(engine.load(SB1), record.name)[1]
    assert (record.name, record.media_type) == ("beschlusskontrolle-kreistag-2026-03-01.pdf", "application/pdf")
    assert content.startswith(b"%PDF-") and hashlib.sha256(content).hexdigest() == record.sha256
    assert engine.verify().ok


def test_without_weasyprint_the_report_is_attached_as_html(store: Store, tmp_path: Path, clock: FixedClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import workflow.decision_report as decision_report

    def missing(html_text: str, attachments: Any = ()) -> bytes:
        raise ToolMissingError("PDF nicht möglich")

    monkeypatch.setattr(decision_report, "to_pdf", missing)
    engine = Engine(store, DefinitionLibrary(shipped(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    [record] = engine.files(SB1)
    assert (record.name, record.media_type) == (NAME_HTML, "text/html")
    assert engine.history(SB1)[0].payload["files"][0]["media_type"] == "text/html"


def test_the_history_names_the_attachment(strategy: Engine, clock: FixedClock) -> None:
    from workflow.german import entry_text

    first_report(strategy, clock)
    created = next(r for r in strategy.history(SB1) if r.kind == "create")
    details = entry_text(created, strategy.definition_of(strategy.load(SB1)), "Europe/Berlin").details
    assert any(d.startswith(f"Anlage {NAME_HTML} (SHA-256 ") for d in details)


# --- the trail check ------------------------------------------------------------------------------------------

def test_a_changed_missing_or_added_attachment_breaks_the_trail(store: Store, db_url: str, tmp_path: Path,
                                                               clock: FixedClock) -> None:
    engine = Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    seq = engine.history(SB1)[0].seq
    assert engine.verify().ok
    sql = store.engine  # type: ignore[attr-defined]
    with sql.begin() as conn:
        conn.execute(text("UPDATE paper_files SET content = :c"), {"c": b"<p>nachtraeglich</p>"})
    report = engine.verify()
    assert not report.ok and report.broken_seq == seq
    assert report.problem == (f"Anlage '{NAME_HTML}' von {SB1} wurde verändert: ihr Inhalt passt nicht mehr zum "
                              f"SHA-256 in Eintrag {seq}")
    with sql.begin() as conn:
        row = conn.execute(text("SELECT paper_id, name, media_type, size, sha256, created_at FROM paper_files")).one()
        conn.execute(text("DELETE FROM paper_files"))
    report = engine.verify()
    assert not report.ok and report.problem == f"Anlage '{NAME_HTML}' von {SB1}, genannt in Eintrag {seq}, fehlt"
    with sql.begin() as conn:
        conn.execute(text("INSERT INTO paper_files (paper_id, name, media_type, size, sha256, content, created_at) "
                          "VALUES (:p, 'untergeschoben.pdf', 'application/pdf', 1, :h, :c, :t)"),
                     {"p": row.paper_id, "h": row.sha256, "c": b"x", "t": row.created_at})
    report = engine.verify()
    assert not report.ok and report.problem.startswith("Anlage 'untergeschoben.pdf' von")
    assert "steht in keinem Eintrag des Prüfpfads" in report.problem


# --- command line, page, API, OParl ------------------------------------------------------------------------------

def test_the_command_line_lists_and_saves_attachments(strategy: Engine, clock: FixedClock, db_url: str,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from workflow.cli import run

    first_report(strategy, clock)
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(strategy.library.folder))
    monkeypatch.chdir(tmp_path)
    content = strategy.file_content(strategy.load(SB1), NAME_HTML)[1]

    def out(argv: list[str], code: int = 0) -> str:
        assert run(argv) == code
        captured = capsysbinary.readouterr()
        return (captured.out + captured.err).decode("utf-8")

    listed = out(["files", SB1])
    assert listed.startswith(f"{NAME_HTML}  ") and hashlib.sha256(content).hexdigest() in listed
    assert re.match(rf"{NAME_HTML}  \d+,\d kB  01\.03\.2026 09:00  SHA-256 [0-9a-f]{{64}}\n$", listed), listed
    assert out(["files", REF]) == f"{REF}: keine Anlagen\n"
    assert f"Anlagen (councilflow files {SB1} NAME speichert eine):\n    {NAME_HTML}" in out(["status", SB1])
    assert '"files": [' in out(["status", SB1, "--json"])

    saved = out(["files", SB1, NAME_HTML])
    assert re.fullmatch(rf"{NAME_HTML}: Anlage {NAME_HTML} von {SB1} \(\d+,\d kB\)\n", saved), saved
    assert (tmp_path / NAME_HTML).read_bytes() == content
    # never over an existing file unless asked to; to standard output with -
    assert out(["files", SB1, NAME_HTML], 4) == (f"councilflow: Fehler: {NAME_HTML} gibt es in diesem Ordner schon; "
                                                 "bitte mit --out eine andere Datei wählen\n")
    assert run(["files", SB1, NAME_HTML, "--out", "-"]) == 0
    assert capsysbinary.readouterr().out == content
    assert out(["files", SB1, "gibtsnicht.pdf"], 8) == f"councilflow: Fehler: {SB1} hat keine Anlage 'gibtsnicht.pdf'\n"


def test_page_api_and_oparl_offer_it_to_those_who_may_read_it(strategy: Engine, clock: FixedClock) -> None:
    first_report(strategy, clock)
    content = strategy.file_content(strategy.load(SB1), NAME_HTML)[1]
    link = f"/vorlagen/{SB1}/anlagen/{NAME_HTML}"
    with web(strategy) as client:
        page = client.get(f"/vorlagen/{SB1}", headers=as_user(OUTSIDER)).text
        assert '<h2 id="anlagen">Anlagen</h2>' in page and f'href="{link}"' in page
        got = client.get(link, headers=as_user(OUTSIDER))
        assert got.status_code == 200 and got.content == content
        assert got.headers["content-type"] == "text/html; charset=utf-8"
        assert got.headers["content-disposition"].startswith(f'attachment; filename="{NAME_HTML}"')
        assert "sandbox" in got.headers["content-security-policy"]
        assert got.headers["cache-control"] == "private, no-store"
        assert client.get(link).status_code == 401  # not signed in
        missing = client.get(f"/vorlagen/{SB1}/anlagen/nichts.pdf", headers=as_user(OUTSIDER))
        assert missing.status_code == 404 and f"{SB1} hat keine Anlage 'nichts.pdf'" in html.unescape(missing.text)

        listed = client.get(f"/api/papers/{SB1}/files", headers=as_user(OUTSIDER)).json()
        assert [f["name"] for f in listed] == [NAME_HTML]
        assert client.get(f"/api/papers/{SB1}", headers=as_user(OUTSIDER)).json()["files"] == listed
        api = client.get(f"/api/papers/{SB1}/files/{NAME_HTML}", headers=as_user(OUTSIDER))
        assert api.status_code == 200 and api.content == content
        assert client.get(f"/api/papers/{SB1}/files/x.pdf", headers=as_user(OUTSIDER)).json()["status"] == 404

        base = "/oparl/v1.1"
        obj = client.get(f"{base}/files/{SB1}/{NAME_HTML}").json()
        assert (obj["type"], obj["fileName"], obj["mimeType"], obj["size"]) == (
            "https://schema.oparl.org/1.1/File", NAME_HTML, "text/html", len(content))
        assert obj["downloadUrl"].endswith(f"{base}/files/{SB1}/{NAME_HTML}/download")
        paper = strategy.oparl_paper(strategy.load(SB1), obj["id"].split("/files/")[0])
        assert [f["id"] for f in paper["auxiliaryFile"]] == [obj["id"]]
        assert client.get(f"{base}/files/{SB1}/{NAME_HTML}/download").content == content

        # made not public: gone for outsiders and from OParl; the author still reads it
        strategy.fire(SB1, "bearbeiten", LANDRAT, values={"public": "nein"})
        assert client.get(link, headers=as_user(OUTSIDER)).status_code in (403, 404)
        assert client.get(link, headers=as_user(LANDRAT)).content == content
        assert client.get(f"{base}/files/{SB1}/{NAME_HTML}/download").status_code == 404
        assert client.get(f"{base}/files/{SB1}/{NAME_HTML}").status_code == 404


# --- the language ----------------------------------------------------------------------------------------------

def strategy_text(attach: str) -> str:
    source = (ROOT / "definitions" / "kreisstrategie.yaml").read_text(encoding="utf-8")
    start = source.index("    attach:\n")
    return source[:start] + attach


@pytest.mark.parametrize(("attach", "message"), [
    ("    attach:\n      - {report: decisions, body: kreistg}\n",
     ":199:35: unbekanntes Gremium 'kreistg' (gemeint: 'kreistag'?)"),
    ("    attach:\n      - {report: beschluesse, body: kreistag}\n",
     ":199:18: report von Anlage 1 von Folgevorlage 'sachstand' muss eines von decisions sein, nicht der Text "
     "'beschluesse'"),
    ("    attach:\n      - {report: decisions, body: kreistag, status: verzoegert, format: docx}\n",
     ":199:73: format von Anlage 1 von Folgevorlage 'sachstand' muss eines von pdf, html sein, nicht der Text "
     "'docx'"),
    ("    attach:\n      - {report: decisions, body: kreistag, status: offn}\n",
     "status von Anlage 1 von Folgevorlage 'sachstand' muss eines von offen, verzoegert, erledigt sein, nicht "
     "der Text 'offn' (gemeint: 'offen'?)"),
    ("    attach:\n      - {report: decisions, body: kreistag, warn_days: 300}\n",
     "warn_days von Anlage 1 von Folgevorlage 'sachstand' darf höchstens 250 sein, nicht 300"),
    ("    attach:\n      - {report: decisions, body: kreistag}\n      - {report: decisions, body: kreistag}\n",
     ":200:9: Anlage 2 von Folgevorlage 'sachstand' ist dasselbe Dokument wie Anlage 1: jede Folgevorlage bekäme "
     "es doppelt"),
    ("    attach: {report: decisions, body: kreistag}\n", "attach von Folgevorlage 'sachstand' muss eine Liste sein"),
    ("    attach:\n      - {report: decisions, body: kreistag, gremium: x}\n", "unbekannter Schlüssel 'gremium'"),
])
def test_attach_is_checked_at_load(attach: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(strategy_text(attach), "kreisstrategie.yaml")
    assert message in str(caught.value), str(caught.value)


def test_a_well_formed_attach_loads() -> None:
    definition = load_definition(strategy_text(
        "    attach:\n      - {report: decisions, body: kreistag, status: verzoegert, warn_days: 5, format: html}\n"
        "      - {report: decisions, body: kreistag}\n"), "kreisstrategie.yaml")
    [spec] = [f for f in definition.follow_ups if f.name == "sachstand"]
    assert [(a.body, a.status, a.warn_days, a.format) for a in spec.attach] == [
        ("kreistag", "verzoegert", 5, "html"), ("kreistag", "offen", None, "pdf")]


def test_revision_0011_down_and_up_keeps_the_papers_and_fills_modified_at(store: Store, db_url: str, tmp_path: Path,
                                                                          clock: FixedClock) -> None:
    """Revision 0011 fills ``modified_at`` from each paper's last change or its newest follow-up paper (OParl's
    modified_since finds the parent of a new report), and a downgrade to 0010 and back keeps every paper."""
    from alembic import command

    from workflow.store.schema import _config, upgrade

    engine = Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    sql = store.engine  # type: ignore[attr-defined]
    cfg = _config()
    with sql.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    upgrade(sql)
    with sql.connect() as conn:
        found = dict(conn.execute(text("SELECT reference, modified_at FROM papers WHERE reference IN (:a, :b)"),
                                  {"a": REF, "b": SB1}).all())
    assert len(found) == 2 and found[REF] == found[SB1]  # the parent: modified when its report was created
    _total, changed = engine.oparl_papers("https://ris.example/oparl/v1.1", 0, 100,
                                          modified_since=engine.history(SB1)[0].at)
    assert {p["reference"] for p in changed} == {REF, SB1}
    assert engine.files(SB1) == []  # a downgrade drops the attachments (and verify says so)
    assert not engine.verify().ok


# --- probes: the same report twice, tampered columns, a private parent -------------------------------------------

def attaching(folder: Path, attach: str) -> Path:
    """The shipped definitions with the strategy's ``attach`` replaced by ``attach`` (YAML, as under the follow-up)."""
    shipped(folder)
    path = folder / "kreisstrategie.yaml"
    path.write_text(strategy_text(attach), encoding="utf-8")
    return folder


def test_a_pdf_that_falls_back_to_html_beside_an_html_one_still_makes_the_child(
        store: Store, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WeasyPrint a pdf entry becomes HTML: beside an html entry of the same report it is the same document
    (attached once); with other lights (warn_days) it is another one and gets a name of its own. The child is made
    either way (it was recorded as 'not created: the reference exists already', which it did not)."""
    import workflow.decision_report as decision_report

    def missing(html_text: str, attachments: Any = ()) -> bytes:
        raise ToolMissingError("PDF nicht möglich")

    monkeypatch.setattr(decision_report, "to_pdf", missing)
    engine = Engine(store, DefinitionLibrary(attaching(tmp_path / "definitions", (
        "    attach:\n      - {report: decisions, body: kreistag}\n"
        "      - {report: decisions, body: kreistag, format: html}\n"
        "      - {report: decisions, body: kreistag, status: verzoegert, warn_days: 5}\n"
        "      - {report: decisions, body: kreistag, status: verzoegert, warn_days: 90, format: html}\n"))), clock)
    first_report(engine, clock)
    names = [f.name for f in engine.files(SB1)]
    assert names == [NAME_HTML, "beschlusskontrolle-kreistag-verzoegert-2026-03-01.html",
                     "beschlusskontrolle-kreistag-verzoegert-2026-03-01-2.html"]
    assert [f["name"] for f in engine.history(SB1)[0].payload["files"]] == names
    assert engine.verify().ok


def test_a_refused_child_row_is_no_taken_reference(store: Store, db_url: str, tmp_path: Path, clock: FixedClock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """When the database refuses a child for another reason than its reference (here two files of one name), the
    scheduler says what the database said and leaves the child planned; it was recorded for good as failed with
    'a paper with this reference exists already', which was not so."""
    from workflow.errors import StorageError
    from workflow.store.records import NewFile

    engine = Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)
    monkeypatch.setattr(Engine, "_attachments", lambda self, definition, attach, now: [
        NewFile("a.html", "text/html", b"1"), NewFile("a.html", "text/html", b"2")] if attach else [])
    adopt(engine, massnahmen=MASSNAHMEN)
    clock.set(at("01.03.2026"))
    with pytest.raises(StorageError) as caught:
        engine.create_due_follow_ups()
    assert caught.value.message.startswith("Datenbank ") and "gibt es bereits" not in caught.value.message
    assert [(r.name, r.n, r.status) for r in engine.store.follow_ups(REF) if r.name == "sachstand"] == [
        ("sachstand", 1, "planned")]


@pytest.mark.parametrize(("column", "value"), [
    ("media_type", "application/pdf"),
    ("size", 1),
    ("sha256", "0" * 64),
    ("created_at", ADOPTED),
])
def test_what_the_lists_show_of_an_attachment_is_checked_too(store: Store, db_url: str, tmp_path: Path,
                                                             clock: FixedClock, column: str, value: Any) -> None:
    """The files listing, the page, the API and OParl show the table's media type, size, SHA-256 and time: an
    edit of one of them breaks the trail like an edit of the content (the check passed it by)."""
    engine = Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    seq = engine.history(SB1)[0].seq
    if column == "created_at":
        from workflow.store.timecodec import to_db

        value = to_db(value, store.dialect)  # type: ignore[attr-defined]
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"UPDATE paper_files SET {column} = :v"), {"v": value})
    report = engine.verify()
    assert not report.ok and report.broken_seq == seq
    assert report.problem == (f"Anlage '{NAME_HTML}' von {SB1} wurde verändert: ihre Spalte {column} passt nicht "
                              f"mehr zu Eintrag {seq}")


def test_content_stored_as_text_is_reported_not_a_crash(store: Store, db_url: str, tmp_path: Path,
                                                        clock: FixedClock) -> None:
    """SQLite keeps whatever is written: content put in as text is a changed attachment for the check and still
    a download (the check and the page failed with TypeError)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's bytea takes no text")
    engine = Engine(store, DefinitionLibrary(strategy_with(tmp_path / "definitions")), clock)
    first_report(engine, clock)
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("UPDATE paper_files SET content = 'nachträglich'"))
    report = engine.verify()
    assert not report.ok and "ihr Inhalt passt nicht mehr zum SHA-256" in report.problem
    assert engine.file_content(engine.load(SB1), NAME_HTML)[1] == "nachträglich".encode()


def test_files_out_never_replaces_a_device_or_pipe_nor_ignores_what_was_asked(
        strategy: Engine, clock: FixedClock, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--out at a pipe (or /dev/full, /dev/stdout) replaced it by a plain file, and said it had saved; an empty
    --out wrote over the file of the attachment's own name that the default refuses to touch; --out without NAME
    was ignored (the list printed, nothing saved)."""
    import os

    from workflow.cli import run

    first_report(strategy, clock)
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(strategy.library.folder))
    monkeypatch.chdir(tmp_path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert run(["files", SB1, NAME_HTML, "--out", str(pipe)]) == 4
    assert capsys.readouterr().err == (f"councilflow: Fehler: --out {pipe}: ist keine gewöhnliche Datei (ein Gerät, "
                                       "eine Pipe); sie würde ersetzt\n")
    assert pipe.is_fifo()

    (tmp_path / NAME_HTML).write_text("meins", encoding="utf-8")
    assert run(["files", SB1, NAME_HTML, "--out", ""]) == 4
    assert capsys.readouterr().err == "councilflow: Fehler: --out nennt keine Datei\n"
    assert (tmp_path / NAME_HTML).read_text(encoding="utf-8") == "meins"

    assert run(["files", SB1, "--out", "x.html"]) == 4
    assert capsys.readouterr().err == (f"councilflow: Fehler: --out braucht NAME, die Anlage, die gespeichert werden "
                                       f"soll (councilflow files {SB1} listet sie)\n")
    assert not (tmp_path / "x.html").exists()


def test_the_follow_up_papers_of_a_paper_not_public_are_not_public(strategy: Engine, clock: FixedClock) -> None:
    """A strategy marked not public made public children: its measure 'Geheime Maßnahme' and its title stood on
    the measure's and the report's pages, in the API and in OParl for everyone. The children are not public
    either, unless the follow-up's fields set public itself."""
    from workflow.access import is_public

    from .test_decisions import adopt_private

    adopt_private(strategy)
    clock.set(at("01.03.2026"))
    strategy.create_due_follow_ups()
    for child in ("SV-9-2000-M1", "SV-9-2000-SB1"):
        assert not is_public(strategy.load(child).state), child
    with web(strategy) as client:
        for path in ("/vorlagen/SV-9-2000-M1", "/vorlagen/SV-9-2000-SB1", "/api/papers/SV-9-2000-SB1/files"):
            assert client.get(path, headers=as_user(OUTSIDER)).status_code == 404, path
        assert client.get("/vorlagen/SV-9-2000-M1", headers=as_user(VERANTWORTLICH)).status_code == 200
        listed = client.get("/oparl/v1.1/bodies/1/papers").text
        assert "Geheime Maßnahme" not in listed and "SV-9-2000" not in listed


def test_a_follow_up_that_sets_public_itself_keeps_its_word(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    from workflow.access import is_public

    from .test_decisions import adopt_private

    folder = strategy_with(tmp_path / "definitions")
    path = folder / "kreisstrategie.yaml"
    source = path.read_text(encoding="utf-8")
    marked = 'fields: {title: "Sachstandsbericht {n}: {title}", department: "{department}"}'
    assert marked in source
    path.write_text(source.replace(marked, marked[:-1] + ', public: "ja"}'), encoding="utf-8")
    engine = Engine(store, DefinitionLibrary(folder), clock)
    adopt_private(engine)
    clock.set(at("01.03.2026"))
    engine.create_due_follow_ups()
    assert is_public(engine.load("SV-9-2000-SB1").state)
    assert not is_public(engine.load("SV-9-2000-M1").state)
