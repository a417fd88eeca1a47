"""No id where a label exists: every page of a realistic corpus (the shipped definitions; a strategy paper
through the councils to its decision, one rejected by a council, one still with the councils with a
deferral, a withdrawn and a waiting status report) is rendered, and its visible text must not show a
trigger, state or body id whose label differs from it (ids may stay as secondary text in ``.id``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from workflow import Definition, DefinitionLibrary, Engine, FixedClock, SqlStore, load_definition_file
from workflow.config import Settings
from workflow.german import BRANCH_STATUS, ENTRY_LABEL, OUTCOME
from workflow.web.app import create_app

from .conftest import COUNCILS, DEFINITIONS, FEDER, KAEMMEREI, LANDRAT, SITZ, contact

AUDITOR = "pruefung@kreis-coesfeld.example"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Visible(HTMLParser):
    """The text a person sees: no tags, no attributes, no script/style, no SVG tooltips (<title> inside
    the diagram), and nothing inside an element of class ``id`` (secondary, muted ids) or inside the
    "Nächster Schritt" forms (``section[aria-labelledby=schritte]``, built and checked by the forms work)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []  # the open tags since a skipped element started (its own first)
        self.in_svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        if self.skipping:
            self.skipping.append(tag)
            return
        classes = (dict(attrs).get("class") or "").split()
        if tag == "svg":
            self.in_svg += 1
        if ("id" in classes or tag in ("script", "style") or (tag == "title" and self.in_svg)
                or dict(attrs).get("aria-labelledby") == "schritte"):
            self.skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.skipping:
            if tag in self.skipping:
                while self.skipping and self.skipping.pop() != tag:
                    pass
            return
        if tag == "svg":
            self.in_svg -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split())


def _definitions() -> list[Definition]:
    return [load_definition_file(path) for path in sorted(DEFINITIONS.glob("*.yaml"))]


def labelled_ids() -> dict[str, str]:
    """Every trigger, state and body id of the shipped definitions whose label differs from it: id → what
    it is. Left out: ids that are also a German word the pages write themselves ("abgelehnt" is a state id
    and a council's outcome, "erledigt" a state id and the mark of a deadline done)."""
    out: dict[str, str] = {}
    for d in _definitions():
        out.update({t: f"trigger of {d.workflow}" for t in d.trigger_names if d.trigger_label(t) != t})
        out.update({s.id: f"state of {d.workflow}" for s in d.states.values() if s.label != s.id})
        out.update({b.id: f"body of {d.workflow}" for b in d.bodies.values() if b.name != b.id})
    words: set[str] = set()
    templates = Path(__file__).resolve().parent.parent / "workflow" / "web" / "templates"
    for page in templates.glob("*.html"):
        words.update(re.findall(r"[\w-]+", visible(page.read_text(encoding="utf-8"))))
    words.update(w for table in (OUTCOME, BRANCH_STATUS, ENTRY_LABEL) for text in table.values()
                 for w in re.findall(r"[\w-]+", text))
    return {i: what for i, what in out.items() if i not in words}


def labels() -> list[str]:
    """Every label of the shipped definitions, longest first: taken out of a page's text before it is searched
    for ids ("Anhörung vertagen" is a label, "vertagen" alone an id)."""
    found = {text for d in _definitions() for text in (
        *(d.trigger_label(t) for t in d.trigger_names), *(s.label for s in d.states.values()),
        *(b.name for b in d.bodies.values()), *(x.label for x in d.deadlines))}
    return sorted(found, key=len, reverse=True)


IDS = labelled_ids()
_ID_PATTERN = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, IDS), key=len, reverse=True)) + r")(?![\w-])")
_LABEL_PATTERN = re.compile("|".join(map(re.escape, labels())))


def ids_shown(html: str) -> list[str]:
    text = _LABEL_PATTERN.sub(" ", visible(html))
    return sorted({f"{m.group(1)} ({IDS[m.group(1)]})" for m in _ID_PATTERN.finditer(text)})


def test_the_checker_sees_ids_and_ignores_secondary_ones() -> None:
    """The check itself: an id in text is found, one inside .id or an attribute is not."""
    assert ids_shown('<p>Status: <b>beschlossen</b></p>') == ["beschlossen (state of kreisstrategie)"]
    assert ids_shown('<p title="rat_olfen">Rat der Stadt Olfen <span class="id muted">rat_olfen</span></p>') == []
    assert ids_shown("<p>Beschlossen, rat_olfens, zurueckziehen-x</p>") == []
    assert ids_shown('<svg><g><title>kreistag</title><text>Kreistag</text></g></svg>') == []


