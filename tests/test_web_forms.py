"""The staff's forms on the web: create a Vorlage, the confirmation with a reason, the message after each
action, only the councils a person may act for, and German error pages (FastAPI's TestClient on each store)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.config import Settings
from workflow.store import Store
from workflow.web import create_app

from .conftest import COUNCILS, DEFINITIONS, FEDER, KAEMMEREI, LANDRAT, SITZ, contact, to_councils

AUDITOR = "pruefung@kreis-coesfeld.example"
OLFEN = contact("rat_olfen")
PROXY = ("127.0.0.1", 50000)

#: A workflow with a field of every type, for the create form.
ALL_TYPES = """\
workflow: alle_typen
version: 1
title: Alle Feldarten
timezone: Europe/Berlin
roles:
  verfasser: [verfasser@kreis-coesfeld.example]
bodies:
  afwk: {name: Finanzausschuss, invitation_days: 7}
fields:
  title: {type: text, required: true}
  haushaltsjahr: {type: int, required: true}
  stichtag: {type: date}
  sitzung_am: {type: datetime}
  public: {type: bool, default: true}
  eilig: {type: bool}
  references: {type: list}
states:
  ausschuss: {label: Beratung im Ausschuss, initial: true, consultation: {body: afwk, role: Entscheidung}}
  erledigt: {label: Erledigt, final: true}
transitions:
  - {trigger: erledigen, label: Erledigen, source: ausschuss, dest: erledigt, roles: [verfasser]}
