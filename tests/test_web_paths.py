"""References holding "/" on every page route: Starlette decodes %2F before routing, so the pages read the path
as sent (workflow/addresses.py, workflow/web/paths.py) and every link writes a reference as one segment."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.addresses import NAME, paper_path, resolve
from workflow.config import Settings
from workflow.errors import NotFoundError
from workflow.store import Store
from workflow.web import create_app

from .conftest import DEFINITIONS, KAEMMEREI, LANDRAT, SITZ

#: Each reference names another paper's page or form when its slashes are read as separators.
REFERENCES = ("A", "A/bestaetigen", "A/mitzeichnen", "A/fire", "SV-9/2020/1", "neu")
PROXY = ("127.0.0.1", 50000)


def as_user(email: str) -> dict[str, str]:
    return {"X-Remote-User": email}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9]+\.[0-9a-f]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def title(reference: str) -> str:
    return f"Bericht zu {reference}"


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Engine:
    """The shipped Sachstandsbericht (a sign-off, a confirm trigger), one paper for each of :data:`REFERENCES`."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("sachstandsbericht.yaml", "councilflow.schema.json"):
        shutil.copy(DEFINITIONS / name, folder / name)
    engine = Engine(store, DefinitionLibrary(folder), FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC)))
    for reference in REFERENCES:
        engine.create("sachstandsbericht", reference, LANDRAT, {"title": title(reference)})
    return engine


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, Settings(secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))
    with TestClient(app, client=PROXY) as c:
        yield c


def paper_link(reference: str) -> str:
    return f'<a href="{paper_path(reference)}">{reference}</a>'


def test_the_address_rule() -> None:
    """One segment each way; an unencoded path is REFERENCE/ACTION when the rest names a paper."""
    assert paper_path("SV-9/2020/1") == "/vorlagen/SV-9%2F2020%2F1"
    assert paper_path("A/fire", "anlagen", "a b/c.pdf") == "/vorlagen/A%2Ffire/anlagen/a%20b%2Fc.pdf"
    assert paper_path("Ä&1", prefix="/api/papers/") == "/api/papers/%C3%84%261"
    papers = {"A": "a", "A/bestaetigen": "ab", "A/anlagen/x": "ax"}

    def find(reference: str) -> str:
        if reference not in papers:
            raise NotFoundError(reference)
        return papers[reference]

    actions = {"bestaetigen": "bestaetigen", "file": f"anlagen/{NAME}"}
    assert resolve("A%2Fbestaetigen", actions, find) == ("ab", None, None)
    assert resolve("A/bestaetigen", actions, find) == ("a", "bestaetigen", None)
    assert resolve("A%2Fbestaetigen/bestaetigen", actions, find) == ("ab", "bestaetigen", None)
    assert resolve("A%2Fanlagen%2Fx", actions, find) == ("ax", None, None)
    assert resolve("A/anlagen/x%2Fy.pdf", actions, find) == ("a", "file", "x/y.pdf")
    assert resolve("A%2Fanlagen%2Fx/anlagen/x", actions, find) == ("ax", "file", "x")
    assert resolve("A/anlagen/x", {}, find) == ("ax", None, None)  # no such action here: the whole path
    with pytest.raises(NotFoundError):
        resolve("B/bestaetigen", actions, find)


def test_every_page_reaches_its_paper(client: TestClient, engine: Engine) -> None:
    """The paper page, the confirmation page, the sign-off page and an attachment address of each reference
    name that paper, not the one its slashes would name."""
    for reference in REFERENCES:
        page = client.get(paper_path(reference), headers=as_user(LANDRAT))
        assert page.status_code == 200, reference
        assert f"<h1>{html.escape(reference)} <small>{title(reference)}</small></h1>" in page.text
        assert f'action="{paper_path(reference, "bestaetigen")}"' in page.text
        assert f'action="{paper_path(reference, "fire")}"' in page.text
        assert f'action="{paper_path(reference, "mitzeichnen")}"' in client.get(paper_path(reference),
                                                                               headers=as_user(KAEMMEREI)).text
        confirm = client.get(paper_path(reference, "bestaetigen"), params={"schritt": "zurueckziehen"},
                             headers=as_user(LANDRAT))
        assert confirm.status_code == 200 and "<h1>„Zurückziehen“ bestätigen</h1>" in confirm.text, reference
        assert paper_link(reference) in confirm.text and title(reference) in confirm.text
        assert f'action="{paper_path(reference, "bestaetigen")}"' in confirm.text
        signoff = client.get(paper_path(reference, "mitzeichnen"), headers=as_user(KAEMMEREI))
        assert signoff.status_code == 200 and paper_link(reference) in signoff.text, reference
        assert title(reference) in signoff.text and f'action="{paper_path(reference, "mitzeichnen")}"' in signoff.text
        missing = client.get(paper_path(reference, "anlagen", "nichts.pdf"), headers=as_user(LANDRAT))
        assert missing.status_code == 404, reference
        assert f"{reference} hat keine Anlage 'nichts.pdf'" in html.unescape(missing.text)
        assert client.get(paper_path(reference, prefix="/api/papers"),
                          headers=as_user(LANDRAT)).json()["reference"] == reference  # the API's same rule