# --- the corpus --------------------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[tuple[TestClient, Engine, FixedClock]]:
    clock = FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC))
    store = SqlStore(f"sqlite:///{tmp_path / 'councilflow.db'}")
    store.init()
    engine = Engine(store, DefinitionLibrary(DEFINITIONS), clock)
    app = create_app(engine, Settings(definitions=str(DEFINITIONS), auditors=AUDITOR, secret="s",
                                      trusted_header="X-Remote-User", trusted_proxies="127.0.0.1"))

    def later(days: int) -> None:
        clock.set(clock.now() + timedelta(days=days))

    def to_councils(ref: str) -> None:
        engine.create("kreisstrategie", ref, FEDER, {"title": f"Strategie {ref}", "department": "Digitalisierung"})
        engine.fire(ref, "einbringen", FEDER)
        engine.set_meeting(ref, (clock.now() + timedelta(days=14)).isoformat(), SITZ)
        engine.fire(ref, "vorlage_freigeben", FEDER, reason="im DMS freigegeben")
        later(15)
        engine.fire(ref, "vertagen", SITZ, values={"result": "Beratungsbedarf",
                                                  "meeting": (clock.now() + timedelta(days=7)).isoformat()})
        later(8)
        engine.fire(ref, "beraten", SITZ, values={"result": "empfohlen"})
        engine.fire(ref, "beraten", SITZ, values={"result": "empfohlen"})
        engine.fire(ref, "beschliessen", SITZ, values={"result": "einstimmig"})
        engine.set_meeting(ref, (clock.now() + timedelta(days=20)).isoformat(), contact("rat_olfen"),
                           branch="rat_olfen")

    # KS-1: through the councils, adopted by all (finished, the council grid kept)
    to_councils("KS-1")
    engine.fire("KS-1", "vertagen", contact("rat_olfen"), branch="rat_olfen",
                values={"result": "Beratungsbedarf", "meeting": (clock.now() + timedelta(days=30)).isoformat()})
    later(1)
    for body in COUNCILS:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "Zustimmung"})
    # KS-2: one council rejects (the join fails, open branches are closed)
    to_councils("KS-2")
    engine.fire("KS-2", "beschliessen", contact("rat_nottuln"), branch="rat_nottuln", values={"result": "Zustimmung"})
    engine.fire("KS-2", "ablehnen", contact("rat_senden"), branch="rat_senden", values={"result": "Mehrheit dagegen"})
    # KS-3: with the councils now, one deferred, one adopted, deadlines running
    to_councils("KS-3")
    engine.fire("KS-3", "vertagen", contact("rat_billerbeck"), branch="rat_billerbeck",
                values={"result": "Beratungsbedarf", "meeting": (clock.now() + timedelta(days=40)).isoformat()})
    engine.fire("KS-3", "beschliessen", contact("rat_coesfeld"), branch="rat_coesfeld",
                values={"result": "Zustimmung"})
    engine.done("KS-3", "ladung_rat", contact("rat_olfen"), branch="rat_olfen", note="Einladung ist raus")
    # SV-1: withdrawn with a reason; SV-2: waiting for its committee
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Sachstand Breitband"})
    engine.fire("SV-1", "zurueckziehen", LANDRAT, reason="Thema hat sich erledigt")
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "Sachstand Digitalisierung"})
    engine.sign("SV-2", KAEMMEREI)
    engine.fire("SV-2", "einbringen", LANDRAT, values={"meeting": (clock.now() + timedelta(days=20)).isoformat()})
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client, engine, clock
    store.dispose()


def _get(client: TestClient, url: str, who: str) -> str:
    response = client.get(url, headers={"X-Remote-User": who})
    assert response.status_code == 200, (url, who, response.text[:500])
    return response.text


def test_no_page_shows_an_id_where_a_label_exists(corpus: tuple[TestClient, Engine, FixedClock]) -> None:
    client, engine, _ = corpus
    assert {engine.status(r).state for r in ("KS-1", "KS-2", "KS-3", "SV-1", "SV-2")} == {
        "beschlossen", "teilweise_abgelehnt", "kommunale_raete", "zurueckgezogen", "ausschuss"}
    people = [SITZ, FEDER, LANDRAT, contact("rat_olfen"), AUDITOR]
    urls = ["/", "/vorlagen", "/vorlagen?state=beschlossen", "/vorlagen?state=Beschlossen",
            "/vorlagen?body=rat_olfen&workflow=kreisstrategie", "/vorlagen?overdue=true"]
    urls += [f"/vorlagen/{quote(r, safe='')}" for r in ("KS-1", "KS-2", "KS-3", "SV-1", "SV-2")]
    shown: dict[str, list[str]] = {}
    for who in people:
        for url in urls:
            found = ids_shown(_get(client, url, who))
            if found:
                shown[f"{url} as {who}"] = found
    for url in ("/pruefpfad", "/pruefpfad?verify=true", "/pruefpfad?body=Rat der Stadt Olfen",
                "/pruefpfad?nach=beschlossen", "/pruefpfad?vor=60"):
        found = ids_shown(_get(client, url, AUDITOR))
        if found:
            shown[url] = found
    assert shown == {}