"""
WRITER = "verfasser@kreis-coesfeld.example"


def as_user(email: str) -> dict[str, str]:
    return {"X-Remote-User": email}


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Engine:
    """The shipped definitions (labels on every step, ``confirm: true`` on withdrawals) and one of every field."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml", "umsetzung.yaml", "councilflow.schema.json"):
        shutil.copy(DEFINITIONS / name, folder / name)
    (folder / "alle_typen.yaml").write_text(ALL_TYPES, encoding="utf-8")
    return Engine(store, DefinitionLibrary(folder), FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC)))


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, Settings(auditors=AUDITOR, secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))
    with TestClient(app, client=PROXY) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9]+\.[0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def notice(html: str) -> str | None:
    """The text of the page's message after an action, if there is one."""
    found = re.search(r'<p role="status" class="notice">(.*?)</p>', html, re.S)
    return " ".join(found.group(1).split()) if found else None


def alert(html: str) -> str:
    found = re.findall(r'<p role="alert" class="error">(.*?)</p>', html, re.S)
    return " ".join(" ".join(found).split())


def form_of(html: str, workflow: str = "sachstandsbericht") -> str:
    start = html.index('<form method="post" action="/neue-vorlage"')
    return html[start:html.index("</form>", start)]


# --- create a Vorlage ---------------------------------------------------------------------------------


def test_create_link_only_for_those_who_may_create(client: TestClient) -> None:
    """The papers list links "Neue Vorlage" for a person who may create in some workflow, not for others."""
    assert 'href="/neue-vorlage">Neue Vorlage</a>' in client.get("/vorlagen", headers=as_user(LANDRAT)).text
    for other in (SITZ, AUDITOR, OLFEN):
        assert "/neue-vorlage" not in client.get("/vorlagen", headers=as_user(other)).text, other
        page = client.get("/neue-vorlage", headers=as_user(other))
        assert page.status_code == 403 and "Sie dürfen in keinem Ablauf Vorlagen anlegen" in page.text


def test_create_form_chooses_the_workflow_then_shows_its_fields(client: TestClient) -> None:
    """Step one lists the workflows the person may create in, by title; step two their fields, German
    labels, required ones marked, an input of the field's type."""
    landrat = client.get("/neue-vorlage", headers=as_user(LANDRAT)).text
    options = re.findall(r'<option value="([a-z_]+)">([^<]+)</option>', landrat)
    assert options == [("kreisstrategie", "Kreisweite Strategie (Beschluss durch Kreis und Kommunen)"),
                       ("sachstandsbericht", "Sachstandsbericht zur Kenntnisnahme"),
                       ("umsetzung", "Umsetzungsauftrag aus einem Beschluss")]
    form = form_of(client.get("/neue-vorlage", params={"workflow": "sachstandsbericht"},
                              headers=as_user(LANDRAT)).text)
    assert "Ablauf: <strong>Sachstandsbericht zur Kenntnisnahme</strong>" in form
    assert re.search(r'<label for="field-title">Titel <span class="required-mark" aria-hidden="true">\*</span>',
                     form)
    assert re.search(r'<input type="text" id="field-title" name="field.title" value="" required>', form)
    assert '<label for="field-department">Abteilung</label>' in form
    assert not re.search(r'id="field-department"[^>]*required', form)
    assert re.search(r'<input type="checkbox" id="field-public" name="field.public" value="true" checked>', form)
    assert '<textarea id="field-references" name="field.references"' in form and "Bezüge" in form
    assert 'name="meeting"' not in form  # the initial state has no consultation
    # a person who may create in one workflow only goes straight to its fields
    only = client.get("/neue-vorlage", headers=as_user(WRITER)).text
    typed = dict(re.findall(r'<(?:input|textarea) (?:type="([a-z-]+)" )?id="field-([a-z_]+)"', only)[i][::-1]
                 for i in range(7))
    assert typed == {"title": "text", "haushaltsjahr": "number", "stichtag": "date", "sitzung_am": "datetime-local",
                     "public": "checkbox", "eilig": "checkbox", "references": ""}
    assert 'type="datetime-local" id="meeting" name="meeting"' in only  # it starts in a consultation
    assert "Haushaltsjahr <span class=\"required-mark\"" in only and "Sitzung am</label>" in only
    unknown = client.get("/neue-vorlage", params={"workflow": "gibtsnicht"}, headers=as_user(LANDRAT))
    assert unknown.status_code == 404 and "Diesen Ablauf gibt es nicht" in unknown.text


def test_create_a_vorlage(client: TestClient, engine: Engine) -> None:
    """The form creates the paper through the engine and redirects to it with a message."""
    csrf = csrf_of(client.get("/neue-vorlage", params={"workflow": "sachstandsbericht"},
                              headers=as_user(LANDRAT)).text)
    created = client.post("/neue-vorlage", headers=as_user(LANDRAT), follow_redirects=False, data={
        "csrf": csrf, "workflow": "sachstandsbericht", "reference": "SV-9-1809",
        "field.title": "Digitalisierungsstrategie", "field.department": "Amt 10",
        "field.references": "SV-9-1334\r\n\r\n SV-9-1335 \r\nBeschluss 12, Anlage 3"})  # public left unchecked
    assert created.status_code == 303 and created.headers["location"] == "/vorlagen/SV-9-1809"
    status = engine.status("SV-9-1809")
    assert status.state == "entwurf" and dict(status.fields) == {
        "title": "Digitalisierungsstrategie", "department": "Amt 10", "public": False,
        "references": ["SV-9-1334", "SV-9-1335", "Beschluss 12, Anlage 3"]}  # one entry per line
    assert [r.actor for r in engine.history("SV-9-1809")] == [LANDRAT]
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(LANDRAT)).text
    assert notice(page) == "Angelegt: Vorlage SV-9-1809 – Digitalisierungsstrategie"
    assert notice(client.get("/vorlagen/SV-9-1809", headers=as_user(LANDRAT)).text) is None  # shown once


