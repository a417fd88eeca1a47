"""The Graphviz diagram: what `definitions show --format svg|png` prints and the paper page embeds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from workflow import Engine, diagram
from workflow.cli import run
from workflow.config import Settings
from workflow.definition import Definition
from workflow.diagram import CURRENT_FILL, EDGE_FONT, render, svg_inline
from workflow.library import DefinitionLibrary
from workflow.loader import load_definition
from workflow.store import MemoryStore
from workflow.web import create_app

from .conftest import LANDRAT, SITZ

SHIPPED = Path(__file__).parent.parent / "definitions"
SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Cli = pytest.CaptureFixture[str]


def shipped(name: str, **replace: str) -> Definition:
    text = (SHIPPED / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return load_definition(text, f"{name}.yaml")


def groups(svg: str, kind: str) -> dict[str, ET.Element]:
    """The SVG's node or edge groups by their <title> (a state id, or 'src->dst' for an edge)."""
    root = ET.fromstring(svg)
    found = {}
    for g in root.iter(f"{SVG}g"):
        if kind in (g.get("class") or "").split():
            title = g.find(f"{SVG}title")
            assert title is not None and title.text
            found.setdefault(title.text, g)
            found[f"{title.text}#{g.get('id')}"] = g
    return found


def lines(g: ET.Element) -> list[str]:
    return [t.text or "" for t in g.iter(f"{SVG}text")]


def test_svg_shows_states_triggers_parallel_final_and_start() -> None:
    """Every state label in full, every trigger's label on an edge, the parallel state's bodies and join rule,
    final states with a double border, the start point on the initial state, internal steps dashed."""
    d = shipped("kreisstrategie")
    svg = render(d, "svg").decode("utf-8")
    nodes, edges = groups(svg, "node"), groups(svg, "edge")
    for state in d.states.values():
        node = nodes[state.id]
        text = " ".join(lines(node))
        assert text.startswith(state.label), (state.id, text)  # wrapped at word boundaries, never cut
        borders = [e for e in node.iter() if e.tag in (f"{SVG}path", f"{SVG}polygon")]
        assert len(borders) == (2 if state.final else 1), state.id
        assert ("final" in node.get("class", "").split()) == state.final
    parallel = " ".join(lines(nodes["kommunale_raete"]))
    assert "parallel in 11 Gremien (Entscheidung):" in parallel and parallel.endswith("alle müssen zustimmen")
    for body in d.states["kommunale_raete"].parallel.bodies:  # type: ignore[union-attr]
        assert f"• {d.bodies[body].name}" in parallel
    edge_lines = {line for e in edges.values() for line in lines(e)}
    for trigger in d.triggers():
        label = d.trigger_label(trigger)
        assert any(line == label or line.startswith(f"{label} (je Gremium") for line in edge_lines), trigger
    assert "Beschließen (je Gremium: angenommen)" in edge_lines
    assert {"automatisch: alle haben zugestimmt", "automatisch: eine Ablehnung"} <= edge_lines
    assert "__start__->entwurf" in edges and "__start__" in nodes
    internal = edges["kreistag:w->kreistag:w"]
    assert lines(internal) == ["Vorlage freigeben"] and "internal" in internal.get("class", "")
    assert all(p.get("stroke-dasharray") for p in internal.iter(f"{SVG}path"))
    reenter = edges["kreistag:e->kreistag:e"]
    assert lines(reenter) == ["Vertagen"] and not any(p.get("stroke-dasharray") for p in reenter.iter(f"{SVG}path"))
    sizes = {float(t.get("font-size", "0")) for t in ET.fromstring(svg).iter(f"{SVG}text")}
    assert min(sizes) >= EDGE_FONT


def test_join_rules_and_hearings() -> None:
    """A quorum reads 'Quorum 8 von 11' with its own automatic moves; join: none reads 'nur Anhörung'."""
    d = shipped("kreisstrategie", **{"join: all": "join: {quorum: 8}"})
    svg = render(d, "svg").decode("utf-8")
    assert " ".join(lines(groups(svg, "node")["kommunale_raete"])).endswith("Quorum 8 von 11")
    edge_lines = {line for e in groups(svg, "edge").values() for line in lines(e)}
    assert {"automatisch: Quorum 8 erreicht", "automatisch: Quorum 8 nicht mehr erreichbar"} <= edge_lines
    karlsruhe = shipped("karlsruhe")
    svg = render(karlsruhe, "svg").decode("utf-8")
    nodes = groups(svg, "node")
    assert " ".join(lines(nodes["gemeinderat"])).endswith("nur Anhörung")
    edge_lines = {line for e in groups(svg, "edge").values() for line in lines(e)}
    assert "Anhörung eintragen (je Gremium: angehört)" in edge_lines
    # A transition from many states is drawn once, from a note that names them in its tooltip.
    assert "aus jedem offenen Zustand" in {line for n in nodes.values() for line in lines(n)}
    for trigger in karlsruhe.triggers():
        assert any(line.split(" (")[0] == karlsruhe.trigger_label(trigger) for line in edge_lines), trigger