def test_sign_off_and_fire_through_each_address(client: TestClient, engine: Engine) -> None:
    """The sign-off form and the step form with a CSRF token change the paper they name, and only it."""
    for reference in REFERENCES:
        page = client.get(paper_path(reference, "mitzeichnen"), headers=as_user(KAEMMEREI)).text
        signed = client.post(paper_path(reference, "mitzeichnen"), headers=as_user(KAEMMEREI), data={
            "csrf": csrf_of(page), "act": "sign", "version": engine.load(reference).version}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == paper_path(reference)
        page = client.get(paper_path(reference), headers=as_user(LANDRAT)).text
        fired = client.post(paper_path(reference, "fire"), headers=as_user(LANDRAT), data={
            "csrf": csrf_of(page), "trigger": "einbringen", "meeting": "2030-08-27T17:00",
            "version": engine.load(reference).version})
        assert fired.status_code == 200 and fired.url.raw_path.decode() == paper_path(reference), reference
        assert "Gespeichert: In den Ausschuss einbringen" in fired.text and title(reference) in fired.text
        states = {r: engine.status(r).state for r in REFERENCES}
        done = REFERENCES[:REFERENCES.index(reference) + 1]
        assert states == {r: "ausschuss" if r in done else "entwurf" for r in REFERENCES}, reference


def test_a_form_sent_to_the_paper_itself_changes_nothing(client: TestClient, engine: Engine) -> None:
    """POST /vorlagen/A%2Ffire is the paper "A/fire", not A's step form: refused in German, A untouched; the
    error page leads back to the address as sent."""
    engine.sign("A", KAEMMEREI)
    page = client.get(paper_path("A"), headers=as_user(LANDRAT)).text
    data = {"csrf": csrf_of(page), "trigger": "einbringen", "meeting": "2030-08-27T17:00",
            "version": engine.load("A").version}
    refused = client.post(paper_path("A/fire"), headers=as_user(LANDRAT), data=data)
    assert refused.status_code == 404 and engine.status("A").state == "entwurf"
    assert ("A/fire: diese Adresse ist die Vorlage selbst; ihr Formular geht an /vorlagen/A%2Ffire/fire"
            in html.unescape(refused.text))
    stale = client.post(paper_path("A/bestaetigen", "fire"), headers=as_user(LANDRAT),
                        data={**data, "version": 99})
    assert stale.status_code == 409 and f'href="{paper_path("A/bestaetigen")}"' in stale.text
    assert engine.status("A/bestaetigen").state == "entwurf"


def test_unencoded_addresses_still_work(client: TestClient, engine: Engine) -> None:
    """Links written before (slashes unencoded): REFERENCE/ACTION when the rest names a paper, else the
    reference itself; /vorlagen/neu is the paper "neu" while it exists."""
    who = as_user(LANDRAT)
    assert "<h1>SV-9/2020/1 <small>" in client.get("/vorlagen/SV-9/2020/1", headers=who).text
    signoff = client.get("/vorlagen/SV-9/2020/1/mitzeichnen", headers=as_user(KAEMMEREI))
    assert signoff.status_code == 200 and paper_link("SV-9/2020/1") in signoff.text
    confirm = client.get("/vorlagen/A/bestaetigen", params={"schritt": "zurueckziehen"}, headers=who)
    assert paper_link("A") in confirm.text  # A exists: its confirmation page
    assert "<h1>A/fire <small>" in client.get("/vorlagen/A/fire", headers=who).text  # no GET form "fire"
    assert "<h1>neu <small>" in client.get("/vorlagen/neu", headers=who).text


def test_every_list_links_a_reference_as_one_segment(client: TestClient, engine: Engine) -> None:
    """"Vorlagen" and "Meine Fristen" link each paper (and its "erledigt" form) the way the pages read it."""
    papers = client.get("/vorlagen", headers=as_user(LANDRAT)).text
    mine = client.get("/", headers=as_user(LANDRAT)).text
    for reference in REFERENCES:
        assert paper_link(reference) in papers and paper_link(reference) in mine
    for reference in REFERENCES:
        engine.sign(reference, KAEMMEREI)
        engine.fire(reference, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    mine = client.get("/", headers=as_user(SITZ)).text
    for reference in REFERENCES:
        assert f'action="{paper_path(reference, "erledigt")}"' in mine


def test_the_mails_link_the_page_that_names_the_paper(client: TestClient, engine: Engine) -> None:
    """A reminder about "SV-9/2020/1" links the address the pages read as that paper (text and HTML)."""
    from notifier.dispatch import Composer

    [view] = [v for v in engine.deadlines("SV-9/2020/1") if v.deadline.name == "einbringen"]
    mail = next(m for m in view.mails if m.status == "pending")
    message = Composer(engine, Settings(base_url="https://ris.example/")).compose(mail, engine.now())
    parts = {p.get_content_type(): p.get_content() for p in message.walk() if not p.is_multipart()}
    link = "https://ris.example/vorlagen/SV-9%2F2020%2F1"
    assert link in parts["text/plain"] and f'href="{link}"' in parts["text/html"]
    page = client.get(link.removeprefix("https://ris.example"), headers=as_user(LANDRAT))
    assert f"<h1>SV-9/2020/1 <small>{title('SV-9/2020/1')}</small></h1>" in page.text