def test_create_with_every_field_type(client: TestClient, engine: Engine) -> None:
    csrf = csrf_of(client.get("/neue-vorlage", headers=as_user(WRITER)).text)
    created = client.post("/neue-vorlage", headers=as_user(WRITER), follow_redirects=False, data={
        "csrf": csrf, "workflow": "alle_typen", "reference": "HH-2021", "field.title": "Haushalt 2021",
        "field.haushaltsjahr": "2021", "field.stichtag": "2021-01-01", "field.sitzung_am": "2020-12-10T16:00",
        "field.public": "true", "field.eilig": "true", "meeting": "2020-12-10T16:00"})
    assert created.status_code == 303, created.text
    status = engine.status("HH-2021")
    assert dict(status.fields) == {"title": "Haushalt 2021", "haushaltsjahr": 2021, "stichtag": "2021-01-01",
                                   "sitzung_am": "2020-12-10T15:00:00+00:00", "public": True, "eilig": True}
    assert status.meeting == datetime(2020, 12, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("who", "data", "status", "message"),
    [
        (LANDRAT, {"reference": "SV-1"}, 409, "SV-1"),  # gibt es bereits
        (LANDRAT, {"field.title": ""}, 400, "title"),
        (LANDRAT, {"reference": ""}, 400, "Vorlagennummer"),
        (SITZ, {}, 403, SITZ),
        (AUDITOR, {}, 403, AUDITOR),
        (LANDRAT, {"csrf": "1.00"}, 403, "CSRF"),
        (LANDRAT, {"workflow": "sachstandsberich"}, 404, "sachstandsbericht"),
    ],
    ids=["duplicate", "required", "no-reference", "no-role", "auditor", "csrf", "unknown-workflow"],
)
def test_create_errors_stay_on_the_form(client: TestClient, engine: Engine, who: str, data: dict[str, str],
                                        status: int, message: str) -> None:
    """Every error of the engine comes back on the form, with its status and the values entered; nothing
    is written."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Erste"})
    csrf = csrf_of(client.get("/", headers=as_user(who)).text)
    sent = {"csrf": csrf, "workflow": "sachstandsbericht", "reference": "SV-2", "field.title": "Mein Titel",
            "field.department": "Amt <10>", "field.references": "A-1\nA-2", **data}
    response = client.post("/neue-vorlage", headers=as_user(who), data=sent, follow_redirects=False)
    assert response.status_code == status, response.text
    assert message in alert(response.text)
    if data.get("workflow") != "sachstandsberich":
        form = form_of(response.text)
        assert f'value="{sent["reference"]}"' in form and f'value="{sent["field.title"]}"' in form
        assert 'value="Amt &lt;10&gt;"' in form and ">A-1\nA-2</textarea>" in form
        assert '<input type="checkbox" id="field-public" name="field.public" value="true">' in form  # kept unticked
    assert [p.reference for p in engine.store.iter_papers()] == ["SV-1"]


def test_a_paper_named_neu_is_reachable(client: TestClient, engine: Engine) -> None:
    """The create form lives at /neue-vorlage, outside the papers' addresses: /vorlagen/neu is the paper "neu"
    (as mails link it) and its steps work; while there is no such paper, the form's old address leads to the
    form, and the old form's POST still creates."""
    old = client.get("/vorlagen/neu", params={"workflow": "sachstandsbericht"}, headers=as_user(LANDRAT),
                     follow_redirects=False)
    assert old.status_code == 303 and old.headers["location"] == "/neue-vorlage?workflow=sachstandsbericht"
    created = client.post("/vorlagen/neu", headers=as_user(LANDRAT), follow_redirects=False, data={
        "csrf": csrf_of(client.get(old.headers["location"], headers=as_user(LANDRAT)).text),
        "workflow": "sachstandsbericht", "reference": "neu", "field.title": "Neuordnung der Ämter"})
    assert created.status_code == 303 and created.headers["location"] == "/vorlagen/neu"
    page = client.get("/vorlagen/neu", headers=as_user(LANDRAT))
    assert page.status_code == 200 and "<h1>neu <small>" in page.text and "Neuordnung der Ämter" in page.text
    assert 'action="/vorlagen/neu/fire"' in page.text
    engine.sign("neu", KAEMMEREI)
    fired = client.post("/vorlagen/neu/fire", headers=as_user(LANDRAT), data={
        "csrf": csrf_of(page.text), "trigger": "einbringen", "meeting": "2030-08-27T17:00",
        "version": engine.load("neu").version})
    assert fired.url.path == "/vorlagen/neu" and notice(fired.text) == "Gespeichert: In den Ausschuss einbringen"
    assert engine.status("neu").state == "ausschuss"
    form = client.get("/neue-vorlage", params={"workflow": "sachstandsbericht"}, headers=as_user(LANDRAT)).text
    assert 'action="/neue-vorlage"' in form and "Ablauf: <strong>Sachstandsbericht zur Kenntnisnahme" in form


