"""The staff's forms in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against
`councilflow web` with the shipped definitions: create a Vorlage, a council clerk's decision, two councils
at the same moment, a withdrawal with confirmation and reason, and no sideways scrolling at 390 px."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workflow import DefinitionLibrary, Engine, SqlStore

from .browser_fixtures import AUDITOR, browser, shots, signed_in, web_env, web_server
from .conftest import COUNCILS, DEFINITIONS, KAEMMEREI, LANDRAT, SITZ, contact, to_councils

__all__ = ["browser", "shots"]  # the fixtures, shared with tests/browser_fixtures.py

OLFEN, SENDEN = contact("rat_olfen"), contact("rat_senden")
#: The councils that have decided before the browsers come: all but Olfen and Senden.
DECIDED_BEFORE = [c for c in COUNCILS if c not in ("rat_olfen", "rat_senden")]
#: The width of a phone; no page may be wider.
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    url: str
    db: str
    definitions: Path

    def engine(self) -> Engine:
        return Engine(SqlStore(self.db), DefinitionLibrary(self.definitions))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`councilflow web` on a free loopback port with the shipped definitions: SV-9-1809 in its committee,
    KS-1 with the councils, nine of them decided."""
    folder = tmp_path / "definitions"
    folder.mkdir()
    for name in ("kreisstrategie.yaml", "sachstandsbericht.yaml", "umsetzung.yaml", "councilflow.schema.json"):
        shutil.copy(DEFINITIONS / name, folder / name)
    db = f"sqlite:///{tmp_path / 'web.db'}"
    store = SqlStore(db)
    store.init()
    engine = Engine(store, DefinitionLibrary(folder))
    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {
        "title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht", "references": "SV-9-1334"})
    engine.sign("SV-9-1809", KAEMMEREI)
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2040-08-27T17:00"})
    to_councils(engine)
    for body in DECIDED_BEFORE:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"})
    store.dispose()
    with web_server(web_env(db, folder)) as url:
        yield Server(url, db, folder)


def test_create_a_vorlage(browser: Any, server: Server, shots: Path) -> None:
    """From the papers list through both steps of the form to the new paper, with the message."""
    context = signed_in(browser, LANDRAT)
    page = context.new_page()
    page.goto(f"{server.url}/vorlagen")
    page.get_by_role("link", name="Neue Vorlage").click()
    page.get_by_label("Ablauf").select_option(label="Sachstandsbericht zur Kenntnisnahme")
    page.get_by_role("button", name="Weiter").click()
    assert page.get_by_label("Titel").get_attribute("required") == ""
    page.get_by_role("button", name="Vorlage anlegen").click()  # the browser refuses the empty required fields
    assert page.url.endswith("/neue-vorlage?workflow=sachstandsbericht")
    page.get_by_label("Vorlagennummer").fill("SV-9-1900")
    page.get_by_label("Titel").fill("Breitbandausbau, Sachstandsbericht")
    page.get_by_label("Abteilung").fill("Amt 10")
    page.get_by_label("Öffentlich").uncheck()
    page.get_by_label("Bezüge").fill("SV-9-1809\nSV-9-1334")
    page.screenshot(path=str(shots / "vorlage-anlegen.png"), full_page=True)
    page.get_by_role("button", name="Vorlage anlegen").click()
    page.wait_for_url(f"{server.url}/vorlagen/SV-9-1900")
    assert page.get_by_role("status").inner_text() == "Angelegt: Vorlage SV-9-1900 – Breitbandausbau, Sachstandsbericht"
    assert page.get_by_role("link", name="SV-9-1809").is_visible()
    page.screenshot(path=str(shots / "vorlage-angelegt.png"), full_page=True)
    # a second paper under the same reference is refused on the form, the entries kept
    page.goto(f"{server.url}/neue-vorlage?workflow=sachstandsbericht")
    page.get_by_label("Vorlagennummer").fill("SV-9-1900")
    page.get_by_label("Titel").fill("Noch einmal")
    page.get_by_role("button", name="Vorlage anlegen").click()
    assert "SV-9-1900" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Titel").input_value() == "Noch einmal"
    context.close()
    status = server.engine().status("SV-9-1900")
    assert status.fields["public"] is False and status.fields["references"] == ["SV-9-1809", "SV-9-1334"]


def decide(page: Any, result: str) -> Any:
    """The Beschließen form on a council clerk's page, filled in."""
    form = page.locator("form.step", has=page.locator("legend", has_text="Beschließen"))
    form.get_by_label("Ergebnis").fill(result)
    return form


def test_council_clerk_decides_for_their_council(browser: Any, server: Server, shots: Path) -> None:
    """The Olfen clerk's decision form names Olfen, offers no other council, and records Olfen's decision."""
    context = signed_in(browser, OLFEN)
    page = context.new_page()
    page.goto(f"{server.url}/vorlagen/KS-1")
    steps = page.locator("section", has=page.get_by_role("heading", name="Nächster Schritt"))
    assert steps.locator("select").count() == 0 and "Billerbeck" not in steps.inner_text()
    form = decide(page, "einstimmig beschlossen")
    assert form.inner_text().count("Gremium: Rat der Stadt Olfen") == 1
    page.screenshot(path=str(shots / "rat-olfen.png"), full_page=True)
    form.get_by_role("button", name="Beschließen").click()
    page.wait_for_url(f"{server.url}/vorlagen/KS-1")
    assert page.get_by_role("status").inner_text() == "Gespeichert: Beschließen – Rat der Stadt Olfen"
    context.close()
    olfen = next(b for b in server.engine().status("KS-1").branches if b.body == "rat_olfen")
    assert (olfen.status, olfen.result) == ("adopted", "einstimmig beschlossen")


