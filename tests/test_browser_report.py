"""The Prüfbericht in the browser: an auditor filters the audit page, takes the "Prüfbericht (PDF)" link and
gets a PDF whose text (read with pypdf) is the report of those filters."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from .browser_fixtures import AUDITOR, browser, server, shots, signed_in

__all__ = ["browser", "server", "shots"]  # the fixtures, shared with tests/browser_fixtures.py


def test_auditor_downloads_the_pruefbericht(browser: Any, server: str, shots: Path) -> None:
    audit = signed_in(browser, AUDITOR, accept_downloads=True)
    page = audit.new_page()
    page.goto(f"{server}/pruefpfad")
    page.get_by_label("Vorlage").fill("SV-9-1809")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_url(re.compile(r".*reference=SV-9-1809.*"))
    link = page.get_by_role("link", name="Prüfbericht (PDF)")
    assert link.is_visible()
    page.screenshot(path=str(shots / "pruefpfad-bericht.png"), full_page=True)
    # Debian's chromium cancels headless downloads started by Playwright: the link's target is fetched within
    # the signed-in browser context instead (as the CSV download in test_browser.py).
    response = page.request.get(f"{server}{link.get_attribute('href')}")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'attachment; filename="pruefbericht-\d{4}-\d\d-\d\d-\d{4}-SV-9-1809\.pdf"',
                        response.headers["content-disposition"])
    reader = PdfReader(io.BytesIO(response.body()))
    raw = "\n".join(p.extract_text() for p in reader.pages)
    flat = re.sub(r"\s+", "", raw)
    content = reader.attachments["pruefbericht.json"][0]
    digest = hashlib.sha256(content).hexdigest()
    assert raw.lstrip().startswith("Prüfbericht") and "Vorlage SV-9-1809" in raw and "Seite 1 von" in raw
    assert "Erstellt von " + AUDITOR in raw and "Prüfpfad intakt" in raw and digest in flat
    assert "Entwurf→BeratungimAusschuss" in flat and "Einbringen" in flat  # the humanised trigger: v1 has no labels
    audit.close()