def test_create_rule_is_the_engines(engine: Engine) -> None:
    """The create permission the pages ask is the one decide_create enforces (workflow.paper.may_create)."""
    from workflow.access import Person

    names = lambda who: [d.workflow for d in engine.creatable(Person(who))]  # noqa: E731
    assert names(LANDRAT) == ["kreisstrategie", "sachstandsbericht", "umsetzung"]
    assert names(FEDER) == ["kreisstrategie", "umsetzung"] and names(SITZ) == [] and names(WRITER) == ["alle_typen"]
    assert names(AUDITOR) == [] and engine.creatable(Person(LANDRAT, auditor=True)) == []


# --- the message after an action ---------------------------------------------------------------------


def sachstand_in_committee(engine: Engine) -> None:
    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {"title": "Digitalisierungsstrategie"})
    engine.sign("SV-9-1809", KAEMMEREI)
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2030-08-27T17:00"})


def test_message_after_fire_meeting_done_and_undo(client: TestClient, engine: Engine) -> None:
    sachstand_in_committee(engine)
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(SITZ)).text
    steps = page[page.index('id="schritte"'):page.index('id="ablauf"')]
    assert "<legend>Zur Kenntnis nehmen</legend>" in steps and '<button type="submit">Zur Kenntnis nehmen</button>' \
        in steps and ">kenntnis_nehmen<" not in steps and "<legend>Vertagen</legend>" in steps
    csrf, version = csrf_of(page), engine.load("SV-9-1809").version
    moved = client.post("/vorlagen/SV-9-1809/meeting", headers=as_user(SITZ), data={
        "csrf": csrf, "when": "2030-08-28T17:30", "branch": "", "version": version})
    assert notice(moved.text) == ("Gespeichert: Sitzung Ausschuss für Finanzen, Wirtschaftsförderung und "
                                  "Kreisentwicklung am 28.08.2030 17:30")
    done = client.post("/vorlagen/SV-9-1809/erledigt", headers=as_user(SITZ), data={
        "csrf": csrf, "deadline": "ladung", "branch": "", "back": "fristen"})
    assert done.url.path == "/"
    assert notice(done.text) == "Gespeichert: „Einladung mit Vorlage versenden (Ladungsfrist)“ ist erledigt (SV-9-1809)"
    engine.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    undone = client.post("/vorlagen/SV-9-1809/erledigt", headers=as_user(SITZ), data={
        "csrf": csrf, "deadline": "ladung", "branch": "", "undo": "true"})
    assert notice(undone.text) == ("Gespeichert: „Einladung mit Vorlage versenden (Ladungsfrist)“ ist wieder "
                                   "offen (SV-9-1809)")
    fired = client.post("/vorlagen/SV-9-1809/fire", headers=as_user(SITZ), data={
        "csrf": csrf, "trigger": "kenntnis_nehmen", "result": "zur Kenntnis genommen",
        "version": engine.load("SV-9-1809").version})
    assert fired.url.path == "/vorlagen/SV-9-1809" and notice(fired.text) == "Gespeichert: Zur Kenntnis nehmen"
    assert notice(client.get("/", headers=as_user(SITZ)).text) is None


def test_the_message_is_not_client_text(client: TestClient, engine: Engine) -> None:
    """A message cookie the server did not make for this person in this session shows nothing."""
    sachstand_in_committee(engine)
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(SITZ)).text
    client.post("/vorlagen/SV-9-1809/fire", headers=as_user(SITZ), follow_redirects=False, data={
        "csrf": csrf_of(page), "trigger": "kenntnis_nehmen", "result": "ok", "version": 3})
    cookie = client.cookies["cf_notice"]
    assert notice(client.get("/vorlagen/SV-9-1809", headers=as_user(LANDRAT)).text) is None  # another person
    client.cookies.set("cf_notice", cookie)
    body, _, mac = cookie.partition(".")
    client.cookies.set("cf_notice", body.replace("a", "b", 1) + "." + mac)  # tampered
    assert notice(client.get("/vorlagen/SV-9-1809", headers=as_user(SITZ)).text) is None
    client.cookies.set("cf_notice", "eyJraW5kIjoiZmlyZSJ9.<script>")
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(SITZ))
    assert page.status_code == 200 and notice(page.text) is None and "<script>" not in page.text


