"""The pages, the API's problems and the mails in German by default and in English on request: the web per
request (``?lang=``, the ``cf_lang`` cookie, ``Accept-Language``), the mails in the language of the process."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from notifier.dispatch import check_templates, sample_contexts
from notifier.render import KINDS, Renderer
from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.config import Settings
from workflow.i18n import current_language, set_language, use_language
from workflow.loader import load_definition_file
from workflow.store import MemoryStore
from workflow.web import create_app

from .conftest import DEFINITIONS, LANDRAT, SPEC

PROXY = ("127.0.0.1", 50000)
USER = {"X-Remote-User": LANDRAT}
AUDITOR = "pruefung@kreis-coesfeld.example"


@pytest.fixture
def client(defs_dir: Path, clock: FixedClock) -> Iterator[TestClient]:
    """The pages over the in-memory store: the language is the web's, not the backend's."""
    engine = Engine(MemoryStore(), DefinitionLibrary(defs_dir), clock)
    app = create_app(engine, Settings(auditors=AUDITOR, secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))

    @app.get("/_language")
    def language() -> str:  # a sync endpoint: it runs in the thread pool
        return current_language()

    with TestClient(app, client=PROXY) as c:
        yield c


def _h1(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert found, html[:500]
    return found.group(1).strip()


@pytest.mark.parametrize(("header", "language", "heading", "navigation"), [
    (None, "de", "Vorlagen", "Meine Fristen"),
    ("de-DE,de;q=0.9", "de", "Vorlagen", "Meine Fristen"),
    ("en", "en", "Papers", "My deadlines"),
    ("en-GB,en;q=0.9,de;q=0.5", "en", "Papers", "My deadlines"),
    ("fr-FR,fr;q=0.9", "de", "Vorlagen", "Meine Fristen"),
    (";;;q=,,en;q=abc,\x7f", "de", "Vorlagen", "Meine Fristen"),  # malformed: German, no error
])
def test_a_page_speaks_the_language_the_browser_asks_for(client: TestClient, header: str | None, language: str,
                                                         heading: str, navigation: str) -> None:
    headers = {**USER, **({"Accept-Language": header} if header is not None else {})}
    response = client.get("/vorlagen", headers=headers)
    assert response.status_code == 200
    assert _h1(response.text) == heading and navigation in response.text
    assert f'<html lang="{language}">' in response.text
    assert response.headers["content-language"] == language
    assert "Accept-Language" in response.headers["vary"]


def test_a_sync_endpoint_in_the_thread_pool_sees_the_request_language(client: TestClient) -> None:
    assert client.get("/_language", headers={"Accept-Language": "en"}).json() == "en"
    assert client.get("/_language").json() == "de"
    assert current_language() == "de"  # nothing leaks into the process


def test_lang_in_the_address_wins_and_is_kept_in_a_cookie(client: TestClient) -> None:
    chosen = client.get("/vorlagen?lang=en", headers={**USER, "Accept-Language": "de"})
    assert _h1(chosen.text) == "Papers" and chosen.cookies.get("cf_lang") == "en"
    kept = client.get("/vorlagen", headers={**USER, "Accept-Language": "de"})  # the cookie, not the header
    assert _h1(kept.text) == "Papers"
    back = client.get("/vorlagen?lang=de", headers=USER)
    assert _h1(back.text) == "Vorlagen" and back.cookies.get("cf_lang") == "de"
    client.cookies.clear()
    assert _h1(client.get("/vorlagen?lang=xx", headers=USER).text) == "Vorlagen"  # unknown: the default


def test_the_error_page_speaks_the_request_language(client: TestClient) -> None:
    german = client.get("/vorlagen/SV-FEHLT", headers=USER)
    english = client.get("/vorlagen/SV-FEHLT", headers={**USER, "Accept-Language": "en"})
    assert german.status_code == english.status_code == 404
    assert _h1(german.text) == "Nicht gefunden" and "Zu den Vorlagen" in german.text
    assert _h1(english.text) == "Not found" and "To the papers" in english.text


def test_an_api_problem_speaks_the_request_language(client: TestClient) -> None:
    german = client.get("/api/definitions").json()
    assert german["title"] == "Nicht angemeldet" and german["detail"].startswith("Bitte zuerst anmelden")
    english = client.get("/api/definitions", headers={"Accept-Language": "en"}).json()
    assert english["title"] == "Not signed in" and english["detail"].startswith("sign in first")
    refused = client.post("/api/papers", headers={**USER, "Accept-Language": "en"}, json={"reference": "X"})
    assert refused.status_code == 400
    assert refused.json() | {"instance": None} == {
        "type": "about:blank", "title": "Invalid input", "status": 400, "instance": None,
        "detail": "body needs 'workflow' and 'reference' (and 'fields')"}


def test_every_page_has_its_english_texts(client: TestClient) -> None:
    english = {**USER, "Accept-Language": "en"}
    created = client.post("/api/papers", headers=english, json={
        "workflow": "sachstandsbericht", "reference": "SV-9-1809", "fields": {"title": "Digitalisierungsstrategie"}})
    assert created.status_code == 201, created.text
    for path, heading, text in (("/", "My deadlines", "Subscribe to the calendar"),
                                ("/neue-vorlage?workflow=sachstandsbericht", "New paper", "Create paper"),
                                ("/vorlagen/SV-9-1809", "SV-9-1809", "Next step"),
                                ("/beschlusskontrolle", "Decision control", "Please choose a body"),
                                ("/beschlusskontrolle?body=kreistag", "Decision control – Kreistag",
                                 "0 follow-up papers")):
        page = client.get(path, headers=english)
        assert page.status_code == 200 and _h1(page.text).startswith(heading) and text in page.text, path
        for german in ("Meine Fristen", "Vorlage anlegen", "Nächster Schritt", "Verlauf", "Abbrechen",
                       "Beschlusskontrolle", "Gremium", "Folgevorlage", "Beschlossen am", "Zuständig", "Anzeigen"):
            assert german not in page.text, (path, german)


def test_the_audit_page_and_the_pruefbericht_speak_the_request_language(client: TestClient) -> None:
    auditor = {"X-Remote-User": AUDITOR}
    assert _h1(client.get("/pruefpfad", headers=auditor).text) == "Prüfpfad"
    assert _h1(client.get("/pruefpfad", headers={**auditor, "Accept-Language": "en"}).text) == "Audit trail"
    german = client.get("/pruefpfad/bericht?format=html", headers=auditor)
    english = client.get("/pruefpfad/bericht?format=html", headers={**auditor, "Accept-Language": "en"})
    assert german.status_code == english.status_code == 200
    assert _h1(german.text) == "Prüfbericht" and "Prüfung der gesamten Kette" in german.text
    assert _h1(english.text) == "Audit report" and "Verification of the whole chain" in english.text
    assert '<html lang="en">' in english.text and "Prüfsumme" not in english.text


def test_the_decision_control_report_speaks_the_request_language(client: TestClient) -> None:
    german = client.get("/beschlusskontrolle/bericht?body=kreistag&format=html", headers=USER)
    english = client.get("/beschlusskontrolle/bericht?body=kreistag&format=html",
                         headers={**USER, "Accept-Language": "en"})
    assert german.status_code == english.status_code == 200
    assert _h1(german.text) == "Bericht über offene Beschlüsse" and '<html lang="de">' in german.text
    assert "Seite \" counter(page) \" von \"" in german.text and "0 offene Folgevorlagen: 0 rot" in german.text
    assert _h1(english.text) == "Report on open decisions" and '<html lang="en">' in english.text
    assert "Page \" counter(page) \" of \"" in english.text and "0 open follow-ups: 0 red" in english.text
    for word in ("Bericht", "Beschlusskontrolle", "Gremium", "Stand", "Umfang", "Folgevorlage", "Ampel", "Seite",
                 "Arbeitstage", "rot,"):
        assert word not in english.text, word


def _mails(tmp_path: Path, override: Path | None = None) -> dict[str, tuple[str, str, str]]:
    folder = tmp_path / "defs"
    folder.mkdir(exist_ok=True)
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    definition = load_definition_file(folder / "sachstandsbericht.yaml")
    renderer = Renderer(definition.timezone, override)
    samples = sample_contexts(definition)
    out = {}
    for kind in KINDS:
        mail = renderer.render(kind, samples[kind])
        out[kind] = (mail.subject, mail.text, mail.html)
    return out


def test_the_mails_speak_the_language_of_the_process(tmp_path: Path) -> None:
    german = _mails(tmp_path)
    subject, text, html = german["remind"]
    assert subject.startswith("SV-0-0000: Erinnerung – ") and text.startswith("Guten Tag,")
    assert "Uhr" in text and '<html lang="de">' in html
    set_language("en")
    english = _mails(tmp_path)
    subject, text, html = english["remind"]
    assert subject.startswith("SV-0-0000: Reminder – ") and text.startswith("Good day,")
    assert "  Due:       " in text and "Uhr" not in text and '<html lang="en">' in html
    assert english["escalate"][0].startswith("SV-0-0000: Deadline passed – ")
    assert english["late"][0].startswith("SV-0-0000: Deadline passed on arrival – ")
    assert english["digest"][0].startswith("Your deadlines until ") and "1 overdue, 2 open" in english["digest"][0]
    for kind, (subject, text, html) in english.items():  # no German left in the shipped texts (the data is)
        for word in ("Guten Tag", "Fällig", "Vorlage öffnen", "automatisch erstellt", "Erinnerung", "Hinweis", "Uhr"):
            assert word not in subject + text + html, (kind, word)
    set_language("de")
    assert _mails(tmp_path) == german
    with use_language("en"):  # a per-recipient language would go through the same switch
        assert _mails(tmp_path)["remind"][0].startswith("SV-0-0000: Reminder")


def test_the_mails_translated_once_per_language_say_what_the_catalog_says_at_every_mail(tmp_path: Path) -> None:
    """The shipped templates are compiled per language with their texts translated once: every part of every
    kind reads as when each text is looked up while rendering (the renderer's own environment, not bound to a
    language), in German and English, with data that HTML must escape."""
    folder = tmp_path / "defs"
    folder.mkdir()
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    definition = load_definition_file(folder / "sachstandsbericht.yaml")
    renderer = Renderer(definition.timezone)
    samples = sample_contexts(definition)
    for context in samples.values():
        if "paper" in context:
            context["paper"]["title"] = "<b>A & B</b> \"50%\" %(x)s"
        context["also_told"] = ["<a@x.example>", "b@x.example"]
    for language in ("de", "en"):
        with use_language(language):
            for kind, base in KINDS.items():
                mail = renderer.render(kind, samples[kind])
                looked_up = [renderer.env.get_template(f"{base}.{part}").render(**samples[kind])
                             for part in ("txt", "html")]
                assert [mail.text, mail.html] == looked_up, (language, kind)
                assert "&lt;a@x.example&gt;" in mail.html or kind == "digest"


def test_a_process_owners_own_template_works_unchanged_and_may_use_the_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    own = folder / "templates" / "sachstandsbericht"
    own.mkdir(parents=True)
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    (own / "reminder.subject.txt").write_text("Bitte handeln: {{ paper.reference }}", encoding="utf-8")
    (own / "reminder.txt").write_text('{{ _("Good day,") }} {{ paper.reference }}\n', encoding="utf-8")
    definition = load_definition_file(folder / "sachstandsbericht.yaml")
    check_templates(definition, folder)
    renderer = Renderer(definition.timezone, own)
    mail = renderer.render("remind", sample_contexts(definition)["remind"])
    assert mail.subject == "Bitte handeln: SV-0-0000" and mail.text == "Guten Tag, SV-0-0000\n"
    with use_language("en"):
        mail = renderer.render("remind", sample_contexts(definition)["remind"])
    assert mail.subject == "Bitte handeln: SV-0-0000" and mail.text == "Good day, SV-0-0000\n"
    assert "Good day," in mail.html  # the shipped HTML part, in English


def test_an_english_request_stores_german_reminder_labels(clock: FixedClock) -> None:
    """What is kept for later readers (the labels of planned reminders) is made in the installation's language,
    not in that of the request that caused it: a German mail never shows an English label."""
    engine = Engine(MemoryStore(), DefinitionLibrary(DEFINITIONS), clock)  # a draft has its drafting deadline
    with use_language("en"):
        engine.create("sachstandsbericht", "SV-EN-1", LANDRAT, {"title": "Bericht"})
    labels = [r.label for r in engine.store.outbox.reminders(statuses=("pending",))]
    assert labels and all("vor Fristablauf" in label or "nach Fristablauf" in label for label in labels), labels
    assert not any("before the deadline" in label for label in labels)
