"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against `councilflow web`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .browser_fixtures import AUDITOR, browser, server, shots, signed_in
from .conftest import SITZ

__all__ = ["browser", "server", "shots"]  # the fixtures, shared with tests/browser_fixtures.py


#: What the paper page's diagram looks like on screen: the smallest text in CSS px (computed font size
#: times the SVG's scale), its drawn against its natural width, the box's scrolling, the filled state.
DIAGRAM_METRICS = """() => {
  const svg = document.querySelector("svg.diagram"), box = svg.parentElement;
  const sizes = [...svg.querySelectorAll("text")].map(
    t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
  const current = svg.querySelector("g.current");
  return {texts: sizes.length, smallest: Math.min(...sizes), shown: svg.getBoundingClientRect().width,
          natural: svg.width.baseVal.value, overflow: getComputedStyle(box).overflow,
          boxWidth: box.clientWidth, scrollWidth: box.scrollWidth,
          pageWidth: document.documentElement.scrollWidth,
          current: current ? [...current.querySelectorAll("text")].map(t => t.textContent).join(" ") : null};
}"""


def test_staff_and_auditor_in_the_browser(browser: Any, server: str, shots: Path, tmp_path: Path) -> None:
    """Sign in, see Meine Fristen, open SV-9-1809, fire through the form, watch the trail, download the CSV."""
    staff = signed_in(browser, SITZ)
    page = staff.new_page()
    page.goto(f"{server}/")
    assert page.locator("h1").inner_text() == "Meine Fristen"
    assert page.get_by_role("link", name="SV-9-1809").is_visible()
    page.screenshot(path=str(shots / "meine-fristen.png"), full_page=True)
    page.get_by_role("link", name="SV-9-1809").click()
    assert "Beratung im Ausschuss" in page.locator("dl").inner_text()
    assert page.locator("svg.diagram").is_visible()
    for width, height in ((390, 844), (1280, 800)):  # a phone, a desk
        page.set_viewport_size({"width": width, "height": height})
        seen = page.evaluate(DIAGRAM_METRICS)
        assert seen["texts"] >= 8 and seen["smallest"] >= 12, (width, seen)
        assert abs(seen["shown"] - seen["natural"]) < 1, (width, seen)  # never shrunk to fit
        assert seen["overflow"] == "auto" and seen["pageWidth"] <= width, (width, seen)  # the box scrolls
        if width < seen["natural"]:
            assert seen["scrollWidth"] > seen["boxWidth"], (width, seen)
        assert seen["current"] == "Beratung im Ausschuss", (width, seen)
    page.screenshot(path=str(shots / "vorlage-diagramm.png"))
    entries = page.locator("ol.timeline li").count()
    page.screenshot(path=str(shots / "vorlage.png"), full_page=True)
    form = page.locator("form.step", has=page.locator("legend", has_text="Kenntnis nehmen"))
    form.get_by_label("Ergebnis").fill("zur Kenntnis genommen")
    form.get_by_role("button", name="Kenntnis nehmen").click()
    page.wait_for_url(f"{server}/vorlagen/SV-9-1809")
    assert "Zur Kenntnis genommen" in page.locator("dl").inner_text()
    assert page.locator("ol.timeline li").count() == entries + 1
    assert "„zur Kenntnis genommen“" in page.locator("ol.timeline li").first.inner_text()  # newest first
    staff.close()

    audit = signed_in(browser, AUDITOR, accept_downloads=True)
    page = audit.new_page()
    page.goto(f"{server}/pruefpfad?verify=true")
    assert "Prüfpfad intakt" in page.get_by_role("status").inner_text()
    page.screenshot(path=str(shots / "pruefpfad.png"), full_page=True)
    # The link's target, fetched within the signed-in browser context (Debian's chromium cancels
    # headless downloads started by Playwright, so the file is read through the context's request API).
    href = page.get_by_role("link", name="Als CSV herunterladen").get_attribute("href")
    response = page.request.get(f"{server}{href}")
    assert response.ok and response.headers["content-disposition"] == 'attachment; filename="pruefpfad.csv"'
    target = tmp_path / "pruefpfad.csv"
    target.write_bytes(response.body())
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("seq,at,reference") and lines[-1].split(",")[6] == "kenntnis_nehmen"
    audit.close()
    assert {p.name for p in shots.iterdir()} >= {"meine-fristen.png", "vorlage.png", "pruefpfad.png"}