# --- councils: only the branches a person may act for ----------------------------------------------


def test_a_clerk_sees_only_their_council(client: TestClient, engine: Engine) -> None:
    """The Olfen clerk's forms name Olfen and nothing else; the Sitzungsdienst chooses among all eleven,
    none preselected."""
    to_councils(engine)
    page = client.get("/vorlagen/KS-1", headers=as_user(OLFEN)).text
    steps = page[page.index('id="schritte"'):page.index('id="ablauf"')]
    assert "<option" not in steps and "Billerbeck" not in steps
    assert steps.count('<input type="hidden" name="branch" value="rat_olfen">') == 4  # 3 decisions + meeting
    assert steps.count("Gremium: <strong>Rat der Stadt Olfen</strong>") == 4
    assert "<legend>Beschließen</legend>" in steps and "<legend>Vertagen</legend>" in steps
    sitz = client.get("/vorlagen/KS-1", headers=as_user(SITZ)).text
    steps = sitz[sitz.index('id="schritte"'):sitz.index('id="ablauf"')]
    selects = re.findall(r'<select name="branch" required>(.*?)</select>', steps, re.S)
    assert len(selects) == 4
    for options in selects:
        assert re.findall(r'<option value="(rat_[a-z]+)"', options) == COUNCILS
        assert '<option value="" disabled selected>Bitte wählen</option>' in options and " selected>Rat" not in options
    csrf = csrf_of(page)
    decided = client.post("/vorlagen/KS-1/fire", headers=as_user(OLFEN), data={
        "csrf": csrf, "trigger": "beschliessen", "branch": "rat_olfen", "result": "einstimmig",
        "version": engine.load("KS-1").version, "branch_versions": re.search(
            r'name="branch_versions" value="([^"]+)"', page).group(1)})  # type: ignore[union-attr]
    assert notice(decided.text) == "Gespeichert: Beschließen – Rat der Stadt Olfen"
    assert engine.status("KS-1").branches[COUNCILS.index("rat_olfen")].status == "adopted"
    meeting = client.post("/vorlagen/KS-1/meeting", headers=as_user(contact("rat_senden")), data={
        "csrf": csrf_of(client.get("/vorlagen/KS-1", headers=as_user(contact("rat_senden"))).text),
        "branch": "rat_senden", "when": "2030-09-01T18:00"})
    assert notice(meeting.text) == "Gespeichert: Sitzung Rat der Gemeinde Senden am 01.09.2030 18:00"


def test_a_decision_for_another_council_is_a_german_403_page(client: TestClient, engine: Engine) -> None:
    to_councils(engine)
    csrf = csrf_of(client.get("/vorlagen/KS-1", headers=as_user(OLFEN)).text)
    refused = client.post("/vorlagen/KS-1/fire", headers=as_user(OLFEN), data={
        "csrf": csrf, "trigger": "beschliessen", "branch": "rat_billerbeck", "result": "x",
        "version": engine.load("KS-1").version})
    assert refused.status_code == 403 and "<h1>Keine Berechtigung</h1>" in refused.text
    assert OLFEN in alert(refused.text) and '<a href="/vorlagen/KS-1">Zurück zur Vorlage</a>' in refused.text
    assert all(b.status == "open" for b in engine.status("KS-1").branches)
    moved = client.post("/vorlagen/KS-1/meeting", headers=as_user(OLFEN), data={
        "csrf": csrf, "branch": "rat_billerbeck", "when": "2030-09-01T18:00"})
    assert moved.status_code == 403 and "<h1>Keine Berechtigung</h1>" in moved.text


# --- confirmation with a reason ----------------------------------------------------------------------