def test_labels_are_text_not_markup() -> None:
    """Angle brackets, ampersands and Graphviz escapes in a label are shown as written."""
    d = shipped("sachstandsbericht", **{"label: Entwurf": r"label: 'Entwurf <b>&amp; \N \l'",
                                        "title: Sachstandsbericht": r"title: \G Sachstandsbericht"})
    svg = render(d, "svg").decode("utf-8")
    nodes = groups(svg, "node")
    assert [line.replace("\u2060", "") for line in lines(nodes["entwurf"])] == [r"Entwurf <b>&amp; \N \l"]
    title = next(ET.fromstring(svg).iter(f"{SVG}text")).text or ""
    assert title.startswith(r"\G Sachstandsbericht")


def test_current_state_is_filled_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's SVG marks the current state; a second call for the same (definition, state) runs no dot."""
    d = shipped("kreisstrategie")
    svg = svg_inline(d, "kreistag")
    assert svg.startswith('<svg class="diagram" role="img" aria-label="Ablauf Kreisweite Strategie')
    assert " style=" not in svg and "<script" not in svg  # the page's CSP allows no inline styles or scripts
    node = groups(svg, "node")["kreistag"]
    assert "current" in node.get("class", "").split()
    assert {p.get("fill") for p in node.iter(f"{SVG}path")} == {CURRENT_FILL}
    assert CURRENT_FILL not in str(ET.tostring(groups(svg, "node")["bmk"]))

    def no_dot(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("rendered again")

    monkeypatch.setattr(diagram, "render", no_dot)
    assert svg_inline(d, "kreistag") is svg


def test_cli_svg_png_and_missing_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """SVG and PNG on standard output or into --out; without Graphviz one line and exit 11."""
    monkeypatch.setenv("COUNCILFLOW_DB", "memory://")
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(SHIPPED))
    assert run(["definitions", "show", "kreisstrategie", "--format", "png"]) == 0
    assert capsysbinary.readouterr().out.startswith(PNG_SIGNATURE)
    assert run(["definitions", "show", "kreisstrategie", "--format", "svg", "--out", str(tmp_path / "k.svg")]) == 0
    root = ET.fromstring((tmp_path / "k.svg").read_bytes())
    assert root.tag == f"{SVG}svg" and capsysbinary.readouterr().out == b""
    assert run(["definitions", "show", "kreisstrategie", "--format", "png", "--out", str(tmp_path / "k.png")]) == 0
    assert (tmp_path / "k.png").read_bytes().startswith(PNG_SIGNATURE)
    assert run(["definitions", "show", "kreisstrategie", "--format", "svg", "--out",
                str(tmp_path / "missing" / "k.svg")]) == 4
    assert capsysbinary.readouterr().err.decode().startswith("councilflow: Fehler: --out ")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the path
    assert run(["definitions", "show", "kreisstrategie", "--format", "svg"]) == 11
    err = capsysbinary.readouterr().err.decode()
    assert err.count("\n") == 1 and "Graphviz ist nicht installiert" in err and "Traceback" not in err


@pytest.fixture
def web(clock: object) -> Iterator[tuple[TestClient, Engine]]:
    engine = Engine(MemoryStore(), DefinitionLibrary(SHIPPED), clock)  # type: ignore[arg-type]
    engine.store.init()
    engine.clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))  # type: ignore[attr-defined]
    app = create_app(engine, Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1"))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client, engine


def test_paper_page_embeds_the_diagram(web: tuple[TestClient, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """The page shows the same SVG with the paper's state filled, in a box that scrolls, never scaled down."""
    client, engine = web
    engine.create("sachstandsbericht", "SV-9-1809", LANDRAT, {"title": "Digitalisierungsstrategie"})
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    response = client.get("/vorlagen/SV-9-1809", headers={"X-Remote-User": SITZ})
    assert response.status_code == 200 and "style-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    start, end = page.index('<svg class="diagram"'), page.index("</svg>") + len("</svg>")
    node = groups(page[start:end], "node")["ausschuss"]
    assert "current" in node.get("class", "") and CURRENT_FILL in ET.tostring(node, encoding="unicode")
    assert page.rfind('<div class="diagram-box" tabindex="0"', 0, start) > 0
    css = client.get("/static/style.css").text
    box = css[css.index(".diagram-box {"):]
    assert "overflow: auto" in box[:box.index("}")]
    assert ".diagram-box svg { display: block; max-width: none; }" in css and "width: 100%; height: auto" not in css

    monkeypatch.setenv("PATH", "/nonexistent")  # without Graphviz the page still works and says why
    diagram._cache.clear()
    page = client.get("/vorlagen/SV-9-1809", headers={"X-Remote-User": SITZ}).text
    assert "<svg" not in page and "Ablaufdiagramm nicht verfügbar: Graphviz ist nicht installiert" in page
