import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def live_server(live_address):
    """``wsgiscope serve`` (gunicorn, gthread) on a free loopback port (tests/conftest.py)."""
    return f"http://{live_address}"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Everything the page logged as an error, or threw."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture()
def page(browser, live_server, lab_token):
    """A fresh page whose browser holds the lab's token cookie, as after opening the
    address ``wsgiscope serve`` printed (``/?token=...``)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.request.get(f"{live_server}/?token={lab_token}")  # the server sets the cookie
    page = context.new_page()
    page.console = Console(page)
    page.set_default_timeout(15_000)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield page
    finally:
        context.close()
