"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against `councilflow web`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LANDRAT, SITZ
from .smtp import free_port

CHROMIUM = "/usr/bin/chromium"
AUDITOR = "pruefung@kreis-coesfeld.example"
EXE = str(Path(sys.executable).parent / "councilflow")


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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is required in CI (installed by .ci/run)")
        pytest.skip("no /usr/bin/chromium here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path: Path, defs_dir: Path) -> Iterator[str]:
    """`councilflow web` on a free loopback port, with a paper waiting in its committee."""
    db = f"sqlite:///{tmp_path / 'web.db'}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COUNCILFLOW_")},
           "COUNCILFLOW_DB": db, "COUNCILFLOW_DEFINITIONS": str(defs_dir), "COUNCILFLOW_AUDITORS": AUDITOR,
           "COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "127.0.0.1"}
    subprocess.run([EXE, "documents", "create", "sachstandsbericht", "SV-9-1809", "--actor", LANDRAT, "--set",
                    "title=Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht", "--set",
                    "references=SV-9-1334", "--now", "2020-08-04T09:00"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "fire", "SV-9-1809", "einbringen", "--actor", LANDRAT, "--set", "meeting=2030-08-27T17:00"],
                   env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([EXE, "web", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    limit = time.monotonic() + 30
    while True:  # bounded wait until the server answers
        try:
            urllib.request.urlopen(f"{url}/oparl/v1.1/system", timeout=1)
            break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < limit, "the web server did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_staff_and_auditor_in_the_browser(browser: object, server: str, tmp_path: Path) -> None:
    """Sign in, see Meine Fristen, open SV-9-1809, fire through the form, watch the trail, download the CSV."""
    shots = Path(os.environ.get("COUNCILFLOW_SCREENSHOTS", str(tmp_path / "screenshots")))
    shots.mkdir(parents=True, exist_ok=True)
    staff = browser.new_context(locale="de-DE", extra_http_headers={"X-Remote-User": SITZ})  # type: ignore[attr-defined]
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

    audit = browser.new_context(locale="de-DE", extra_http_headers={"X-Remote-User": AUDITOR},  # type: ignore[attr-defined]
                                accept_downloads=True)
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