def test_withdrawal_needs_confirmation_and_reason(client: TestClient, engine: Engine) -> None:
    """A confirm trigger's button opens the confirmation page; the reason is required there and recorded."""
    sachstand_in_committee(engine)
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(LANDRAT)).text
    assert '<form method="get" action="/vorlagen/SV-9-1809/bestaetigen" class="step">' in page
    assert 'name="schritt" value="zurueckziehen"' in page and '<button type="submit">Zurückziehen …</button>' in page
    assert 'name="trigger" value="zurueckziehen"' not in page  # no one-click withdrawal
    confirm = client.get("/vorlagen/SV-9-1809/bestaetigen", params={"schritt": "zurueckziehen"},
                         headers=as_user(LANDRAT))
    assert confirm.status_code == 200 and "<h1>„Zurückziehen“ bestätigen</h1>" in confirm.text
    assert "lässt sich nicht rückgängig machen" in confirm.text and "„Zurückgezogen“" in confirm.text
    assert re.search(r'<textarea name="reason" rows="3" maxlength="2000" required>', confirm.text)
    data = {"csrf": csrf_of(confirm.text), "trigger": "zurueckziehen", "version": engine.load("SV-9-1809").version}
    blank = client.post("/vorlagen/SV-9-1809/bestaetigen", headers=as_user(LANDRAT), data={**data, "reason": "  "})
    assert blank.status_code == 400 and "Begründung" in alert(blank.text) and "<h1>„Zurückziehen“" in blank.text
    assert engine.status("SV-9-1809").state == "ausschuss"
    direct = client.post("/vorlagen/SV-9-1809/fire", headers=as_user(LANDRAT), data=data)
    assert direct.status_code == 400 and engine.status("SV-9-1809").state == "ausschuss"  # the engine's rule
    stale = client.post("/vorlagen/SV-9-1809/bestaetigen", headers=as_user(LANDRAT),
                        data={**data, "reason": "Thema erledigt", "csrf": "1.00"})
    assert stale.status_code == 403 and ">Thema erledigt</textarea>" in stale.text  # the reason is kept
    done = client.post("/vorlagen/SV-9-1809/bestaetigen", headers=as_user(LANDRAT),
                       data={**data, "reason": "Thema durch Kreistagsbeschluss erledigt"})
    assert done.url.path == "/vorlagen/SV-9-1809" and notice(done.text) == "Gespeichert: Zurückziehen"
    assert engine.status("SV-9-1809").state == "zurueckgezogen"
    assert engine.history("SV-9-1809")[-1].payload["reason"] == "Thema durch Kreistagsbeschluss erledigt"


def test_confirmation_page_of_a_step_not_open_to_the_person(client: TestClient, engine: Engine) -> None:
    """Not the person's step, or no step at all: a German page that does not repeat what was asked."""
    sachstand_in_committee(engine)
    for who, step in ((SITZ, "zurueckziehen"), (LANDRAT, "<script>alert(1)</script>")):
        page = client.get("/vorlagen/SV-9-1809/bestaetigen", params={"schritt": step}, headers=as_user(who))
        assert page.status_code == 409 and "für Sie bei dieser Vorlage jetzt nicht möglich" in page.text
        assert "<script>alert" not in page.text and "&lt;script&gt;" not in page.text
        assert 'name="reason"' not in page.text


def test_who_may_set_which_meeting(engine: Engine) -> None:
    """The meeting form asks the engine's rule (decide_meeting): a council's clerk their council's meeting,
    the Sitzungsdienst every open one, auditors none."""
    from workflow.access import Person

    to_councils(engine)
    allowed = lambda who: [b for b in (None, *COUNCILS)  # noqa: E731
                           if engine.may_set_meeting(engine.load("KS-1"), who, b)]
    assert allowed(Person(OLFEN)) == ["rat_olfen"]
    assert allowed(Person(SITZ)) == COUNCILS
    assert allowed(Person(SITZ, auditor=True)) == [] and allowed(Person(LANDRAT)) == []
    engine.fire("KS-1", "beschliessen", OLFEN, branch="rat_olfen", values={"result": "ja"})
    assert allowed(Person(OLFEN)) == []  # its branch is decided