def test_two_councils_at_the_same_moment(browser: Any, server: Server, shots: Path) -> None:
    """Olfen and Senden load the page, then send their decisions together: both are recorded and the join
    to "Beschlossen" happens once."""
    pages = []
    for who in (OLFEN, SENDEN):
        page = signed_in(browser, who).new_page()
        page.goto(f"{server.url}/vorlagen/KS-1")
        decide(page, "beschlossen")
        pages.append(page)
    for page in pages:  # both forms go out before either answer comes back
        page.locator("form.step", has=page.locator("legend", has_text="Beschließen")).evaluate(
            "f => f.requestSubmit()")
    for page, council in zip(pages, ("Rat der Stadt Olfen", "Rat der Gemeinde Senden"), strict=True):
        page.get_by_role("status").wait_for()
        assert page.get_by_role("status").inner_text() == f"Gespeichert: Beschließen – {council}"
    pages[1].reload()
    assert "Beschlossen" in pages[1].locator("dl").inner_text()
    pages[1].screenshot(path=str(shots / "raete-beschlossen.png"), full_page=True)
    for page in pages:
        page.context.close()
    history = server.engine().history("KS-1")
    assert [e.kind for e in history].count("join") == 1 and history[-1].to_state == "beschlossen"
    assert {e.branch for e in history if e.kind == "branch"} == set(COUNCILS)


def test_withdrawal_with_confirmation_and_reason(browser: Any, server: Server, shots: Path) -> None:
    context = signed_in(browser, LANDRAT)
    page = context.new_page()
    page.goto(f"{server.url}/vorlagen/SV-9-1809")
    page.get_by_role("button", name="Zurückziehen …").click()
    page.wait_for_url(f"{server.url}/vorlagen/SV-9-1809/bestaetigen?schritt=zurueckziehen")
    assert page.get_by_role("heading", level=1).inner_text() == "„Zurückziehen“ bestätigen"
    assert "lässt sich nicht rückgängig machen" in page.locator(".warning").inner_text()
    confirm = page.get_by_role("button", name="Zurückziehen – bestätigen")
    confirm.click()  # no reason: the browser refuses the form
    assert "/bestaetigen" in page.url and server.engine().status("SV-9-1809").state == "ausschuss"
    page.get_by_label("Begründung").fill("Durch den Kreistagsbeschluss vom 10.12. erledigt")
    page.screenshot(path=str(shots / "zurueckziehen-bestaetigen.png"), full_page=True)
    confirm.click()
    page.wait_for_url(f"{server.url}/vorlagen/SV-9-1809")
    assert page.get_by_role("status").inner_text() == "Gespeichert: Zurückziehen"
    assert "Zurückgezogen" in page.locator("dl").inner_text()
    context.close()
    entry = server.engine().history("SV-9-1809")[-1]
    assert entry.trigger == "zurueckziehen"
    assert entry.payload["reason"] == "Durch den Kreistagsbeschluss vom 10.12. erledigt"


#: The page's width, the viewport's, and (to say what is too wide) the first elements reaching past the viewport.
WIDTH = """() => ({page: document.documentElement.scrollWidth, view: window.innerWidth,
  wide: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 5).map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))})"""


def test_no_sideways_scrolling_at_390_px(browser: Any, server: Server, shots: Path) -> None:
    """Every page fits a 390 px wide phone: wide tables and the diagram scroll inside their own boxes."""
    seen = {}
    staff = signed_in(browser, LANDRAT, viewport=PHONE)
    page = staff.new_page()
    for name, path in (("fristen", "/"), ("vorlagen", "/vorlagen"), ("vorlage", "/vorlagen/SV-9-1809"),
                       ("raete", "/vorlagen/KS-1"), ("anlegen", "/neue-vorlage?workflow=kreisstrategie"),
                       ("bestaetigen", "/vorlagen/SV-9-1809/bestaetigen?schritt=zurueckziehen"),
                       ("fehler", "/vorlagen/GIBT-ES-NICHT"),
                       ("beschlusskontrolle", "/beschlusskontrolle?body=kreistag&status=erledigt")):
        page.goto(server.url + path)
        seen[name] = page.evaluate(WIDTH)
        page.screenshot(path=str(shots / f"390-{name}.png"), full_page=True)
    page.goto(server.url + "/")
    page.get_by_role("button", name="Kalender abonnieren").click()
    page.wait_for_url(f"{server.url}/kalender")
    seen["kalender"] = page.evaluate(WIDTH)
    page.screenshot(path=str(shots / "390-kalender.png"), full_page=True)
    staff.close()
    sitz = signed_in(browser, SITZ, viewport=PHONE).new_page()  # eleven councils to choose from, deadlines
    for name, path in (("fristen-sitzungsdienst", "/"), ("raete-sitzungsdienst", "/vorlagen/KS-1")):
        sitz.goto(server.url + path)
        seen[name] = sitz.evaluate(WIDTH)
        sitz.screenshot(path=str(shots / f"390-{name}.png"), full_page=True)
    sitz.context.close()
    audit = signed_in(browser, AUDITOR, viewport=PHONE).new_page()
    audit.goto(f"{server.url}/pruefpfad?verify=true")
    seen["pruefpfad"] = audit.evaluate(WIDTH)
    audit.screenshot(path=str(shots / "390-pruefpfad.png"), full_page=True)
    audit.context.close()
    assert all(w["view"] == 390 for w in seen.values()), seen
    assert {name: (w["page"], w["wide"]) for name, w in seen.items() if w["page"] > 390} == {}
