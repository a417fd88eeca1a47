"""What the browser tests share: Debian's headless Chromium (/usr/bin/chromium, driven by Playwright),
`councilflow web` on a free loopback port, a signed-in browser context and the screenshot folder. A test file
imports the fixtures it uses (and names them in ``__all__``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import LANDRAT
from .smtp import free_port

CHROMIUM = "/usr/bin/chromium"
AUDITOR = "pruefung@kreis-coesfeld.example"
EXE = str(Path(sys.executable).parent / "councilflow")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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


def web_env(db: str, definitions: Path) -> dict[str, str]:
    """The environment of `councilflow web` (and of the CLI beside it) on ``db``: no COUNCILFLOW_ setting of the
    caller's, staff signed in by the X-Remote-User header from loopback, AUDITOR the auditor."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("COUNCILFLOW_")},
            "COUNCILFLOW_DB": db, "COUNCILFLOW_DEFINITIONS": str(definitions), "COUNCILFLOW_AUDITORS": AUDITOR,
            "COUNCILFLOW_TRUSTED_HEADER": "X-Remote-User", "COUNCILFLOW_TRUSTED_PROXIES": "127.0.0.1"}


@contextmanager
def web_server(env: dict[str, str]) -> Iterator[str]:
    """`councilflow web` on a free loopback port in ``env``; its URL once it answers."""
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


@pytest.fixture
def server(tmp_path: Path, defs_dir: Path) -> Iterator[str]:
    """`councilflow web` on a free loopback port, with a paper waiting in its committee."""
    env = web_env(f"sqlite:///{tmp_path / 'web.db'}", defs_dir)
    subprocess.run([EXE, "documents", "create", "sachstandsbericht", "SV-9-1809", "--actor", LANDRAT, "--set",
                    "title=Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht", "--set",
                    "references=SV-9-1334", "--now", "2020-08-04T09:00"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "fire", "SV-9-1809", "einbringen", "--actor", LANDRAT, "--set", "meeting=2030-08-27T17:00"],
                   env=env, check=True, capture_output=True)
    with web_server(env) as url:
        yield url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: COUNCILFLOW_SCREENSHOTS, else a folder of the test's own."""
    folder = Path(os.environ.get("COUNCILFLOW_SCREENSHOTS", str(tmp_path / "screenshots")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def signed_in(browser: Any, email: str, **options: Any) -> Any:
    """A German browser context signed in as ``email`` (the trusted header)."""
    return browser.new_context(locale="de-DE", extra_http_headers={"X-Remote-User": email}, **options)