def test_pages_say_what_happened_in_labels(corpus: tuple[TestClient, Engine, FixedClock]) -> None:
    client, engine, _ = corpus
    finished = visible(_get(client, "/vorlagen/KS-1", SITZ))
    assert "Gremien – Beschlussfassung in den Räten der Städte und Gemeinden (abgeschlossen)" in finished
    assert "Alle nötigen Gremien haben zugestimmt Beschlussfassung in den Räten der Städte und Gemeinden → " \
           "Beschlossen" in finished
    assert "Vertagen (Rat der Stadt Olfen) – vertagt; „Beratungsbedarf“; Sitzung" in finished
    assert "Vorlage freigeben" in finished and "Begründung: im DMS freigegeben" in finished
    assert "Sitzungstermin festgelegt (Rat der Stadt Olfen) – Sitzung " in finished
    assert "Angelegt Entwurf" not in finished and finished.rstrip().endswith("Angelegt")  # newest first
    rejected = visible(_get(client, "/vorlagen/KS-2", SITZ))
    assert "Die nötige Zustimmung der Gremien ist nicht mehr erreichbar" in rejected
    assert "Beratung nicht mehr nötig (Rat der Stadt Olfen)" in rejected
    withdrawn = visible(_get(client, "/vorlagen/SV-1", LANDRAT))
    assert "Zurückziehen Entwurf → Zurückgezogen – Begründung: Thema hat sich erledigt" in withdrawn
    grid = visible(_get(client, "/vorlagen/KS-3", contact("rat_olfen")))
    assert "Frist als erledigt markiert (Rat der Stadt Olfen) – Frist „Einladung zur Ratssitzung versenden " \
           "(Ladungsfrist)“; Vermerk: Einladung ist raus" in grid
    audit = _get(client, "/pruefpfad?reference=SV-1", AUDITOR)
    assert "<td>Zurückziehen <span class=\"id muted\">zurueckziehen</span></td><td>Entwurf</td>" \
           "<td>Zurückgezogen</td>" in audit
    mine = visible(_get(client, "/", contact("rat_billerbeck")))
    meeting = engine.load("KS-3").state.branches["rat_billerbeck"].meeting
    assert meeting is not None and "Rat der Stadt Billerbeck " + meeting.astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")).strftime("%d.%m.%Y %H:%M") in mine


def test_the_papers_filters_take_labels_and_ids(corpus: tuple[TestClient, Engine, FixedClock]) -> None:
    client, _, _ = corpus

    def listed(url: str) -> set[str]:
        return set(re.findall(r'<a href="/vorlagen/([^"]+)">', _get(client, url, AUDITOR)))

    assert listed("/vorlagen?state=Beschlossen") == listed("/vorlagen?state=beschlossen") == {"KS-1"}
    assert listed("/vorlagen?body=Rat der Gemeinde Senden") == listed("/vorlagen?body=rat_senden") == {"KS-3"}
    assert listed("/vorlagen?workflow=Sachstandsbericht zur Kenntnisnahme") == {"SV-1", "SV-2"}
    page = _get(client, "/vorlagen?state=Beschlossen", AUDITOR)
    assert '<option value="beschlossen" selected>Beschlossen</option>' in page
    assert '<option value="rat_olfen">Rat der Stadt Olfen</option>' in page
    response = client.get("/vorlagen?body=Nottuln", headers={"X-Remote-User": AUDITOR})
    assert response.status_code == 400
    text = visible(response.text)
    assert "kein Gremium 'Nottuln' – gemeint: Rat der Gemeinde Nottuln (rat_nottuln)?" in text
    assert "0 Vorlagen" not in text and "<select" in response.text  # the message, not an empty list


def test_the_history_is_paged_newest_first(corpus: tuple[TestClient, Engine, FixedClock]) -> None:
    client, engine, clock = corpus
    engine.create("sachstandsbericht", "SV-3", LANDRAT, {"title": "Viele Vertagungen"})
    engine.sign("SV-3", KAEMMEREI)
    engine.fire("SV-3", "einbringen", LANDRAT, values={"meeting": (clock.now() + timedelta(days=1)).isoformat()})
    for i in range(60):
        clock.set(clock.now() + timedelta(days=2))
        engine.fire("SV-3", "vertagen", SITZ, values={"result": f"Vertagung {i + 1}",
                                                     "meeting": (clock.now() + timedelta(days=1)).isoformat()})
    first = _get(client, "/vorlagen/SV-3", SITZ)
    timeline = first[first.index('<h2 id="verlauf">'):]
    assert timeline.count("<li") == 50 and "„Vertagung 60“" in timeline  # steps and the trail's mail entries
    assert timeline.index("Vertagung 60") < timeline.index("Vertagung 59")
    assert "„Vertagung 1“" not in timeline and "Neueste Einträge" not in timeline
    pages, rest = [timeline], timeline
    while (older := re.search(r'<a href="([^"]+)">Ältere Einträge</a>', rest)) is not None:
        page = _get(client, older.group(1).replace("&amp;", "&"), SITZ)
        rest = page[page.index('<h2 id="verlauf">'):]
        pages.append(rest)
    assert len(pages) > 1 and sum(p.count("<li") for p in pages) == len(engine.history("SV-3"))
    assert all(p.count("<li") == 50 for p in pages[:-1]) and "„Vertagung 1“" in rest
    assert visible(rest).endswith("Angelegt Neueste Einträge")  # the oldest entry last, a link back to the newest
